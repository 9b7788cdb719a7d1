package client

import "sync"

// placer picks stores by smooth weighted round robin: over any run of picks
// each store is chosen in proportion to its weight, and picks of one store
// are spread out rather than bunched. Weights are the stores' free bytes,
// scaled so that a store with little space still gets some blocks while it
// has room.
type placer struct {
	mu      sync.Mutex
	weight  []int64
	current []int64
	out     []bool // excluded after a failure
}

func newPlacer(free []int64) *placer {
	p := &placer{
		weight:  make([]int64, len(free)),
		current: make([]int64, len(free)),
		out:     make([]bool, len(free)),
	}
	var max int64
	for _, f := range free {
		if f > max {
			max = f
		}
	}
	for i, f := range free {
		// Scale to 1..1000 so sums never overflow and any store with free
		// space keeps a non-zero share.
		w := int64(1000)
		if max > 0 {
			w = f * 1000 / max
		}
		if w < 1 {
			w = 1
		}
		p.weight[i] = w
	}
	return p
}

// next returns the index of the next store, skipping excluded ones and the
// ones in skip; -1 when none is left.
func (p *placer) next(skip map[int]bool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	best, total := -1, int64(0)
	for i, w := range p.weight {
		if p.out[i] || skip[i] {
			continue
		}
		p.current[i] += w
		total += w
		if best < 0 || p.current[i] > p.current[best] {
			best = i
		}
	}
	if best >= 0 {
		p.current[best] -= total
	}
	return best
}

// exclude stops placing blocks on store i for the rest of this writer.
func (p *placer) exclude(i int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.out[i] = true
}

// live counts the stores not excluded.
func (p *placer) live() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, o := range p.out {
		if !o {
			n++
		}
	}
	return n
}
