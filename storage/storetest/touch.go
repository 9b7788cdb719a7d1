package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ckptio/ckptio/storage"
)

// runTouch checks the touch semantics of Has and Put against Delete's
// notSince, with moments taken from the store's clock.
func runTouch(t *testing.T, open func(*testing.T, int64) storage.BlockStore, clk clock) {
	ctx := context.Background()
	moment := clk.moment

	t.Run("HasTouches", func(t *testing.T) {
		s := open(t, 0)
		a, ha := Block(20, 3000)
		b, hb := Block(21, 5000)
		_, hc := Block(22, 10)
		put(t, s, ha, a)
		put(t, s, hb, b)
		t0 := moment()
		if got, err := s.Has(ctx, []storage.Hash{ha, hc}); err != nil || !got[0] || got[1] {
			t.Fatalf("has = %v, %v; want [true false]", got, err)
		}
		// b was last touched before t0, a after it: only b goes.
		freed, err := s.Delete(ctx, []storage.Hash{ha, hb, hc}, t0)
		if err != nil || freed != 5000 {
			t.Fatalf("delete not since t0: freed=%d err=%v, want 5000 (the untouched block)", freed, err)
		}
		held(t, s, ha, true)
		held(t, s, hb, false)
		st, _ := s.Stat(ctx)
		if st.Used != 3000 || st.Blocks != 1 {
			t.Fatalf("stat = %+v, want used 3000 blocks 1", st)
		}
		// A notSince after the touch deletes it.
		freed, err = s.Delete(ctx, []storage.Hash{ha}, moment())
		if err != nil || freed != 3000 {
			t.Fatalf("delete not since after the touch: freed=%d err=%v, want 3000", freed, err)
		}
		held(t, s, ha, false)
	})

	t.Run("PutTouches", func(t *testing.T) {
		s := open(t, 0)
		a, ha := Block(23, 4000)
		put(t, s, ha, a)
		t0 := moment()
		created, err := s.Put(ctx, ha, a)
		if err != nil || created {
			t.Fatalf("second put: created=%v err=%v, want false, nil", created, err)
		}
		if freed, err := s.Delete(ctx, []storage.Hash{ha}, t0); err != nil || freed != 0 {
			t.Fatalf("delete not since t0 of a block re-put after t0: freed=%d err=%v, want 0", freed, err)
		}
		if _, err := s.Get(ctx, ha); err != nil {
			t.Fatalf("re-put block not readable: %v", err)
		}
		// A first put touches too.
		b, hb := Block(24, 100)
		put(t, s, hb, b)
		if freed, err := s.Delete(ctx, []storage.Hash{hb}, t0); err != nil || freed != 0 {
			t.Fatalf("delete not since t0 of a block put after t0: freed=%d err=%v, want 0", freed, err)
		}
		freed, err := s.Delete(ctx, []storage.Hash{ha, hb}, moment())
		if err != nil || freed != 4100 {
			t.Fatalf("delete not since after the puts: freed=%d err=%v, want 4100", freed, err)
		}
		st, _ := s.Stat(ctx)
		if st.Used != 0 || st.Blocks != 0 {
			t.Fatalf("stat = %+v, want empty", st)
		}
	})

	t.Run("GetDoesNotTouch", func(t *testing.T) {
		s := open(t, 0)
		a, ha := Block(25, 100)
		put(t, s, ha, a)
		t0 := moment()
		if _, err := s.Get(ctx, ha); err != nil {
			t.Fatal(err)
		}
		if freed, err := s.Delete(ctx, []storage.Hash{ha}, t0); err != nil || freed != 100 {
			t.Fatalf("delete after a get: freed=%d err=%v, want 100", freed, err)
		}
	})

	t.Run("DeleteNotSinceLongAgoKeeps", func(t *testing.T) {
		s := open(t, 0)
		a, ha := Block(26, 100)
		put(t, s, ha, a)
		if freed, err := s.Delete(ctx, []storage.Hash{ha}, clk.now().Add(-time.Hour)); err != nil || freed != 0 {
			t.Fatalf("delete not since an hour ago: freed=%d err=%v, want 0", freed, err)
		}
		// The zero time deletes whatever the touch.
		if freed, err := s.Delete(ctx, []storage.Hash{ha}, time.Time{}); err != nil || freed != 100 {
			t.Fatalf("unconditional delete: freed=%d err=%v, want 100", freed, err)
		}
		if freed, err := s.Delete(ctx, []storage.Hash{ha}, time.Time{}); err != nil || freed != 0 {
			t.Fatalf("delete again: freed=%d err=%v, want 0", freed, err)
		}
	})

	// The collector's promise: a block a writer learned is held at or
	// after T0 is never removed by Delete(..., T0), however the two
	// interleave.
	t.Run("TouchRacesDelete", func(t *testing.T) {
		s := open(t, 0)
		const n = 200
		hs := make([]storage.Hash, n)
		data := make([][]byte, n)
		for i := range hs {
			data[i], hs[i] = Block(int64(3000+i), 512)
		}
		putAll(t, s, hs, data)
		t0 := moment()

		var writers, collector sync.WaitGroup
		errs := make(chan error, 3)
		stop := make(chan struct{})
		collector.Add(1)
		go func() {
			defer collector.Done()
			for {
				for i := 0; i < n; i += 16 {
					if _, err := s.Delete(ctx, hs[i:min(i+16, n)], t0); err != nil {
						errs <- fmt.Errorf("delete: %w", err)
						return
					}
				}
				select {
				case <-stop:
					return
				default:
				}
			}
		}()
		// Writers: each block is either confirmed by Has or stored again
		// by Put, and from then on relied upon.
		for w := range 2 {
			writers.Add(1)
			go func() {
				defer writers.Done()
				for i := w; i < n; i += 2 {
					got, err := s.Has(ctx, hs[i:i+1])
					if err != nil {
						errs <- fmt.Errorf("has: %w", err)
						return
					}
					if !got[0] {
						if _, err := s.Put(ctx, hs[i], data[i]); err != nil {
							errs <- fmt.Errorf("put: %w", err)
							return
						}
					}
				}
			}()
		}
		writers.Wait()
		close(stop)
		collector.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		// Every block was touched after t0: none may be missing.
		for i, h := range hs {
			if _, err := s.Get(ctx, h); err != nil {
				t.Fatalf("block %d relied upon after t0 was removed: %v", i, err)
			}
		}
		st, _ := s.Stat(ctx)
		if st.Blocks != n {
			t.Fatalf("stat = %+v, want %d blocks", st, n)
		}
	})
}

func put(t *testing.T, s storage.BlockStore, h storage.Hash, data []byte) {
	t.Helper()
	if _, err := s.Put(context.Background(), h, data); err != nil {
		t.Fatalf("put %s: %v", h.Short(), err)
	}
}

// putAll puts the blocks from 16 goroutines, so that stores that batch
// their syncs make few.
func putAll(t *testing.T, s storage.BlockStore, hs []storage.Hash, data [][]byte) {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	next := make(chan int)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if _, err := s.Put(context.Background(), hs[i], data[i]); err != nil {
					mu.Lock()
					first = errors.Join(first, err)
					mu.Unlock()
				}
			}
		}()
	}
	for i := range hs {
		next <- i
	}
	close(next)
	wg.Wait()
	if first != nil {
		t.Fatal(first)
	}
}

// held checks whether s holds h without touching it.
func held(t *testing.T, s storage.BlockStore, h storage.Hash, want bool) {
	t.Helper()
	_, err := s.Get(context.Background(), h)
	switch {
	case want && err != nil:
		t.Fatalf("block %s: %v, want held", h.Short(), err)
	case !want && !errors.Is(err, storage.ErrNotFound):
		t.Fatalf("block %s: get err = %v, want ErrNotFound", h.Short(), err)
	}
}
