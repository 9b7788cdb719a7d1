//go:build cgo

package mpi

// #include "shim.h"
import "C"

import (
	"math"
	"unsafe"
)

// Op is a reduction operation.
type Op int

// Reductions.
const (
	Sum Op = iota // MPI_SUM
	Max           // MPI_MAX
	Min           // MPI_MIN
)

func (o Op) code() (C.int, bool) {
	switch o {
	case Sum:
		return C.CK_SUM, true
	case Max:
		return C.CK_MAX, true
	case Min:
		return C.CK_MIN, true
	}
	return 0, false
}

func checkRoot(c *Comm, op string, root int) error {
	if root < 0 || root >= c.size {
		return argError(op, ErrArg, "root %d out of range [0,%d)", root, c.size)
	}
	return nil
}

// Bcast copies buf from root to every rank (MPI_Bcast). Every rank passes a
// buffer of the same length; long buffers are sent in chunks.
func (c *Comm) Bcast(buf []byte, root int) error { return bcast(c, "Bcast", buf, root) }

// BcastInt64 is Bcast for int64 elements.
func (c *Comm) BcastInt64(buf []int64, root int) error { return bcast(c, "BcastInt64", buf, root) }

func bcast[T elem](c *Comm, op string, buf []T, root int) error {
	h, err := c.handle(op)
	if err != nil {
		return err
	}
	if err := checkRoot(c, op, root); err != nil {
		return err
	}
	dt, size := dtypeOf[T]()
	ce := chunkElems(size)
	for off := 0; off < len(buf); {
		k := min(len(buf)-off, ce)
		var code C.int
		if c.idleUs > 0 {
			code = C.ck_bcast_idle(h, ptr(buf[off:off+k]), C.int(k), dt, C.int(root), C.int(c.idleUs))
		} else {
			code = C.ck_bcast(h, ptr(buf[off:off+k]), C.int(k), dt, C.int(root))
		}
		if err := codeError(op, code); err != nil {
			return err
		}
		off += k
	}
	return nil
}

// AllreduceInt64 combines send element-wise over all ranks with op and
// stores the result in recv on every rank (MPI_Allreduce). send and recv
// have the same length; they may be the same slice (MPI_IN_PLACE).
func (c *Comm) AllreduceInt64(send, recv []int64, op Op) error {
	return allreduce(c, "AllreduceInt64", send, recv, op)
}

// AllreduceFloat64 is AllreduceInt64 for float64 elements.
func (c *Comm) AllreduceFloat64(send, recv []float64, op Op) error {
	return allreduce(c, "AllreduceFloat64", send, recv, op)
}

func allreduce[T elem](c *Comm, name string, send, recv []T, op Op) error {
	h, err := c.handle(name)
	if err != nil {
		return err
	}
	oc, ok := op.code()
	if !ok {
		return argError(name, ErrArg, "unknown op %d", int(op))
	}
	if len(send) != len(recv) {
		return argError(name, ErrCount, "send length %d != recv length %d", len(send), len(recv))
	}
	inPlace := len(send) > 0 && unsafe.SliceData(send) == unsafe.SliceData(recv)
	dt, size := dtypeOf[T]()
	ce := chunkElems(size)
	for off := 0; off < len(recv); {
		k := min(len(recv)-off, ce)
		sp := ptr(send[off : off+k])
		if inPlace {
			sp = nil
		}
		var code C.int
		if c.idleUs > 0 {
			code = C.ck_allreduce_idle(h, sp, ptr(recv[off:off+k]), C.int(k), dt, oc, C.int(c.idleUs))
		} else {
			code = C.ck_allreduce(h, sp, ptr(recv[off:off+k]), C.int(k), dt, oc)
		}
		if err := codeError(name, code); err != nil {
			return err
		}
		off += k
	}
	return nil
}

// AllgatherInt64 gathers len(send) elements from every rank into recv on
// every rank, rank i's at recv[i*len(send):] (MPI_Allgather). Every rank
// passes the same len(send) and len(recv) == Size()*len(send). Meant for
// metadata: the total must fit in a C int (ErrCount otherwise).
func (c *Comm) AllgatherInt64(send, recv []int64) error {
	const op = "AllgatherInt64"
	h, err := c.handle(op)
	if err != nil {
		return err
	}
	if err := checkGathered(op, len(send), len(recv), c.size); err != nil {
		return err
	}
	dt, _ := dtypeOf[int64]()
	return codeError(op, C.ck_allgather(h, ptr(send), C.int(len(send)), ptr(recv), dt))
}

// GatherInt64 gathers len(send) elements from every rank into recv at
// root, rank i's at recv[i*len(send):] (MPI_Gather). recv is used only at
// root, where len(recv) == Size()*len(send). The total must fit in a C
// int.
func (c *Comm) GatherInt64(send, recv []int64, root int) error {
	const op = "GatherInt64"
	h, err := c.handle(op)
	if err != nil {
		return err
	}
	if err := checkRoot(c, op, root); err != nil {
		return err
	}
	if c.rank == root {
		if err := checkGathered(op, len(send), len(recv), c.size); err != nil {
			return err
		}
	} else if len(send) > math.MaxInt32/max(c.size, 1) {
		return argError(op, ErrCount, "send length %d too long for %d ranks", len(send), c.size)
	}
	dt, _ := dtypeOf[int64]()
	var rp unsafe.Pointer
	if c.rank == root {
		rp = ptr(recv)
	}
	return codeError(op, C.ck_gather(h, ptr(send), C.int(len(send)), rp, dt, C.int(root)))
}

func checkGathered(op string, n, total, size int) error {
	if n > math.MaxInt32/max(size, 1) {
		return argError(op, ErrCount, "send length %d too long for %d ranks", n, size)
	}
	if total != n*size {
		return argError(op, ErrCount, "recv length %d != %d ranks * send length %d", total, size, n)
	}
	return nil
}
