package remote_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/memstore"
	"github.com/ckptio/ckptio/storage/remote"
	"github.com/ckptio/ckptio/storage/store"
	"github.com/ckptio/ckptio/storage/storetest"
)

// BenchmarkPutWindow puts blocks through one connection to a
// memstore-backed server over loopback, with twice as many goroutines as
// the window so the window is what bounds the requests in flight. It
// cycles over 32 distinct blocks: after the first round the server still
// receives and hashes every block but stores nothing new.
func BenchmarkPutWindow(b *testing.B) {
	for _, size := range []int{1 << 20, 64 << 10} {
		blocks := make([][]byte, 32)
		hashes := make([]storage.Hash, len(blocks))
		for i := range blocks {
			blocks[i], hashes[i] = storetest.Block(int64(i), size)
		}
		for _, window := range []int{1, 4, 16, 64} {
			b.Run(fmt.Sprintf("size=%dKiB/window=%d", size>>10, window), func(b *testing.B) {
				addr, _ := serve(b, memstore.New("bench", 0), nil, store.Options{})
				s := dial(b, addr, remote.Options{Window: window})
				ctx := context.Background()
				b.SetBytes(int64(size))
				b.ResetTimer()
				var next atomic.Int64
				var wg sync.WaitGroup
				for range 2 * window {
					wg.Go(func() {
						for {
							i := next.Add(1) - 1
							if i >= int64(b.N) {
								return
							}
							k := int(i) % len(blocks)
							if _, err := s.Put(ctx, hashes[k], blocks[k]); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
			})
		}
	}
}
