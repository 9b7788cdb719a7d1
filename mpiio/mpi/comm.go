//go:build cgo

package mpi

// #include "shim.h"
import "C"

import (
	"os"
	"time"
)

// Undefined is the color passed to Split by ranks that want no new
// communicator (MPI_UNDEFINED). Any negative color means the same.
const Undefined = -1

// Comm is an MPI communicator, used by pointer. Its MPI handle lives on the
// C side. Any goroutine may use a Comm; calls on one Comm from several
// goroutines follow MPI's rules: point-to-point calls may run concurrently,
// collective calls may not (Dup a Comm per concurrent stream of
// collectives). Free must not race with other calls on the Comm.
type Comm struct {
	h    C.int // slot in the C-side table; -1 when not usable
	rank int
	size int
	name string // "world" or "self" for the predefined communicators
	// idleUs, when positive, makes Barrier, Bcast and Allreduce wait
	// without spinning (SetIdleWait).
	idleUs int
}

// SetIdleWait makes Barrier, Bcast, Allreduce (and the plan that starts
// Gatherv and Scatterv) on c wait for slow peers by polling with pauses
// growing up to max instead of spinning; max <= 0 restores MPI's own
// blocking calls. Ranks that wait long for one busy rank, as a checkpoint's
// group members wait for their leader, then leave their cores to it. It
// costs up to max of latency per call once a wait lasts longer than 20
// microseconds.
//
// Every rank of c must make the same choice before its next collective on
// c: these waits use MPI's nonblocking collectives (MPI_Ibarrier, MPI_Ibcast,
// MPI_Iallreduce), which do not match the blocking ones. Communicators
// derived from c (Split, Dup) do not inherit the setting. Not safe
// concurrently with collectives on c.
func (c *Comm) SetIdleWait(max time.Duration) {
	c.idleUs = int(min(max, time.Second) / time.Microsecond)
	if max > 0 && c.idleUs == 0 {
		c.idleUs = 1
	}
}

// attach binds c to table slot h and caches rank and size.
func (c *Comm) attach(h C.int) error {
	var rank, size C.int
	if err := codeError("Comm_rank", C.ck_comm_rank(h, &rank)); err != nil {
		return err
	}
	if err := codeError("Comm_size", C.ck_comm_size(h, &size)); err != nil {
		return err
	}
	c.h, c.rank, c.size = h, int(rank), int(size)
	return nil
}

// handle returns c's slot, or ErrComm when c is nil, freed or MPI is not
// initialized.
func (c *Comm) handle(op string) (C.int, error) {
	if c == nil || c.h < 0 {
		return 0, argError(op, ErrComm, "communicator is nil, freed or MPI not initialized")
	}
	return c.h, nil
}

// adopt wraps a slot returned by a communicator constructor; -1 means the
// calling rank got MPI_COMM_NULL and yields a nil *Comm.
func adopt(h C.int) (*Comm, error) {
	if h < 0 {
		return nil, nil
	}
	c := &Comm{h: -1}
	if err := c.attach(h); err != nil {
		C.ck_comm_free(h)
		return nil, err
	}
	return c, nil
}

// Rank returns the calling process's rank in c (0 for a nil or unusable
// Comm).
func (c *Comm) Rank() int {
	if c == nil {
		return 0
	}
	return c.rank
}

// Size returns the number of ranks in c (0 for a nil or unusable Comm).
func (c *Comm) Size() int {
	if c == nil {
		return 0
	}
	return c.size
}

// Barrier blocks until every rank of c has called it (MPI_Barrier).
func (c *Comm) Barrier() error {
	h, err := c.handle("Barrier")
	if err != nil {
		return err
	}
	if c.idleUs > 0 {
		return codeError("Barrier", C.ck_barrier_idle(h, C.int(c.idleUs)))
	}
	return codeError("Barrier", C.ck_barrier(h))
}

// Split partitions c by color, ordering each part by key then by rank in c
// (MPI_Comm_split). It is collective over c. A rank passing a negative
// color (Undefined) gets a nil *Comm and a nil error.
func (c *Comm) Split(color, key int) (*Comm, error) {
	h, err := c.handle("Split")
	if err != nil {
		return nil, err
	}
	if color < 0 {
		color = C.CK_UNDEFINED
	}
	if !fitsInt32(color) || !fitsInt32(key) {
		return nil, argError("Split", ErrArg, "color %d or key %d out of C int range", color, key)
	}
	var out C.int
	if err := codeError("Split", C.ck_comm_split(h, C.int(color), C.int(key), &out)); err != nil {
		return nil, err
	}
	return adopt(out)
}

// SplitTypeShared returns the communicator of the ranks of c that share
// memory with the caller, i.e. run on the same node
// (MPI_Comm_split_type with MPI_COMM_TYPE_SHARED), ordered by key then rank.
// It is collective over c.
func (c *Comm) SplitTypeShared(key int) (*Comm, error) {
	h, err := c.handle("SplitTypeShared")
	if err != nil {
		return nil, err
	}
	if !fitsInt32(key) {
		return nil, argError("SplitTypeShared", ErrArg, "key %d out of C int range", key)
	}
	var out C.int
	if err := codeError("SplitTypeShared", C.ck_comm_split_shared(h, C.int(key), &out)); err != nil {
		return nil, err
	}
	return adopt(out)
}

// Dup returns a new communicator with the same group as c and a separate
// message space (MPI_Comm_dup). It is collective over c.
func (c *Comm) Dup() (*Comm, error) {
	h, err := c.handle("Dup")
	if err != nil {
		return nil, err
	}
	var out C.int
	if err := codeError("Dup", C.ck_comm_dup(h, &out)); err != nil {
		return nil, err
	}
	return adopt(out)
}

// Free releases a communicator made by Split, SplitTypeShared or Dup
// (MPI_Comm_free); it is collective over c. Later calls on c fail with
// ErrComm. World and Self cannot be freed.
func (c *Comm) Free() error {
	h, err := c.handle("Free")
	if err != nil {
		return err
	}
	if c.name != "" {
		return argError("Free", ErrComm, "cannot free the %s communicator", c.name)
	}
	c.h = -1
	return codeError("Free", C.ck_comm_free(h))
}

// Abort terminates every process of c's job with the given exit code
// (MPI_Abort). It does not return; if MPI cannot abort, the process exits.
func (c *Comm) Abort(code int) {
	if !Initialized() || Finalized() {
		os.Exit(code)
	}
	h := C.int(C.CK_WORLD)
	if c != nil && c.h >= 0 {
		h = c.h
	}
	C.ck_abort(h, C.int(code))
	os.Exit(code)
}
