package collective_test

import (
	"context"
	"math/rand"
	"testing"

	"github.com/ckptio/ckptio/collective"
	"github.com/ckptio/ckptio/collective/local"
	"github.com/ckptio/ckptio/storage/client"
	"github.com/ckptio/ckptio/storage/manager/managertest"
	"github.com/ckptio/ckptio/storage/version"
)

// BenchmarkIncremental1Percent measures one checkpoint of 4 ranks x 16 MiB
// in 16 KiB blocks (4096 blocks) after 1% of each rank's blocks changed,
// against a real manager over HTTP and in-memory stores: what a checkpoint
// costs beyond its changed bytes (manifests, the reuse decision, the
// commit). Run with -benchmem: allocations count every goroutine,
// the manager's included.
func BenchmarkIncremental1Percent(b *testing.B) {
	const ranks, size, block = 4, 16 << 20, 16 << 10
	ctx := context.Background()
	cl := managertest.New(b, managertest.Options{Stores: 3})
	pool := client.NewPool(cl.Client, cl.Dial, nil)
	defer pool.Close()
	err := local.Run(ranks, func(c collective.Comm) error {
		s, err := collective.NewSession(c, collective.Options{BlockSize: block})
		if err != nil {
			return err
		}
		defer s.Close()
		be := &version.Job{Name: "bench", Catalog: cl.Client, Pool: pool, Writer: client.WriterOptions{Replicas: 1}}
		data := make([]byte, size)
		rng := rand.New(rand.NewSource(int64(c.Rank())))
		rng.Read(data)
		regions := []collective.Region{{Name: "field", Data: data}}
		if _, err := s.Checkpoint(ctx, be, regions, nil); err != nil {
			return err
		}
		c.Barrier()
		if c.Rank() == 0 {
			b.ReportAllocs()
			b.ResetTimer()
		}
		for i := 0; i < b.N; i++ {
			for j := 0; j < size/block/100; j++ { // 1% of the blocks
				data[rng.Intn(size/block)*block] ^= byte(1 + i)
			}
			if _, err := s.Checkpoint(ctx, be, regions, nil); err != nil {
				return err
			}
		}
		c.Barrier()
		if c.Rank() == 0 {
			b.StopTimer()
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}
