package collective_test

import (
	"testing"

	"github.com/ckptio/ckptio/collective"
	"github.com/ckptio/ckptio/storage/version"
)

// A leader reads as many blocks of a round at once as fit in 16 MiB of
// its largest, never fewer than version.ReadParallel.
func TestReadLimit(t *testing.T) {
	round := func(lengths ...int64) [][][]version.Extent {
		var r []version.Extent
		for _, l := range lengths {
			r = append(r, version.Extent{Length: l})
		}
		return [][][]version.Extent{{r}, {}}
	}
	for _, tc := range []struct {
		plans [][][]version.Extent
		want  int
	}{
		{round(64<<10, 64<<10), 256},
		{round(64<<10, 1<<20), 16},
		{round(4 << 20), version.ReadParallel},
		{round(), version.ReadParallel},
	} {
		if got := collective.ReadLimit(tc.plans, 0); got != tc.want {
			t.Errorf("limit for %v: %d, want %d", tc.plans, got, tc.want)
		}
	}
}
