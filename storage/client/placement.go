package client

import (
	"encoding/binary"
	"math"
	"sync"

	"github.com/zeebo/blake3"

	"github.com/ckptio/ckptio/storage"
)

// placer chooses stores for a block by weighted rendezvous hashing: every
// store gets a score from the block's key and the store's ID, weighted by
// the store's free space, and the best-scoring stores hold the block.
//
// Why not round robin: the choice depends only on the key and the store
// set, so identical blocks written by different I/O leaders, ranks or jobs
// land on the same store, which stores them once (cluster-wide dedup with no
// coordination). Over many keys a store still gets blocks in proportion to
// its free space, and when a store leaves, only its blocks move.
type placer struct {
	ids    []string
	weight []float64
	seeds  []uint64

	mu  sync.Mutex
	out []bool // excluded after a failure
}

func newPlacer(ids []string, free []int64) *placer {
	p := &placer{ids: ids, weight: make([]float64, len(ids)), seeds: make([]uint64, len(ids)), out: make([]bool, len(ids))}
	var most int64
	for _, f := range free {
		most = max(most, f)
	}
	for i := range ids {
		// Scale so a store with little space keeps a small share while it
		// has room; quantize so small changes in free space between
		// versions do not move blocks (which would defeat dedup).
		w := 1.0
		if most > 0 {
			w = math.Round(float64(free[i])/float64(most)*16) / 16
		}
		p.weight[i] = math.Max(w, 1.0/64)
		h := blake3.Sum256([]byte(ids[i]))
		p.seeds[i] = binary.LittleEndian.Uint64(h[:8])
	}
	return p
}

// score is store i's weighted rendezvous score for key (higher wins).
func (p *placer) score(i int, key storage.Hash) float64 {
	x := binary.LittleEndian.Uint64(key[:8]) ^ p.seeds[i]
	// splitmix64 finalizer: a well-mixed 64-bit value from key and store.
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	u := (float64(x>>11) + 0.5) / (1 << 53) // in (0, 1)
	return -p.weight[i] / math.Log(u)
}

// pick returns up to n distinct stores for key, best first, skipping
// excluded stores and those in skip.
func (p *placer) pick(key storage.Hash, n int, skip map[int]bool) []int {
	p.mu.Lock()
	out := append([]bool(nil), p.out...)
	p.mu.Unlock()
	var best []int
	var scores []float64
	for i := range p.ids {
		if out[i] || skip[i] {
			continue
		}
		s := p.score(i, key)
		j := len(best)
		for j > 0 && scores[j-1] < s {
			j--
		}
		if j >= n {
			continue
		}
		best = append(best, 0)
		scores = append(scores, 0)
		copy(best[j+1:], best[j:])
		copy(scores[j+1:], scores[j:])
		best[j], scores[j] = i, s
		if len(best) > n {
			best, scores = best[:n], scores[:n]
		}
	}
	return best
}

// exclude stops placing blocks on store i for the rest of this writer.
func (p *placer) exclude(i int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.out[i] = true
}
