package disk

import (
	"math/rand"
	"slices"
	"testing"

	"github.com/ckptio/ckptio/storage"
)

// TestOrderAgainstModel runs random adds and removes, enough to cross
// recentMax and the half-marked rebuild several times, and checks list
// against a sorted model after each step of a walk.
func TestOrderAgainstModel(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	pool := make([]storage.Hash, 3*recentMax)
	for i := range pool {
		rng.Read(pool[i][:])
	}
	held := make(map[storage.Hash]bool)
	var o order
	initial := slices.Clone(pool[:recentMax])
	o.reset(slices.Clone(initial))
	for _, h := range initial {
		held[h] = true
	}
	check := func(step int) {
		t.Helper()
		var want []storage.Hash
		for h := range held {
			want = append(want, h)
		}
		slices.SortFunc(want, compareHash)
		if o.len() != len(want) {
			t.Fatalf("step %d: len = %d, want %d", step, o.len(), len(want))
		}
		var got []storage.Hash
		var after storage.Hash
		for page := o.list(after, 100); len(page) > 0; page = o.list(after, 100) {
			got = append(got, page...)
			after = page[len(page)-1]
		}
		if !slices.Equal(got, want) {
			t.Fatalf("step %d: walk returned %d hashes, want %d in order", step, len(got), len(want))
		}
		// A cursor in the middle, held or not.
		if len(want) > 10 {
			if page := o.list(want[5], 3); !slices.Equal(page, want[6:9]) {
				t.Fatalf("step %d: list after the 6th hash = %d hashes", step, len(page))
			}
		}
	}
	check(0)
	for step := 1; step <= 40_000; step++ {
		h := pool[rng.Intn(len(pool))]
		// Phases: mostly adds, then mostly removes, to cross both
		// thresholds.
		adding := rng.Intn(10) < 7
		if (step/10_000)%2 == 1 {
			adding = !adding
		}
		switch {
		case adding && !held[h]:
			held[h] = true
			o.add(h)
		case !adding && held[h]:
			delete(held, h)
			o.remove(h)
		}
		if step%2_000 == 0 {
			check(step)
		}
	}
	check(-1)
	if page := o.list(storage.Hash{}, 0); len(page) != 0 {
		t.Fatalf("list max 0 = %d hashes", len(page))
	}
}
