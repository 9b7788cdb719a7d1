// Package storetest is the conformance suite every storage.BlockStore
// implementation must pass: the in-memory fake, the on-disk store and the
// store reached over TCP all run the same Run.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"sync"
	"testing"
	"time"

	"github.com/ckptio/ckptio/storage"
)

// Factory returns a new, empty store whose quota is at least quota bytes and
// at most quota plus one block (0 = unlimited). Run closes it.
type Factory func(t *testing.T, quota int64) storage.BlockStore

// ClockFactory is a Factory for a store whose touch times and Stat.Now are
// read from now, the suite's fake clock (a Clock). RunWithClock closes it.
type ClockFactory func(t *testing.T, quota int64, now func() time.Time) storage.BlockStore

// Block returns n deterministic pseudo-random bytes and their hash.
func Block(seed int64, n int) ([]byte, storage.Hash) {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b, storage.Sum(b)
}

// Run runs the conformance suite against stores made by newStore, which
// read the real clock: the touch tests wait for it to move on (no sleep;
// on a coarse clock, up to one of its ticks).
func Run(t *testing.T, newStore Factory) {
	run(t, newStore, wallClock{})
}

// RunWithClock runs the conformance suite against stores made by newStore,
// all given the Now of one Clock, which the touch tests advance. Every
// store that can take a clock should be run this way.
func RunWithClock(t *testing.T, newStore ClockFactory) {
	clk := NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	run(t, func(t *testing.T, quota int64) storage.BlockStore {
		return newStore(t, quota, clk.Now)
	}, fakeClock{clk})
}

func run(t *testing.T, newStore Factory, clk clock) {
	ctx := context.Background()
	open := func(t *testing.T, quota int64) storage.BlockStore {
		s := newStore(t, quota)
		t.Cleanup(func() { s.Close() })
		return s
	}

	t.Run("PutGetRoundTrip", func(t *testing.T) {
		s := open(t, 0)
		for i, n := range []int{0, 1, 4095, 64 << 10, 1 << 20} {
			data, h := Block(int64(i), n)
			created, err := s.Put(ctx, h, data)
			if err != nil || !created {
				t.Fatalf("put %d bytes: created=%v err=%v", n, created, err)
			}
			got, err := s.Get(ctx, h)
			if err != nil {
				t.Fatalf("get %d bytes: %v", n, err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("get %d bytes: content differs", n)
			}
		}
	})

	t.Run("PutIsIdempotent", func(t *testing.T) {
		s := open(t, 0)
		data, h := Block(7, 1000)
		if _, err := s.Put(ctx, h, data); err != nil {
			t.Fatal(err)
		}
		st1, err := s.Stat(ctx)
		if err != nil {
			t.Fatal(err)
		}
		created, err := s.Put(ctx, h, data)
		if err != nil || created {
			t.Fatalf("second put: created=%v err=%v, want false, nil", created, err)
		}
		st2, _ := s.Stat(ctx)
		if st2.Used != st1.Used || st2.Blocks != 1 {
			t.Fatalf("second put changed usage: %+v -> %+v", st1, st2)
		}
	})

	t.Run("PutDoesNotRetainCallerSlice", func(t *testing.T) {
		s := open(t, 0)
		data, h := Block(8, 4096)
		if _, err := s.Put(ctx, h, data); err != nil {
			t.Fatal(err)
		}
		for i := range data {
			data[i] = 0
		}
		got, err := s.Get(ctx, h)
		if err != nil {
			t.Fatal(err)
		}
		if storage.Sum(got) != h {
			t.Fatal("store kept a reference to the caller's slice")
		}
	})

	t.Run("HashMismatchRefused", func(t *testing.T) {
		s := open(t, 0)
		data, _ := Block(1, 1000)
		_, wrong := Block(2, 1000)
		_, err := s.Put(ctx, wrong, data)
		if !errors.Is(err, storage.ErrHashMismatch) {
			t.Fatalf("put with wrong hash: err=%v, want ErrHashMismatch", err)
		}
		if _, err := s.Get(ctx, wrong); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("refused block is readable: err=%v", err)
		}
		st, _ := s.Stat(ctx)
		if st.Used != 0 || st.Blocks != 0 {
			t.Fatalf("refused put used space: %+v", st)
		}
	})

	t.Run("GetMissing", func(t *testing.T) {
		s := open(t, 0)
		_, h := Block(3, 10)
		if _, err := s.Get(ctx, h); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("get missing: err=%v, want ErrNotFound", err)
		}
	})

	t.Run("HasBatch", func(t *testing.T) {
		s := open(t, 0)
		var hs []storage.Hash
		var want []bool
		for i := 0; i < 50; i++ {
			data, h := Block(int64(100+i), 100+i)
			if i%3 == 0 {
				if _, err := s.Put(ctx, h, data); err != nil {
					t.Fatal(err)
				}
			}
			hs = append(hs, h)
			want = append(want, i%3 == 0)
		}
		got, err := s.Has(ctx, hs)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("has = %v, want %v", got, want)
		}
		empty, err := s.Has(ctx, nil)
		if err != nil || len(empty) != 0 {
			t.Fatalf("has(nil) = %v, %v", empty, err)
		}
	})

	t.Run("DeleteFreesSpace", func(t *testing.T) {
		s := open(t, 0)
		a, ha := Block(10, 5000)
		b, hb := Block(11, 7000)
		_, hc := Block(12, 10)
		for _, p := range []struct {
			d []byte
			h storage.Hash
		}{{a, ha}, {b, hb}} {
			if _, err := s.Put(ctx, p.h, p.d); err != nil {
				t.Fatal(err)
			}
		}
		freed, err := s.Delete(ctx, []storage.Hash{ha, hc}, time.Time{})
		if err != nil || freed != 5000 {
			t.Fatalf("delete: freed=%d err=%v, want 5000", freed, err)
		}
		freed, err = s.Delete(ctx, []storage.Hash{ha}, time.Time{})
		if err != nil || freed != 0 {
			t.Fatalf("delete again: freed=%d err=%v, want 0", freed, err)
		}
		if _, err := s.Get(ctx, ha); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("deleted block readable: %v", err)
		}
		if got, err := s.Get(ctx, hb); err != nil || !bytes.Equal(got, b) {
			t.Fatalf("other block damaged by delete: %v", err)
		}
		st, _ := s.Stat(ctx)
		if st.Used != 7000 || st.Blocks != 1 {
			t.Fatalf("stat after delete = %+v, want used 7000 blocks 1", st)
		}
	})

	t.Run("QuotaRefusesDistinctly", func(t *testing.T) {
		const quota = 256 << 10
		s := open(t, quota)
		var err error
		var stored int64
		for i := 0; i < 64; i++ {
			data, h := Block(int64(1000+i), 64<<10)
			if _, err = s.Put(ctx, h, data); err != nil {
				break
			}
			stored += int64(len(data))
		}
		if !errors.Is(err, storage.ErrQuotaExceeded) {
			t.Fatalf("filling a %d-byte quota: err=%v, want ErrQuotaExceeded", quota, err)
		}
		if stored < quota-(64<<10) {
			t.Fatalf("quota refused early: stored %d of %d", stored, quota)
		}
		st, _ := s.Stat(ctx)
		if st.Used > st.Quota+(64<<10) || st.Used != stored {
			t.Fatalf("stat after quota = %+v, stored %d", st, stored)
		}
		// Freeing space makes room again.
		data, h := Block(1000, 64<<10)
		if _, err := s.Delete(ctx, []storage.Hash{h}, time.Time{}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Put(ctx, h, data); err != nil {
			t.Fatalf("put after delete under quota: %v", err)
		}
	})

	t.Run("TooLarge", func(t *testing.T) {
		s := open(t, 0)
		data := make([]byte, storage.MaxBlockSize+1)
		_, err := s.Put(ctx, storage.Sum(data), data)
		if err == nil {
			t.Fatal("put of a block above MaxBlockSize succeeded")
		}
	})

	t.Run("ConcurrentPutsSameAndDistinct", func(t *testing.T) {
		s := open(t, 0)
		shared, hs := Block(500, 32<<10)
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				for i := 0; i < 8; i++ {
					if _, err := s.Put(ctx, hs, shared); err != nil {
						errs <- err
						return
					}
					d, h := Block(int64(600+g*8+i), 8<<10)
					if _, err := s.Put(ctx, h, d); err != nil {
						errs <- err
						return
					}
					got, err := s.Get(ctx, h)
					if err != nil || !bytes.Equal(got, d) {
						errs <- fmt.Errorf("get after put: %v", err)
						return
					}
				}
			}(g)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		st, _ := s.Stat(ctx)
		if st.Blocks != 65 || st.Used != 32<<10+64*(8<<10) {
			t.Fatalf("stat = %+v, want 65 blocks, %d bytes", st, 32<<10+64*(8<<10))
		}
	})

	t.Run("StatHasID", func(t *testing.T) {
		s := open(t, 1<<20)
		st, err := s.Stat(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.ID == "" {
			t.Fatal("stat has no store ID")
		}
		if st.Quota < 1<<20 {
			t.Fatalf("quota = %d, want >= %d", st.Quota, 1<<20)
		}
	})

	t.Run("ClosedStoreFails", func(t *testing.T) {
		s := newStore(t, 0)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		data, h := Block(9, 10)
		if _, err := s.Put(ctx, h, data); err == nil {
			t.Fatal("put on a closed store succeeded")
		}
		if _, err := s.List(ctx, storage.Hash{}, 10); err == nil {
			t.Fatal("list on a closed store succeeded")
		}
	})

	runTouch(t, open, clk)
	runList(t, open)
}
