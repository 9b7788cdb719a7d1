package placement

import (
	"fmt"
	"testing"

	"github.com/ckptio/ckptio/storage"
)

func TestPlacementFollowsFreeSpace(t *testing.T) {
	p := New([]Store{{"a", 300}, {"b", 100}, {"c", 0}})
	count := make([]int, 3)
	for i := 0; i < 4000; i++ {
		count[p.Pick(storage.Sum([]byte(fmt.Sprint(i))), 1, nil)[0]]++
	}
	// Weights 1, 1/3 (quantized to 5/16) and 1/64.
	if count[0] < 2700 || count[1] < 700 || count[1] > 1200 || count[2] > 100 {
		t.Fatalf("picks %v, want about 3:1 and almost none on the full store", count)
	}
	// The same key always goes to the same store, and distinct stores are
	// returned for replicas.
	k := storage.Sum([]byte("k"))
	if a, b := p.Pick(k, 2, nil), p.Pick(k, 2, nil); fmt.Sprint(a) != fmt.Sprint(b) || a[0] == a[1] {
		t.Fatalf("pick not deterministic or not distinct: %v %v", a, b)
	}
}

// TestPickIsARanking: asking for fewer stores, or skipping some, keeps the
// order of the others, so a writer that loses a store and a repair that
// skips the holders both take the next stores of the same ranking.
func TestPickIsARanking(t *testing.T) {
	var stores []Store
	for i := 0; i < 7; i++ {
		stores = append(stores, Store{fmt.Sprintf("s%d", i), int64(100 + 37*i)})
	}
	p := New(stores)
	for i := 0; i < 500; i++ {
		k := storage.Sum([]byte(fmt.Sprint(i)))
		all := p.Pick(k, len(stores), nil)
		if len(all) != len(stores) {
			t.Fatalf("Pick(all) = %v", all)
		}
		if got := p.Pick(k, 3, nil); fmt.Sprint(got) != fmt.Sprint(all[:3]) {
			t.Fatalf("Pick(3) = %v, ranking %v", got, all)
		}
		skipped := map[int]bool{all[0]: true, all[2]: true}
		got := p.Pick(k, 2, func(i int) bool { return skipped[i] })
		if fmt.Sprint(got) != fmt.Sprint([]int{all[1], all[3]}) {
			t.Fatalf("Pick skipping %v = %v, ranking %v", skipped, got, all)
		}
	}
	if got := p.Pick(storage.Sum(nil), 0, nil); len(got) != 0 {
		t.Fatalf("Pick(0) = %v", got)
	}
}

// TestSmallChangesDoNotMoveBlocks: free space that changes by less than a
// sixteenth of the largest store's keeps every block where it was.
func TestSmallChangesDoNotMoveBlocks(t *testing.T) {
	a := New([]Store{{"a", 1000}, {"b", 500}, {"c", 800}})
	b := New([]Store{{"a", 990}, {"b", 497}, {"c", 805}})
	for i := 0; i < 2000; i++ {
		k := storage.Sum([]byte(fmt.Sprint(i)))
		if x, y := a.Pick(k, 2, nil), b.Pick(k, 2, nil); fmt.Sprint(x) != fmt.Sprint(y) {
			t.Fatalf("key %d moved from %v to %v", i, x, y)
		}
	}
}
