package mpiio_test

import (
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/ckptio/ckptio/storage/tree"
)

// BenchmarkFreeze is what the blocking part of an asynchronous checkpoint
// pays per byte of new or changed protected files: the scan and the copy
// into a staging directory on the same file system as the files
// (CKPT_FREEZE_DIR, default the system's temporary directory), with the
// file in the page cache as a program's fresh output is. It reports
// whether the copies were reflinks.
//
//	CKPT_FREEZE_DIR=/work go test -run - -bench Freeze ./mpiio/
func BenchmarkFreeze(b *testing.B) {
	dir := os.Getenv("CKPT_FREEZE_DIR")
	if dir == "" {
		dir = os.TempDir()
	}
	src, err := os.MkdirTemp(dir, "ckptio-freeze-bench-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(src)
	const size = 64 << 20
	data := make([]byte, size)
	rand.New(rand.NewSource(1)).Read(data)
	if err := os.WriteFile(filepath.Join(src, "out"), data, 0o644); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	b.ResetTimer()
	var reflinked int
	for range b.N {
		s, err := tree.ScanPaths(src, []string{"out"}, nil, tree.Options{Rank: -1})
		if err != nil {
			b.Fatal(err)
		}
		stage, err := os.MkdirTemp(dir, "ckptio-freeze-stage-")
		if err != nil {
			b.Fatal(err)
		}
		_, n, err := s.Freeze(stage)
		if err != nil {
			b.Fatal(err)
		}
		reflinked += n
		b.StopTimer()
		os.RemoveAll(stage)
		b.StartTimer()
	}
	b.ReportMetric(float64(reflinked)/float64(b.N), "reflinked/op")
}
