//go:build cgo

// Package mpicomm adapts a communicator of the MPI binding (mpiio/mpi) to
// the collective.Comm interface that mpiio.Open takes:
//
//	cp, err := mpiio.Open(ctx, mpicomm.Wrap(mpi.World()), mpiio.Config{})
package mpicomm

import (
	"time"

	"fmt"

	"github.com/ckptio/ckptio/collective"
	"github.com/ckptio/ckptio/mpiio/mpi"
)

// Comm is an MPI communicator seen as a collective.Comm.
type Comm struct{ c *mpi.Comm }

// Wrap returns c as a collective.Comm.
func Wrap(c *mpi.Comm) *Comm { return &Comm{c: c} }

// MPI returns the wrapped communicator.
func (w *Comm) MPI() *mpi.Comm { return w.c }

func (w *Comm) Rank() int                        { return w.c.Rank() }
func (w *Comm) Size() int                        { return w.c.Size() }
func (w *Comm) Barrier() error                   { return w.c.Barrier() }
func (w *Comm) Bcast(buf []byte, root int) error { return w.c.Bcast(buf, root) }
func (w *Comm) Gatherv(send, recv []byte, counts, displs []int, root int) error {
	return w.c.Gatherv(send, recv, counts, displs, root)
}
func (w *Comm) Scatterv(send []byte, counts, displs []int, recv []byte, root int) error {
	return w.c.Scatterv(send, counts, displs, recv, root)
}

func (w *Comm) AllreduceInt64(send, recv []int64, op collective.Op) error {
	var o mpi.Op
	switch op {
	case collective.OpSum:
		o = mpi.Sum
	case collective.OpMax:
		o = mpi.Max
	case collective.OpMin:
		o = mpi.Min
	default:
		return fmt.Errorf("mpicomm: unknown reduction %d", op)
	}
	return w.c.AllreduceInt64(send, recv, o)
}

func (w *Comm) Split(color, key int) (collective.Comm, error) {
	if color < 0 {
		color = mpi.Undefined
	}
	c, err := w.c.Split(color, key)
	if err != nil || c == nil {
		return nil, err
	}
	return Wrap(c), nil
}

func (w *Comm) SplitShared(key int) (collective.Comm, error) {
	c, err := w.c.SplitTypeShared(key)
	if err != nil {
		return nil, err
	}
	return Wrap(c), nil
}

func (w *Comm) Dup() (collective.Comm, error) {
	c, err := w.c.Dup()
	if err != nil {
		return nil, err
	}
	return Wrap(c), nil
}

func (w *Comm) Free() error { return w.c.Free() }

// SetIdleWait makes the collective's waits poll instead of spin
// (collective.IdleWaiter; mpi.Comm.SetIdleWait).
func (w *Comm) SetIdleWait(max time.Duration) { w.c.SetIdleWait(max) }
