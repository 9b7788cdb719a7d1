package storetest

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/ckptio/ckptio/storage"
)

// runList checks List: a cursor walk over every block held.
func runList(t *testing.T, open func(*testing.T, int64) storage.BlockStore) {
	ctx := context.Background()

	t.Run("ListEmpty", func(t *testing.T) {
		s := open(t, 0)
		got, err := s.List(ctx, storage.Hash{}, 64)
		if err != nil || len(got) != 0 {
			t.Fatalf("list of an empty store = %d hashes, %v", len(got), err)
		}
	})

	t.Run("ListPaging", func(t *testing.T) {
		s := open(t, 0)
		hs, data := blocks(4000, 1000, 64)
		putAll(t, s, hs, data)
		want := sorted(hs)

		got := walk(t, s, 64)
		if !slices.Equal(got, want) {
			t.Fatalf("walk with max 64 returned %d hashes, want the %d held in order", len(got), len(want))
		}
		// Pages of one, and one page with room to spare.
		if got := walk(t, s, 1); !slices.Equal(got, want) {
			t.Fatalf("walk with max 1 returned %d hashes, want %d", len(got), len(want))
		}
		page, err := s.List(ctx, storage.Hash{}, 5000)
		if err != nil || len(page) == 0 || !slices.Equal(page, want[:len(page)]) {
			t.Fatalf("list max 5000 = %d hashes, %v; want a prefix of the %d held", len(page), err, len(want))
		}
		// A cursor that is no block's hash starts after it.
		mid := want[500]
		mid[31]++ // not held: the hashes are random
		page, err = s.List(ctx, mid, 3)
		if err != nil || !slices.Equal(page, want[501:504]) {
			t.Fatalf("list after a hash not held = %d hashes, %v", len(page), err)
		}
		// After the last hash there is nothing.
		if page, err := s.List(ctx, want[len(want)-1], 64); err != nil || len(page) != 0 {
			t.Fatalf("list after the last hash = %d hashes, %v", len(page), err)
		}
		if page, err := s.List(ctx, storage.Hash{}, 0); err != nil || len(page) != 0 {
			t.Fatalf("list max 0 = %d hashes, %v", len(page), err)
		}
	})

	t.Run("ListAfterDeletes", func(t *testing.T) {
		s := open(t, 0)
		hs, data := blocks(6000, 300, 32)
		putAll(t, s, hs, data)
		var gone, kept []storage.Hash
		for i, h := range hs {
			if i%3 == 0 {
				gone = append(gone, h)
			} else {
				kept = append(kept, h)
			}
		}
		if _, err := s.Delete(ctx, gone, time.Time{}); err != nil {
			t.Fatal(err)
		}
		if got := walk(t, s, 16); !slices.Equal(got, sorted(kept)) {
			t.Fatalf("walk after deletes returned %d hashes, want the %d kept", len(got), len(kept))
		}
		// Put some back and add new ones: the walk sees exactly what is held.
		back := gone[:20:20]
		more, moreData := blocks(7000, 50, 32)
		putAll(t, s, append(back, more...), append(pick(hs, data, back), moreData...))
		want := sorted(slices.Concat(kept, back, more))
		if got := walk(t, s, 7); !slices.Equal(got, want) {
			t.Fatalf("walk after puts returned %d hashes, want %d", len(got), len(want))
		}
		st, _ := s.Stat(ctx)
		if st.Blocks != int64(len(want)) {
			t.Fatalf("stat = %+v, want %d blocks", st, len(want))
		}
	})

	// Blocks held throughout a walk are all seen, while others come and go.
	t.Run("ListDuringChanges", func(t *testing.T) {
		s := open(t, 0)
		stable, stableData := blocks(8000, 200, 32)
		churn, churnData := blocks(9000, 200, 32)
		putAll(t, s, stable, stableData)
		putAll(t, s, churn[:100], churnData[:100])
		seen := make(map[storage.Hash]bool)
		var last storage.Hash
		for i := 0; ; i++ {
			page, err := s.List(ctx, last, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			for _, h := range page {
				if bytes.Compare(h[:], last[:]) <= 0 {
					t.Fatalf("list after %s returned %s, not after it", last.Short(), h.Short())
				}
				seen[h] = true
				last = h
			}
			// Between pages: delete one churn block, put another.
			if _, err := s.Delete(ctx, churn[i%100:i%100+1], time.Time{}); err != nil {
				t.Fatal(err)
			}
			put(t, s, churn[100+i%100], churnData[100+i%100])
		}
		for i, h := range stable {
			if !seen[h] {
				t.Fatalf("stable block %d (%s) not seen by the walk", i, h.Short())
			}
		}
	})
}

// blocks returns n distinct blocks of size bytes, seeded from seed.
func blocks(seed int64, n, size int) ([]storage.Hash, [][]byte) {
	hs := make([]storage.Hash, n)
	data := make([][]byte, n)
	for i := range hs {
		data[i], hs[i] = Block(seed+int64(i), size)
	}
	return hs, data
}

// pick returns the data of the blocks which among hs.
func pick(hs []storage.Hash, data [][]byte, which []storage.Hash) [][]byte {
	var out [][]byte
	for _, w := range which {
		out = append(out, data[slices.Index(hs, w)])
	}
	return out
}

func sorted(hs []storage.Hash) []storage.Hash {
	out := slices.Clone(hs)
	slices.SortFunc(out, compare)
	return out
}

func compare(a, b storage.Hash) int { return bytes.Compare(a[:], b[:]) }

// walk lists every block of s, max at a time, checking each page.
func walk(t *testing.T, s storage.BlockStore, max int) []storage.Hash {
	t.Helper()
	var all []storage.Hash
	var after storage.Hash
	for {
		page, err := s.List(context.Background(), after, max)
		if err != nil {
			t.Fatalf("list after %s: %v", after.Short(), err)
		}
		if len(page) == 0 {
			return all
		}
		if len(page) > max {
			t.Fatalf("list max %d returned %d hashes", max, len(page))
		}
		for _, h := range page {
			if compare(h, after) <= 0 {
				t.Fatalf("list after %s returned %s: not ascending", after.Short(), h.Short())
			}
			after = h
		}
		all = append(all, page...)
		if len(all) > 1<<20 {
			t.Fatal("walk does not end")
		}
	}
}
