//go:build cgo

package mpi

// #include "shim.h"
import "C"

// Rank and tag wildcards.
const (
	AnySource = -1 // Recv from any rank (MPI_ANY_SOURCE)
	ProcNull  = -2 // no-op peer (MPI_PROC_NULL): sends vanish, receives get 0 elements
	AnyTag    = -1 // Recv with any tag (MPI_ANY_TAG)
)

// Status describes a completed receive.
type Status struct {
	Source int // sending rank; ProcNull when receiving from ProcNull
	Tag    int // message tag
	Count  int // elements received
}

// Send sends buf to rank dest with tag (MPI_Send). See the package comment
// for how messages longer than the chunk size are split.
func (c *Comm) Send(buf []byte, dest, tag int) error { return send(c, "Send", buf, dest, tag) }

// SendFloat64 is Send for float64 elements (MPI_DOUBLE).
func (c *Comm) SendFloat64(buf []float64, dest, tag int) error {
	return send(c, "SendFloat64", buf, dest, tag)
}

// Recv receives a message from rank src (or AnySource) with tag (or
// AnyTag) into buf (MPI_Recv). A message longer than buf fails with an
// error matching ErrTruncate.
func (c *Comm) Recv(buf []byte, src, tag int) (Status, error) {
	return recv(c, "Recv", buf, src, tag)
}

// RecvFloat64 is Recv for float64 elements (MPI_DOUBLE).
func (c *Comm) RecvFloat64(buf []float64, src, tag int) (Status, error) {
	return recv(c, "RecvFloat64", buf, src, tag)
}

// Sendrecv sends sbuf to dest with stag and receives into rbuf from src
// with rtag in one deadlock-free call (MPI_Sendrecv), as in a halo
// exchange. Either peer may be ProcNull.
func (c *Comm) Sendrecv(sbuf []byte, dest, stag int, rbuf []byte, src, rtag int) (Status, error) {
	return sendrecv(c, "Sendrecv", sbuf, dest, stag, rbuf, src, rtag)
}

// SendrecvFloat64 is Sendrecv for float64 elements (MPI_DOUBLE).
func (c *Comm) SendrecvFloat64(sbuf []float64, dest, stag int, rbuf []float64, src, rtag int) (Status, error) {
	return sendrecv(c, "SendrecvFloat64", sbuf, dest, stag, rbuf, src, rtag)
}

func checkPeer(op string, rank, tag int, recv bool) error {
	if rank < ProcNull || rank == AnySource && !recv || !fitsInt32(rank) {
		return argError(op, ErrArg, "invalid rank %d", rank)
	}
	if tag < 0 && !(recv && tag == AnyTag) || !fitsInt32(tag) {
		return argError(op, ErrArg, "invalid tag %d", tag)
	}
	return nil
}

// send sends buf as chunks of chunkElems elements. The last chunk is
// shorter than a full one, so a buffer that is an exact multiple of the
// chunk (or empty) ends with an empty message; a buffer shorter than one
// chunk is exactly one MPI message.
func send[T elem](c *Comm, op string, buf []T, dest, tag int) error {
	h, err := c.handle(op)
	if err != nil {
		return err
	}
	if err := checkPeer(op, dest, tag, false); err != nil {
		return err
	}
	dt, size := dtypeOf[T]()
	ce := chunkElems(size)
	for off := 0; ; {
		k := min(len(buf)-off, ce)
		if err := codeError(op, C.ck_send(h, ptr(buf[off:off+k]), C.int(k), dt, C.int(dest), C.int(tag))); err != nil {
			return err
		}
		off += k
		if k < ce || dest == ProcNull {
			return nil
		}
	}
}

// recv receives the chunks written by send until a short one arrives. The
// first chunk fixes the source and tag of the rest, so wildcards work.
func recv[T elem](c *Comm, op string, buf []T, src, tag int) (Status, error) {
	st := Status{Source: src, Tag: tag}
	h, err := c.handle(op)
	if err != nil {
		return st, err
	}
	if err := checkPeer(op, src, tag, true); err != nil {
		return st, err
	}
	dt, size := dtypeOf[T]()
	ce := chunkElems(size)
	for {
		k := min(len(buf)-st.Count, ce)
		var osrc, otag, n C.int
		rc := C.ck_recv(h, ptr(buf[st.Count:st.Count+k]), C.int(k), dt, C.int(st.Source), C.int(st.Tag), &osrc, &otag, &n)
		if err := codeError(op, rc); err != nil {
			return st, err
		}
		st.Source, st.Tag = int(osrc), int(otag)
		st.Count += int(n)
		if int(n) < ce || st.Source == ProcNull {
			return st, nil
		}
	}
}

// sendrecv runs send and recv side by side, one MPI_Sendrecv per chunk;
// a side that has finished uses ProcNull for the remaining rounds.
func sendrecv[T elem](c *Comm, op string, sbuf []T, dest, stag int, rbuf []T, src, rtag int) (Status, error) {
	st := Status{Source: src, Tag: rtag}
	h, err := c.handle(op)
	if err != nil {
		return st, err
	}
	if err := checkPeer(op, dest, stag, false); err != nil {
		return st, err
	}
	if err := checkPeer(op, src, rtag, true); err != nil {
		return st, err
	}
	dt, size := dtypeOf[T]()
	ce := chunkElems(size)
	soff, sendDone, recvDone := 0, false, false
	for !sendDone || !recvDone {
		d, k := C.int(C.CK_PROC_NULL), 0
		if !sendDone {
			d, k = C.int(dest), min(len(sbuf)-soff, ce)
		}
		s, r := C.int(C.CK_PROC_NULL), 0
		if !recvDone {
			s, r = C.int(st.Source), min(len(rbuf)-st.Count, ce)
		}
		var osrc, otag, n C.int
		rc := C.ck_sendrecv(h, ptr(sbuf[soff:soff+k]), C.int(k), d, C.int(stag),
			ptr(rbuf[st.Count:st.Count+r]), C.int(r), s, C.int(st.Tag), dt, &osrc, &otag, &n)
		if err := codeError(op, rc); err != nil {
			return st, err
		}
		if !sendDone {
			soff += k
			sendDone = k < ce || dest == ProcNull
		}
		if !recvDone {
			st.Source, st.Tag = int(osrc), int(otag)
			st.Count += int(n)
			recvDone = int(n) < ce || st.Source == ProcNull
		}
	}
	return st, nil
}
