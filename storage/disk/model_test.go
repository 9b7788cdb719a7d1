package disk

import (
	"bytes"
	"context"
	"errors"
	"math/rand"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/storetest"
)

// TestAgainstModel runs random puts, deletes and gets from several
// goroutines, with small packs so that rolling and compaction happen in the
// middle of it, reopens the store between rounds, and checks the store
// against a map of what it should hold.
func TestAgainstModel(t *testing.T) {
	ctx := context.Background()
	for _, layout := range layouts {
		t.Run(string(layout), func(t *testing.T) {
			dir := t.TempDir()
			const workers = 8
			model := make([]map[storage.Hash][]byte, workers) // one key space per worker
			for i := range model {
				model[i] = map[storage.Hash][]byte{}
			}
			for round := 0; round < 4; round++ {
				s := openT(t, dir, Options{Layout: layout, PackSize: 200 << 10, MaxBatch: 8})
				var wg sync.WaitGroup
				for w := 0; w < workers; w++ {
					wg.Add(1)
					go func(w int) {
						defer wg.Done()
						m := model[w]
						rng := rand.New(rand.NewSource(int64(round*100 + w)))
						for op := 0; op < 60; op++ {
							key := int64(w)<<20 | int64(rng.Intn(40))
							data, h := storetest.Block(key, int(key%7)*3000+64)
							switch rng.Intn(4) {
							case 0, 1:
								created, err := s.Put(ctx, h, data)
								_, had := m[h]
								if err != nil || created == had {
									t.Errorf("put: created=%v had=%v err=%v", created, had, err)
									return
								}
								m[h] = data
							case 2:
								_, had := m[h]
								freed, err := s.Delete(ctx, []storage.Hash{h, h}, time.Time{})
								if err != nil || (had && freed != int64(len(data))) || (!had && freed != 0) {
									t.Errorf("delete: freed=%d had=%v err=%v", freed, had, err)
									return
								}
								delete(m, h)
							case 3:
								got, err := s.Get(ctx, h)
								if want, had := m[h]; had {
									if err != nil || !bytes.Equal(got, want) {
										t.Errorf("get held block: %v", err)
										return
									}
								} else if !errors.Is(err, storage.ErrNotFound) {
									t.Errorf("get missing block: %v", err)
									return
								}
							}
						}
					}(w)
				}
				wg.Wait()
				check := func(s *Store) {
					var used, blocks int64
					var want []storage.Hash
					for _, m := range model {
						for h, d := range m {
							used += int64(len(d))
							blocks++
							want = append(want, h)
							if got, err := s.Get(ctx, h); err != nil || !bytes.Equal(got, d) {
								t.Fatalf("round %d: get %s: %v", round, h.Short(), err)
							}
						}
					}
					st, _ := s.Stat(ctx)
					if st.Used != used || st.Blocks != blocks {
						t.Fatalf("round %d: stat %+v, want used %d blocks %d", round, st, used, blocks)
					}
					slices.SortFunc(want, compareHash)
					got, err := s.List(ctx, storage.Hash{}, len(want)+1)
					if err != nil || !slices.Equal(got, want) {
						t.Fatalf("round %d: list = %d hashes, %v; want the %d held", round, len(got), err, len(want))
					}
				}
				check(s)
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				s = openT(t, dir, Options{})
				check(s)
				s.Close()
			}
		})
	}
}
