package mpi

import (
	"cmp"
	"slices"
)

// piece is part of one rank's block in a Gatherv or Scatterv that runs in
// rounds: n bytes at offset src of the rank's own buffer and at offset dst
// of root's buffer.
type piece struct {
	rank   int
	src    int64
	dst    int64
	n      int64
	offset int64 // dst - base of the piece's round; fits the limit
}

// round is one MPI_Gatherv or MPI_Scatterv call of a split collective.
// Root's buffer is passed from base, so every displacement is small.
type round struct {
	base   int64
	pieces []piece // at most one per rank
}

// schedule cuts every rank's block (counts[i] bytes at displs[i] in root's
// buffer) into pieces of at most limit bytes and groups them into rounds in
// which each rank has at most one piece and every piece starts at most
// limit bytes after the round's base. Each rank's pieces appear in source
// order. All ranks compute the same schedule from the same input.
//
// Pieces are taken in order of their place in root's buffer; a round is a
// window of limit bytes of that buffer, so the number of rounds is about
// total/limit and at most twice that, plus one per rank sharing a window
// with another piece of its own.
func schedule(counts, displs []int64, limit int64) []round {
	var ps []piece
	for r, n := range counts {
		for off := int64(0); off < n; off += limit {
			ps = append(ps, piece{rank: r, src: off, dst: displs[r] + off, n: min(limit, n-off)})
		}
	}
	slices.SortStableFunc(ps, func(a, b piece) int { return cmp.Compare(a.dst, b.dst) })
	assigned := make([]bool, len(ps))
	seen := make([]int, len(counts)) // round number (from 1) a rank last had a piece in
	var rounds []round
	for first, num := 0, 1; first < len(ps); num++ {
		rd := round{base: ps[first].dst}
		for j := first; j < len(ps) && ps[j].dst-rd.base <= limit; j++ {
			if assigned[j] || seen[ps[j].rank] == num {
				continue
			}
			assigned[j], seen[ps[j].rank] = true, num
			p := ps[j]
			p.offset = p.dst - rd.base
			rd.pieces = append(rd.pieces, p)
		}
		rounds = append(rounds, rd)
		for first < len(ps) && assigned[first] {
			first++
		}
	}
	return rounds
}
