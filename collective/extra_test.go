package collective_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ckptio/ckptio/collective"
	"github.com/ckptio/ckptio/collective/local"
	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/manifest"
	"github.com/ckptio/ckptio/storage/version"
	"github.com/ckptio/ckptio/storage/version/versiontest"
)

// TestExtraStateCommitsWithTheRegions: the ranks' own parts (Extra.Write)
// are committed in the version that holds the regions, rank 0 vets every
// rank's claim, and a failed Write or Vet commits nothing. On restore,
// each rank's Check gets its share of Split before anything is touched,
// and a refusal there leaves the regions and Apply alone.
func TestExtraStateCommitsWithTheRegions(t *testing.T) {
	const ranks = 4
	ctx := context.Background()
	cl := versiontest.New(2)
	var applied atomic.Int32
	err := local.RunWith(ranks, local.Options{RanksPerNode: 2}, func(c collective.Comm) error {
		s, err := collective.NewSession(c, collective.Options{BlockSize: 4096})
		if err != nil {
			return err
		}
		defer s.Close()
		j := &version.Job{Name: "x", Catalog: cl, Pool: cl.Pool()}
		r := c.Rank()
		regions := regionsFor(r, 3)
		failWrite := -1
		x := func(step int) collective.Extra {
			return collective.Extra{
				Claim: []byte(fmt.Sprint("claim ", r)),
				Vet: func(claims [][]byte) error {
					for i, cl := range claims {
						if string(cl) != fmt.Sprint("claim ", i) {
							return fmt.Errorf("claim of rank %d: %q", i, cl)
						}
					}
					if step == 3 {
						return errors.New("vetoed")
					}
					return nil
				},
				Write: func(ctx context.Context) (*version.Part, error) {
					if r == failWrite {
						return nil, errors.New("cannot capture")
					}
					w, err := j.NewWriter(ctx, nil, version.Hints{})
					if err != nil {
						return nil, err
					}
					_, err = w.WriteObject(ctx, "own", int32(r), strings.NewReader(fmt.Sprintf("rank %d step %d", r, step)))
					part, cerr := w.Close(ctx)
					return part, errors.Join(err, cerr)
				},
			}
		}
		res, err := s.CheckpointWith(ctx, j, regions, nil, x(1))
		if err != nil || res.Version != 1 {
			return fmt.Errorf("checkpoint 1: %+v, %v", res, err)
		}
		failWrite = 2
		_, err = s.CheckpointWith(ctx, j, regions, nil, x(2))
		if err == nil || !strings.Contains(err.Error(), "nothing committed") || !strings.Contains(err.Error(), "rank 2: cannot capture") {
			return fmt.Errorf("rank %d: checkpoint with a failed Write: %v", r, err)
		}
		failWrite = -1
		if _, err = s.CheckpointWith(ctx, j, regions, nil, x(3)); err == nil || !strings.Contains(err.Error(), "rank 0: vetoed") {
			return fmt.Errorf("rank %d: vetoed checkpoint: %v", r, err)
		}

		live := clone(regions)
		for _, reg := range live {
			for i := range reg.Data {
				reg.Data[i] ^= 0xff
			}
		}
		restore := func(refuse int) error {
			_, err := s.RestoreWith(ctx, j, 0, live, collective.Extra{
				Split: func(snap *version.Snapshot) ([][]byte, error) {
					out := make([][]byte, ranks)
					for i := range out {
						out[i] = []byte(fmt.Sprint("share ", i))
					}
					return out, nil
				},
				Check: func(ctx context.Context, share []byte) error {
					if string(share) != fmt.Sprint("share ", r) {
						return fmt.Errorf("got %q", share)
					}
					if r == refuse {
						return errors.New("refusing")
					}
					return nil
				},
				Apply: func(ctx context.Context) error { applied.Add(1); return nil },
			})
			return err
		}
		if err := restore(1); err == nil || !strings.Contains(err.Error(), "refused, nothing touched: rank 1: refusing") {
			return fmt.Errorf("rank %d: refused restore: %v", r, err)
		}
		for i, reg := range live {
			if bytes.Equal(reg.Data, regions[i].Data) && len(reg.Data) > 0 {
				return fmt.Errorf("rank %d: a refused restore touched region %s", r, reg.Name)
			}
		}
		if applied.Load() != 0 {
			return errors.New("Apply ran although a Check refused")
		}
		if err := restore(-1); err != nil {
			return err
		}
		for i, reg := range live {
			if !bytes.Equal(reg.Data, regions[i].Data) {
				return fmt.Errorf("rank %d: region %s not restored", r, reg.Name)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if applied.Load() != ranks {
		t.Fatalf("Apply ran on %d ranks, want %d", applied.Load(), ranks)
	}
	raw, n, err := cl.ManifestBytes(ctx, "x", 0)
	if err != nil || n != 1 {
		t.Fatalf("latest version %d, %v; want only version 1", n, err)
	}
	m, err := manifest.Unmarshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	if m.Meta[catalog.MetaLeaders] != "2" {
		t.Fatalf("leaders recorded %q, want 2 (the ranks' own parts are not leaders)", m.Meta[catalog.MetaLeaders])
	}
	for r := int32(0); r < ranks; r++ {
		if len(m.BlocksOf("own", r)) != 1 || len(m.BlocksOf("r0", r)) == 0 {
			t.Fatalf("rank %d's own part or regions missing from version 1", r)
		}
	}
}
