// Package placement decides which stores hold the copies of a block. It is
// the one placement function of ckptio: the version writer places new
// blocks with it (storage/client) and the manager's repair places the
// copies it re-creates with it (storage/manager), so a repaired copy lands
// where a writer would have put it and equal blocks keep landing on the
// same stores.
//
// # Rule
//
// Weighted rendezvous hashing (highest random weight): every store gets a
// score from the block's key and the store's ID, weighted by the store's
// free space, and the best-scoring stores hold the block.
//
// The choice depends only on the key and the set of stores, so identical
// blocks written by different I/O leaders, ranks or jobs land on the same
// store, which stores them once (cluster-wide dedup with no coordination).
// Over many keys a store gets blocks in proportion to its weight, and when
// a store leaves, only its blocks move. Weights are free space relative to
// the store with the most, rounded to sixteenths (and at least 1/64), so
// that the small changes in free space between two checkpoints do not move
// blocks, which would defeat dedup.
package placement

import (
	"encoding/binary"
	"math"

	"github.com/zeebo/blake3"

	"github.com/ckptio/ckptio/storage"
)

// Store is a store a block may be placed on.
type Store struct {
	ID   string // the store's stable identity
	Free int64  // bytes it can still take (storage.Usage.Free)
}

// Placer ranks stores for keys. It is immutable and safe for concurrent
// use.
type Placer struct {
	ids    []string
	weight []float64
	seeds  []uint64
}

// New returns a Placer over stores; a store's index in stores is its
// index in Pick's answers.
func New(stores []Store) *Placer {
	p := &Placer{ids: make([]string, len(stores)), weight: make([]float64, len(stores)), seeds: make([]uint64, len(stores))}
	var most int64
	for _, s := range stores {
		most = max(most, s.Free)
	}
	for i, s := range stores {
		w := 1.0
		if most > 0 {
			w = math.Round(float64(s.Free)/float64(most)*16) / 16
		}
		p.ids[i] = s.ID
		p.weight[i] = math.Max(w, 1.0/64)
		h := blake3.Sum256([]byte(s.ID))
		p.seeds[i] = binary.LittleEndian.Uint64(h[:8])
	}
	return p
}

// Len is the number of stores.
func (p *Placer) Len() int { return len(p.ids) }

// ID is the ID of store i.
func (p *Placer) ID(i int) string { return p.ids[i] }

// score is store i's weighted rendezvous score for key (higher wins).
func (p *Placer) score(i int, key storage.Hash) float64 {
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

// Pick returns the indexes of up to n distinct stores for key, best first,
// leaving out the stores for which skip returns true (skip may be nil).
// skip is called once per store, in index order.
func (p *Placer) Pick(key storage.Hash, n int, skip func(i int) bool) []int {
	if n <= 0 {
		return nil
	}
	best := make([]int, 0, n+1)
	scores := make([]float64, 0, n+1)
	for i := range p.ids {
		if skip != nil && skip(i) {
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
