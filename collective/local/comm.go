package local

import (
	"cmp"
	"slices"

	"github.com/ckptio/ckptio/collective"
)

// Comm is one rank's handle on an in-process communicator. It follows the
// collective.Comm contract: one goroutine at a time per Comm, Dup for
// concurrent collective streams.
type Comm struct {
	g    *group
	rank int
	seq  uint64 // calls made on g by this rank; guarded by g.w.mu
}

var _ collective.Comm = (*Comm)(nil)

// call is one rank's arguments to a collective, and its result for Split
// and Dup.
type call struct {
	op     string
	root   int
	err    error // the rank's own arguments are wrong
	buf    []byte
	send   []byte
	recv   []byte
	counts []int
	displs []int
	isend  []int64
	irecv  []int64
	redop  collective.Op
	color  int
	key    int
	out    *Comm // Split, SplitShared, Dup: the rank's new Comm, nil if none
}

// Rank returns the caller's rank in c. It is not collective.
func (c *Comm) Rank() int { return c.rank }

// Size returns the number of ranks in c. It is not collective.
func (c *Comm) Size() int { return len(c.g.ranks) }

// Leave marks the caller's rank as gone from the world and from every
// communicator made from it, like a process that exited: collectives of
// other ranks that wait on it fail with ErrLeft, and its own later calls
// fail with ErrClosed. It is not collective, is idempotent, and may be
// called on any of the rank's Comms. Run calls it when a rank's function
// returns; callers of New call it themselves.
func (c *Comm) Leave() { c.g.w.leave(c.g.ranks[c.rank]) }

// Barrier blocks until every rank of c has called it.
func (c *Comm) Barrier() error { return c.join(&call{op: "Barrier"}) }

// Bcast copies root's buf into buf on every other rank. All bufs must have
// root's length.
func (c *Comm) Bcast(buf []byte, root int) error {
	return c.join(&call{op: "Bcast", root: root, buf: buf, err: c.checkRoot("Bcast", root)})
}

// Gatherv copies each rank's send to root's recv[displs[i]:], where
// counts[i] must be len(send) of rank i. counts, displs and recv matter on
// root only.
func (c *Comm) Gatherv(send, recv []byte, counts, displs []int, root int) error {
	cl := &call{op: "Gatherv", root: root, send: send, recv: recv, counts: counts, displs: displs}
	cl.err = c.checkRoot(cl.op, root)
	if cl.err == nil && c.rank == root {
		cl.err = c.checkLayout(cl.op, counts, displs, len(recv), ErrTruncate)
	}
	return c.join(cl)
}

// Scatterv copies root's send[displs[i]:][:counts[i]] to rank i's recv,
// whose length must be counts[i]. send, counts and displs matter on root
// only.
func (c *Comm) Scatterv(send []byte, counts, displs []int, recv []byte, root int) error {
	cl := &call{op: "Scatterv", root: root, send: send, recv: recv, counts: counts, displs: displs}
	cl.err = c.checkRoot(cl.op, root)
	if cl.err == nil && c.rank == root {
		cl.err = c.checkLayout(cl.op, counts, displs, len(send), ErrCount)
	}
	return c.join(cl)
}

// AllreduceInt64 sets recv on every rank to the elementwise reduction of
// all ranks' send by op. send and recv have one length on all ranks; they
// may be the same slice.
func (c *Comm) AllreduceInt64(send, recv []int64, op collective.Op) error {
	cl := &call{op: "AllreduceInt64", isend: send, irecv: recv, redop: op}
	switch {
	case op != collective.OpSum && op != collective.OpMax && op != collective.OpMin:
		cl.err = newError(cl.op, c.rank, ErrArg, "unknown Op %d", op)
	case len(send) != len(recv):
		cl.err = newError(cl.op, c.rank, ErrCount, "send has %d elements, recv %d", len(send), len(recv))
	}
	return c.join(cl)
}

// Split returns the communicator of the ranks of c that pass the same
// color, ordered by key, then by rank in c. A rank passing a negative color
// (MPI_UNDEFINED) gets a nil Comm and a nil error.
func (c *Comm) Split(color, key int) (collective.Comm, error) {
	return c.split(&call{op: "Split", color: color, key: key})
}

// SplitShared returns the communicator of the ranks of c on the caller's
// node, ordered by key, then by rank in c. The node of world rank r is
// r / Options.RanksPerNode, or the single node by default.
func (c *Comm) SplitShared(key int) (collective.Comm, error) {
	color := 0
	if n := c.g.w.perNode; n > 0 {
		color = c.g.ranks[c.rank] / n
	}
	return c.split(&call{op: "SplitShared", color: color, key: key})
}

// Dup returns a new communicator of the same ranks, whose collectives are
// matched independently of c's.
func (c *Comm) Dup() (collective.Comm, error) {
	return c.split(&call{op: "Dup", key: c.rank})
}

func (c *Comm) split(cl *call) (collective.Comm, error) {
	if err := c.join(cl); err != nil {
		return nil, err
	}
	if cl.out == nil {
		return nil, nil // an untyped nil, so that the caller's c == nil holds
	}
	return cl.out, nil
}

// Free releases the caller's use of a communicator made by Split,
// SplitShared or Dup; the world cannot be freed. Unlike MPI_Comm_free it
// does not wait for the other ranks: the caller leaves c, so calls of
// other ranks that wait on it fail with ErrLeft, and its own later calls
// on c fail with ErrClosed.
func (c *Comm) Free() error {
	w := c.g.w
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case c.g.left[c.rank]:
		return newError("Free", c.rank, ErrClosed, "")
	case c.g.isWorld:
		return newError("Free", c.rank, ErrArg, "cannot free the world")
	}
	c.g.leaveLocked(c.rank)
	return nil
}

func (c *Comm) checkRoot(op string, root int) error {
	if root < 0 || root >= c.Size() {
		return newError(op, c.rank, ErrArg, "root %d not in [0, %d)", root, c.Size())
	}
	return nil
}

// checkLayout checks root's counts and displs against its buffer of n
// bytes; a block past the end is an error of kind over.
func (c *Comm) checkLayout(op string, counts, displs []int, n int, over error) error {
	if len(counts) != c.Size() || len(displs) != c.Size() {
		return newError(op, c.rank, ErrCount, "%d counts and %d displs for %d ranks", len(counts), len(displs), c.Size())
	}
	for i, cnt := range counts {
		d := displs[i]
		switch {
		case cnt < 0 || d < 0:
			return newError(op, c.rank, ErrCount, "rank %d: count %d, displ %d", i, cnt, d)
		case cnt > n-d:
			return newError(op, c.rank, over, "buffer has %d bytes, rank %d needs [%d, %d)", n, i, d, d+cnt)
		}
	}
	return nil
}

// runLocked performs a collective once every rank has made its call; it
// returns the error of the whole call. It writes nothing unless all checks
// pass.
func (g *group) runLocked(calls []*call) error {
	first := calls[0]
	for i, cl := range calls {
		switch {
		case cl.op != first.op:
			return newError(cl.op, i, ErrMismatch, "called %s, rank 0 called %s", cl.op, first.op)
		case cl.root != first.root:
			return newError(cl.op, i, ErrMismatch, "root %d, rank 0 passed root %d", cl.root, first.root)
		case cl.redop != first.redop:
			return newError(cl.op, i, ErrMismatch, "Op %d, rank 0 passed Op %d", cl.redop, first.redop)
		}
	}
	for _, cl := range calls {
		if cl.err != nil {
			return cl.err
		}
	}
	root := calls[first.root]
	switch first.op {
	case "Bcast":
		for i, cl := range calls {
			if len(cl.buf) != len(root.buf) {
				return newError(cl.op, i, ErrTruncate, "buffer has %d bytes, root sends %d", len(cl.buf), len(root.buf))
			}
		}
		for _, cl := range calls {
			copy(cl.buf, root.buf)
		}
	case "Gatherv":
		for i, cl := range calls {
			if len(cl.send) != root.counts[i] {
				return newError(cl.op, i, ErrTruncate, "sends %d bytes, root expects %d", len(cl.send), root.counts[i])
			}
		}
		for i, cl := range calls {
			copy(root.recv[root.displs[i]:], cl.send)
		}
	case "Scatterv":
		for i, cl := range calls {
			if len(cl.recv) != root.counts[i] {
				return newError(cl.op, i, ErrTruncate, "receives into %d bytes, root sends %d", len(cl.recv), root.counts[i])
			}
		}
		for i, cl := range calls {
			copy(cl.recv, root.send[root.displs[i]:])
		}
	case "AllreduceInt64":
		for i, cl := range calls {
			if len(cl.isend) != len(first.isend) {
				return newError(cl.op, i, ErrCount, "%d elements, rank 0 has %d", len(cl.isend), len(first.isend))
			}
		}
		acc := slices.Clone(first.isend)
		for _, cl := range calls[1:] {
			for j, v := range cl.isend {
				switch first.redop {
				case collective.OpSum:
					acc[j] += v
				case collective.OpMax:
					acc[j] = max(acc[j], v)
				case collective.OpMin:
					acc[j] = min(acc[j], v)
				}
			}
		}
		for _, cl := range calls {
			copy(cl.irecv, acc)
		}
	case "Split", "SplitShared", "Dup":
		g.splitLocked(calls)
	}
	return nil
}

// splitLocked makes one communicator per color and hands each rank its
// Comm in calls[i].out.
func (g *group) splitLocked(calls []*call) {
	order := make([]int, 0, len(calls))
	for i, cl := range calls {
		if cl.color >= 0 {
			order = append(order, i)
		}
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return cmp.Or(cmp.Compare(calls[a].color, calls[b].color), cmp.Compare(calls[a].key, calls[b].key))
	})
	for len(order) > 0 {
		n := 1
		for n < len(order) && calls[order[n]].color == calls[order[0]].color {
			n++
		}
		members := order[:n]
		order = order[n:]
		ranks := make([]int, n)
		for j, i := range members {
			ranks[j] = g.ranks[i]
		}
		ng := g.w.newGroupLocked(ranks)
		for j, i := range members {
			calls[i].out = &Comm{g: ng, rank: j}
		}
	}
}
