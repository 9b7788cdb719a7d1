package local

import (
	"errors"
	"fmt"
	"runtime/debug"
	"sync"

	"github.com/ckptio/ckptio/collective"
)

// Options configure a world.
type Options struct {
	// RanksPerNode simulates nodes for SplitShared: world rank r is on node
	// r / RanksPerNode. Zero (or negative) puts every rank on one node.
	RanksPerNode int
}

// Run runs fn as every rank of a world of n ranks, each in its own
// goroutine with its own Comm, and waits for all of them. It returns the
// ranks' errors joined, each prefixed with its rank; a panic becomes an
// error. A rank whose fn returned, with or without an error, has left: the
// collectives of other ranks that wait on it fail with ErrLeft.
func Run(n int, fn func(c collective.Comm) error) error {
	return RunWith(n, Options{}, fn)
}

// RunWith is Run with options.
func RunWith(n int, o Options, fn func(c collective.Comm) error) error {
	if n < 1 {
		return fmt.Errorf("%w: Run: %d ranks", ErrArg, n)
	}
	comms := newWorld(n, o)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, c := range comms {
		wg.Go(func() {
			defer c.Leave()
			if err := runRank(fn, c); err != nil {
				errs[i] = fmt.Errorf("local: rank %d: %w", i, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// runRank calls fn, turning a panic into an error.
func runRank(fn func(c collective.Comm) error, c *Comm) (err error) {
	defer func() {
		if p := recover(); p != nil {
			if e, ok := p.(error); ok {
				err = fmt.Errorf("panic: %w\n%s", e, debug.Stack())
			} else {
				err = fmt.Errorf("panic: %v\n%s", p, debug.Stack())
			}
		}
	}()
	return fn(c)
}

// New returns the n Comms of a new world, element i being rank i; each is
// a *Comm. The caller runs each rank in its own goroutine and calls Leave
// on the rank's Comm when the rank is done (defer c.(*local.Comm).Leave()),
// so that other ranks' collectives waiting on it fail instead of hanging.
// New panics if n < 1.
func New(n int) []collective.Comm { return NewWith(n, Options{}) }

// NewWith is New with options.
func NewWith(n int, o Options) []collective.Comm {
	if n < 1 {
		panic(fmt.Sprintf("local: New: %d ranks", n))
	}
	comms := newWorld(n, o)
	out := make([]collective.Comm, n)
	for i, c := range comms {
		out[i] = c
	}
	return out
}

// world is the state shared by all communicators of one Run or New.
type world struct {
	perNode int // Options.RanksPerNode

	mu struct {
		sync.Mutex
		gone   []bool // by world rank: the rank left
		groups map[*group]struct{}
	}
}

// group is one communicator as all its ranks share it.
type group struct {
	w       *world
	ranks   []int // world rank of each rank
	isWorld bool

	// Guarded by w.mu.
	left   []bool // the rank freed the communicator or left the world
	nleft  int
	rounds map[uint64]*round // calls some rank made and not all finished
}

// round is one collective call of a group: the k-th of every rank.
type round struct {
	calls   []*call // by rank; nil until the rank arrives
	arrived int
	done    chan struct{} // closed once err and the results are final
	err     error
}

func newWorld(n int, o Options) []*Comm {
	w := &world{perNode: o.RanksPerNode}
	w.mu.gone = make([]bool, n)
	w.mu.groups = make(map[*group]struct{})
	ranks := make([]int, n)
	for i := range ranks {
		ranks[i] = i
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	g := w.newGroupLocked(ranks)
	g.isWorld = true
	comms := make([]*Comm, n)
	for i := range comms {
		comms[i] = &Comm{g: g, rank: i}
	}
	return comms
}

// newGroupLocked registers a communicator of the given world ranks.
func (w *world) newGroupLocked(ranks []int) *group {
	g := &group{w: w, ranks: ranks, left: make([]bool, len(ranks)), rounds: make(map[uint64]*round)}
	w.mu.groups[g] = struct{}{}
	for i, wr := range ranks {
		if w.mu.gone[wr] {
			g.leaveLocked(i)
		}
	}
	return g
}

// leave marks world rank wr as gone from every communicator.
func (w *world) leave(wr int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.mu.gone[wr] {
		return
	}
	w.mu.gone[wr] = true
	for g := range w.mu.groups {
		for i, r := range g.ranks {
			if r == wr {
				g.leaveLocked(i)
			}
		}
	}
}

// leaveLocked marks rank i as gone from g and fails the calls waiting on it.
func (g *group) leaveLocked(i int) {
	if g.left[i] {
		return
	}
	g.left[i] = true
	g.nleft++
	for seq, r := range g.rounds {
		if r.calls[i] == nil {
			g.endLocked(seq, r, newError(r.op(), i, ErrLeft, ""))
		}
	}
	if g.nleft == len(g.ranks) {
		delete(g.w.mu.groups, g)
	}
}

// endLocked finishes round seq with err and wakes its ranks.
func (g *group) endLocked(seq uint64, r *round, err error) {
	r.err = err
	close(r.done)
	delete(g.rounds, seq)
}

// op names the collective of r for errors.
func (r *round) op() string {
	for _, c := range r.calls {
		if c != nil {
			return c.op
		}
	}
	return "collective"
}

// join makes cl the caller's next call on c and waits until every rank has
// made its call, or one left. The last rank to arrive runs the collective.
func (c *Comm) join(cl *call) error {
	g := c.g
	g.w.mu.Lock()
	if g.left[c.rank] {
		g.w.mu.Unlock()
		return newError(cl.op, c.rank, ErrClosed, "")
	}
	seq := c.seq
	c.seq++
	r := g.rounds[seq]
	if r == nil {
		r = &round{calls: make([]*call, len(g.ranks)), done: make(chan struct{})}
		g.rounds[seq] = r
	}
	r.calls[c.rank] = cl
	r.arrived++
	if i := r.missingLocked(g); i >= 0 {
		g.endLocked(seq, r, newError(cl.op, i, ErrLeft, ""))
	} else if r.arrived == len(r.calls) {
		g.endLocked(seq, r, g.runLocked(r.calls))
	}
	g.w.mu.Unlock()
	<-r.done
	return r.err
}

// missingLocked returns a rank that left without making its call to r, or
// -1.
func (r *round) missingLocked(g *group) int {
	for i, left := range g.left {
		if left && r.calls[i] == nil {
			return i
		}
	}
	return -1
}
