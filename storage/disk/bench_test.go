package disk

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/zeebo/blake3"

	"github.com/ckptio/ckptio/storage"
)

// benchBlocks makes n distinct blocks of size bytes without holding them
// all: block i is base with i in its first 8 bytes. It returns base and the
// hashes.
func benchBlocks(n, size int) ([]byte, []storage.Hash) {
	base := make([]byte, size)
	rand.New(rand.NewSource(1)).Read(base)
	hs := make([]storage.Hash, n)
	var ctr [8]byte
	for i := range hs {
		binary.LittleEndian.PutUint64(ctr[:], uint64(i))
		h := blake3.New()
		h.Write(ctr[:])
		h.Write(base[8:])
		copy(hs[i][:], h.Sum(nil))
	}
	return base, hs
}

// BenchmarkLayoutPut measures durable puts with 16 writers in flight for
// each layout, against the same bytes written sequentially to one file by
// one writer: with an fdatasync after each block (sync-each, what a naive
// durable put costs) and with a single fdatasync at the end (sync-once, the
// disk's streaming rate). Run it on the disk the store will use:
//
//	go test -run '^$' -bench LayoutPut -benchtime 2s ./storage/disk
func BenchmarkLayoutPut(b *testing.B) {
	const writers = 16
	for _, size := range []int{64 << 10, 1 << 20} {
		label := fmt.Sprintf("%dKiB", size>>10)
		b.Run("baseline-sync-each/"+label, func(b *testing.B) { benchBaseline(b, size, true) })
		b.Run("baseline-sync-once/"+label, func(b *testing.B) { benchBaseline(b, size, false) })
		for _, layout := range []Layout{LayoutPack, LayoutFiles} {
			b.Run(string(layout)+"/"+label, func(b *testing.B) {
				base, hs := benchBlocks(b.N, size)
				s, err := Open(b.TempDir(), Options{Layout: layout})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				var next atomic.Int64
				var wg sync.WaitGroup
				b.SetBytes(int64(size))
				b.ResetTimer()
				for w := 0; w < writers; w++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						data := make([]byte, size)
						copy(data, base)
						for {
							i := next.Add(1) - 1
							if i >= int64(b.N) {
								return
							}
							binary.LittleEndian.PutUint64(data, uint64(i))
							if _, err := s.Put(context.Background(), hs[i], data); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
			})
		}
	}
}

func benchBaseline(b *testing.B, size int, each bool) {
	base, _ := benchBlocks(0, size)
	f, err := os.Create(filepath.Join(b.TempDir(), "baseline"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	b.SetBytes(int64(size))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		binary.LittleEndian.PutUint64(base, uint64(i))
		if _, err := f.Write(base); err != nil {
			b.Fatal(err)
		}
		if each {
			if err := fdatasync(f); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := fdatasync(f); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkOpen measures Open (the scan that rebuilds usage) of a store
// holding 100,000 blocks of 1 KiB, with the page cache warm.
//
//	go test -run '^$' -bench Open -benchtime 5x ./storage/disk
func BenchmarkOpen(b *testing.B) {
	const n, size = 100_000, 1 << 10
	for _, layout := range []Layout{LayoutPack, LayoutFiles} {
		b.Run(string(layout), func(b *testing.B) {
			dir := b.TempDir()
			s, err := Open(dir, Options{Layout: layout})
			if err != nil {
				b.Fatal(err)
			}
			base, hs := benchBlocks(n, size)
			var next atomic.Int64
			var wg sync.WaitGroup
			for w := 0; w < 64; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					data := append([]byte(nil), base...)
					for i := next.Add(1) - 1; i < n; i = next.Add(1) - 1 {
						binary.LittleEndian.PutUint64(data, uint64(i))
						if _, err := s.Put(context.Background(), hs[i], data); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			s.Close()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				s, err := Open(dir, Options{})
				if err != nil {
					b.Fatal(err)
				}
				if st, _ := s.Stat(context.Background()); st.Blocks != n {
					b.Fatalf("reopened with %d blocks", st.Blocks)
				}
				s.Close()
			}
		})
	}
}

// BenchmarkList measures List on a store holding 100,000 blocks: one page
// of 64 hashes from a random cursor, and a whole cursor walk in pages of 64
// and of 1024, quiet and with a put and a delete between pages.
//
//	go test -run '^$' -bench List ./storage/disk
func BenchmarkList(b *testing.B) {
	const n, size = 100_000, 64
	ctx := context.Background()
	s, err := Open(b.TempDir(), Options{Layout: LayoutPack})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	base, hs := benchBlocks(n+2000, size)
	hs, extra := hs[:n], hs[n:]
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data := append([]byte(nil), base...)
			for i := next.Add(1) - 1; i < n; i = next.Add(1) - 1 {
				binary.LittleEndian.PutUint64(data, uint64(i))
				if _, err := s.Put(ctx, hs[i], data); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	walk := func(b *testing.B, max int, between func()) {
		var after storage.Hash
		seen := 0
		for {
			page, err := s.List(ctx, after, max)
			if err != nil {
				b.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			seen += len(page)
			after = page[len(page)-1]
			if between != nil {
				between()
			}
		}
		if seen < n/2 {
			b.Fatalf("walk saw %d blocks", seen)
		}
	}
	b.Run("page-64", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := s.List(ctx, hs[i%n], 64); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, max := range []int{64, 1024} {
		b.Run(fmt.Sprintf("walk-%d", max), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				walk(b, max, nil)
			}
		})
	}
	// Between pages, a new block is added and one added 1000 pages before
	// removed, and an old block removed and one removed 1000 pages before
	// added back. Through the index only, not to disk: this measures List,
	// not fsync.
	b.Run("walk-64-churn", func(b *testing.B) {
		k := 0
		churn := func() {
			s.mu.Lock()
			s.addLocked(extra[k%2000], block{size: size})
			s.removeLocked(hs[k%n])
			if k >= 1000 {
				s.removeLocked(extra[(k-1000)%2000])
				s.addLocked(hs[(k-1000)%n], block{size: size})
			}
			s.mu.Unlock()
			k++
		}
		for i := 0; i < b.N; i++ {
			walk(b, 64, churn)
		}
	})
}
