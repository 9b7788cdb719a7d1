package mpi

import (
	"math/rand/v2"
	"testing"
)

// TestSchedule checks the rounds of split Gatherv/Scatterv calls: every
// byte of every block is moved exactly once, from the right source offset,
// with at most one piece per rank per round and counts and displacements
// within the limit.
func TestSchedule(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for iter := range 500 {
		size := 1 + rng.IntN(9)
		limit := int64(1 + rng.IntN(50))
		counts, displs := make([]int64, size), make([]int64, size)
		var off int64
		for _, i := range rng.Perm(size) {
			if rng.IntN(4) > 0 {
				counts[i] = rng.Int64N(5 * limit)
			}
			off += rng.Int64N(2 * limit) // gap
			displs[i] = off
			off += counts[i]
		}
		rounds := schedule(counts, displs, limit)
		moved := make([]int64, size) // bytes moved per rank, in source order
		var total int64
		for _, r := range rounds {
			seen := map[int]bool{}
			for _, p := range r.pieces {
				if seen[p.rank] {
					t.Fatalf("iter %d: rank %d twice in a round", iter, p.rank)
				}
				seen[p.rank] = true
				if p.n <= 0 || p.n > limit || p.offset < 0 || p.offset > limit || r.base+p.offset != p.dst {
					t.Fatalf("iter %d: bad piece %+v in round at %d (limit %d)", iter, p, r.base, limit)
				}
				if p.src != moved[p.rank] || p.dst != displs[p.rank]+p.src {
					t.Fatalf("iter %d: piece %+v out of order (moved %d)", iter, p, moved[p.rank])
				}
				moved[p.rank] += p.n
			}
			if len(r.pieces) == 0 {
				t.Fatalf("iter %d: empty round", iter)
			}
		}
		for i := range counts {
			if moved[i] != counts[i] {
				t.Fatalf("iter %d: rank %d moved %d of %d bytes", iter, i, moved[i], counts[i])
			}
			total += counts[i]
		}
		// About one round per limit bytes of root's buffer, at most twice
		// that plus one per rank.
		if bound := 2*(off/limit+1) + int64(size); int64(len(rounds)) > bound {
			t.Fatalf("iter %d: %d rounds for %d bytes, limit %d", iter, len(rounds), total, limit)
		}
	}
}

func TestScheduleEmpty(t *testing.T) {
	if r := schedule([]int64{0, 0}, []int64{0, 5}, 10); len(r) != 0 {
		t.Fatalf("got %d rounds for no data", len(r))
	}
}
