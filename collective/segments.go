package collective

import "github.com/ckptio/ckptio/storage"

// segment is a piece of one region of one rank: the unit that moves between
// a rank and its leader, and one block on the stores.
type segment struct {
	region int
	off    int64
	len    int64
	hash   storage.Hash // BLAKE3 of the bytes, computed by the owning rank
}

// roundsOf groups consecutive segments into rounds of at most c bytes each,
// at least one segment per round. Both a rank and its leader compute it from
// the same sizes, so they agree on every round without messages.
func roundsOf(segs []segment, c int64) [][]segment {
	var out [][]segment
	for len(segs) > 0 {
		n, sum := 0, int64(0)
		for n < len(segs) && (n == 0 || sum+segs[n].len <= c) {
			sum += segs[n].len
			n++
		}
		out = append(out, segs[:n])
		segs = segs[n:]
	}
	return out
}

func bytesOf(segs []segment) int64 {
	var n int64
	for _, s := range segs {
		n += s.len
	}
	return n
}
