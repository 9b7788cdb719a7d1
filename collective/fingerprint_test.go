package collective_test

import (
	"context"
	"fmt"
	"math/rand"
	"testing"
	"time"

	"github.com/ckptio/ckptio/collective"
	"github.com/ckptio/ckptio/collective/local"
	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/client"
	"github.com/ckptio/ckptio/storage/version"
	"github.com/ckptio/ckptio/storage/version/versiontest"
)

// TestOnlyChangedBlocksAreHashed: the first checkpoint BLAKE3-hashes every
// byte; the next, with one block changed per rank, fingerprints every
// byte but hashes only that block, and the version still lists every
// block under its true hash (the manifest's hashes are those of a full
// hash of the bytes).
func TestOnlyChangedBlocksAreHashed(t *testing.T) {
	ctx := context.Background()
	cl := versiontest.New(2)
	const bs, n = 4096, 40 * 4096
	err := local.Run(2, func(c collective.Comm) error {
		s, err := collective.NewSession(c, collective.Options{BlockSize: bs})
		if err != nil {
			return err
		}
		defer s.Close()
		j := &version.Job{Name: "j", Catalog: cl, Pool: cl.Pool(), Writer: client.WriterOptions{Replicas: 1}}
		data := make([]byte, n)
		rand.New(rand.NewSource(int64(c.Rank()))).Read(data)
		regions := []collective.Region{{Name: "field", Data: data}}
		if _, err := s.Checkpoint(ctx, j, regions, nil); err != nil {
			return err
		}
		if st := s.HashStats(); st.Fingerprinted != n || st.Hashed != n {
			return fmt.Errorf("first checkpoint: %+v, want %d bytes fingerprinted and hashed", st, n)
		}
		data[7*bs+5] ^= 1
		r, err := s.Checkpoint(ctx, j, regions, nil)
		if err != nil {
			return err
		}
		if r.Hash.Fingerprinted != n || r.Hash.Hashed != bs {
			return fmt.Errorf("the second checkpoint's result says %+v, want %d fingerprinted and %d hashed", r.Hash, n, bs)
		}
		if st := s.HashStats(); st.Fingerprinted != 2*n || st.Hashed != n+bs {
			return fmt.Errorf("after changing one block: %+v, want %d fingerprinted and %d hashed", st, 2*n, n+bs)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	vs := cl.Versions("j")
	for _, b := range vs[len(vs)-1].Blocks {
		if b.Length == 0 {
			continue
		}
		got, err := cl.Mem[b.Stores[0]].Get(context.Background(), b.Key)
		if err != nil {
			t.Fatal(err)
		}
		if storage.Sum(got) != b.Hash {
			t.Fatalf("block %d of rank %d listed under a hash that is not its bytes'", b.Offset, b.Rank)
		}
	}
}

// BenchmarkFindChanged measures what finding the changed blocks of a
// checkpoint costs one rank: 64 MiB in 64 KiB blocks with 10 % of the
// blocks changed between checkpoints, cut and hashed as a checkpoint does
// (fingerprints, and BLAKE3 for the changed blocks), against BLAKE3 of
// every block (what a checkpoint did before), in the same run. It
// reports both times and their ratio.
func BenchmarkFindChanged(b *testing.B) {
	const size, bs = 64 << 20, 64 << 10
	data := make([]byte, size)
	rand.New(rand.NewSource(1)).Read(data)
	regions := []collective.Region{{Name: "field", Data: data}}
	var tFull, tMemo time.Duration
	err := local.Run(1, func(c collective.Comm) error {
		s, err := collective.NewSession(c, collective.Options{BlockSize: bs})
		if err != nil {
			return err
		}
		defer s.Close()
		collective.CutRegions(s, regions) // the first checkpoint
		for i := 0; i < b.N; i++ {
			for k := i % 10; k < size/bs; k += 10 {
				data[k*bs] ^= 1
			}
			t0 := time.Now()
			for off := 0; off < size; off += bs {
				storage.Sum(data[off : off+bs])
			}
			t1 := time.Now()
			collective.CutRegions(s, regions)
			tFull += t1.Sub(t0)
			tMemo += time.Since(t1)
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(tFull)/1e6/float64(b.N), "full-ms/op")
	b.ReportMetric(float64(tMemo)/1e6/float64(b.N), "memo-ms/op")
	b.ReportMetric(float64(tMemo)/float64(tFull), "memo/full")
}
