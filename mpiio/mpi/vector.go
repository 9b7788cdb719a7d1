//go:build cgo

package mpi

// #include "shim.h"
import "C"

import "unsafe"

// Plans root announces before a Gatherv or Scatterv.
const (
	planDirect  = 0 // one MPI call: every count and displacement fits
	planRounds  = 1 // counts and displacements follow; split into rounds
	planBadArgs = 2 // root rejected its arguments; every rank returns an error
)

// Gatherv collects len(send) bytes from every rank into recv at root, rank
// i's bytes at recv[displs[i]:displs[i]+counts[i]] (MPI_Gatherv). recv,
// counts and displs are used only at root; counts[i] must equal rank i's
// len(send). Counts may be zero and buffers empty.
//
// Root first broadcasts a plan (8 bytes), so that arguments rejected at
// root fail on every rank instead of leaving the others blocked, and so
// that counts or displacements above the chunk size run as several MPI
// calls on every rank. See the package comment.
func (c *Comm) Gatherv(send, recv []byte, counts, displs []int, root int) error {
	return c.vector("Gatherv", true, send, recv, counts, displs, root)
}

// Scatterv sends send[displs[i]:displs[i]+counts[i]] from root to rank i's
// recv (MPI_Scatterv). send, counts and displs are used only at root; rank
// i's recv must hold counts[i] bytes. Like Gatherv, it starts with a plan
// broadcast and splits large counts into rounds.
func (c *Comm) Scatterv(send []byte, counts, displs []int, recv []byte, root int) error {
	return c.vector("Scatterv", false, recv, send, counts, displs, root)
}

// vector runs Gatherv (gather) or Scatterv. local is the rank's own buffer
// (send of Gatherv, recv of Scatterv); big is root's buffer.
func (c *Comm) vector(op string, gather bool, local, big []byte, counts, displs []int, root int) error {
	h, err := c.handle(op)
	if err != nil {
		return err
	}
	if err := checkRoot(c, op, root); err != nil {
		return err
	}
	limit := chunkElems(1)
	isRoot := c.rank == root

	plan := []int64{planDirect}
	var rootErr error
	if isRoot {
		rootErr = checkVector(op, counts, displs, len(big), c.size)
		switch {
		case rootErr != nil:
			plan[0] = planBadArgs
		case !direct(counts, displs, limit):
			plan[0] = planRounds
		}
	}
	if err := bcast(c, op, plan, root); err != nil {
		return err
	}
	switch plan[0] {
	case planBadArgs:
		if isRoot {
			return rootErr
		}
		return argError(op, ErrArg, "root %d rejected its counts or displacements", root)
	case planRounds:
		return c.vectorRounds(op, gather, local, big, counts, displs, root)
	}

	dt, _ := dtypeOf[byte]()
	var rc, rd []C.int
	var bp unsafe.Pointer
	if isRoot {
		rc, _ = cInts(counts)
		rd, _ = cInts(displs)
		bp = ptr(big)
	}
	if !gather {
		// A receive count larger than the message is fine.
		n := min(len(local), limit)
		return codeError(op, C.ck_scatterv(h, bp, cptr(rc), cptr(rd), ptr(local[:n]), C.int(n), dt, C.int(root)))
	}
	n := len(local)
	var tooLong error
	if n > limit {
		// Root expects at most limit bytes from anyone: send that much
		// (root reports the truncation) and fail here too.
		tooLong = argError(op, ErrCount, "send length %d exceeds root's count", n)
		n = limit
	}
	if err := codeError(op, C.ck_gatherv(h, ptr(local[:n]), C.int(n), bp, cptr(rc), cptr(rd), dt, C.int(root))); err != nil {
		return err
	}
	return tooLong
}

// vectorRounds runs a Gatherv or Scatterv as the rounds of schedule.
// Every rank takes part in every round even after an error, so that no rank
// is left blocked; the first error is returned.
func (c *Comm) vectorRounds(op string, gather bool, local, big []byte, counts, displs []int, root int) error {
	h := c.h
	isRoot := c.rank == root
	// Root's counts and displacements, as int64 for every rank.
	cd := make([]int64, 2*c.size)
	if isRoot {
		for i := range c.size {
			cd[i], cd[c.size+i] = int64(counts[i]), int64(displs[i])
		}
	}
	if err := bcast(c, op, cd, root); err != nil {
		return err
	}
	mine := cd[c.rank]
	var first error
	if gather && int64(len(local)) != mine || !gather && int64(len(local)) < mine {
		first = argError(op, ErrCount, "local length %d does not match root's count %d for rank %d", len(local), mine, c.rank)
	}

	dt, _ := dtypeOf[byte]()
	var rc, rd []C.int
	if isRoot {
		rc, rd = make([]C.int, c.size), make([]C.int, c.size)
	}
	for _, r := range schedule(cd[:c.size], cd[c.size:], int64(chunkElems(1))) {
		var part []byte // this rank's piece of local in the round
		var bp unsafe.Pointer
		if isRoot {
			clear(rc)
			clear(rd)
			bp = unsafe.Pointer(&big[r.base])
		}
		for _, p := range r.pieces {
			if isRoot {
				rc[p.rank], rd[p.rank] = C.int(p.n), C.int(p.offset)
			}
			if p.rank == c.rank {
				lo := min(p.src, int64(len(local)))
				part = local[lo:min(p.src+p.n, int64(len(local)))]
			}
		}
		var code C.int
		if gather {
			code = C.ck_gatherv(h, ptr(part), C.int(len(part)), bp, cptr(rc), cptr(rd), dt, C.int(root))
		} else {
			code = C.ck_scatterv(h, bp, cptr(rc), cptr(rd), ptr(part), C.int(len(part)), dt, C.int(root))
		}
		if err := codeError(op, code); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// checkVector validates root's counts and displacements against its
// buffer of n bytes.
func checkVector(op string, counts, displs []int, n, size int) error {
	if len(counts) != size || len(displs) != size {
		return argError(op, ErrCount, "%d counts and %d displacements for %d ranks", len(counts), len(displs), size)
	}
	for i, k := range counts {
		d := displs[i]
		if k < 0 || d < 0 || d > n || k > n-d {
			return argError(op, ErrCount, "rank %d: %d bytes at %d do not fit root's %d bytes", i, k, d, n)
		}
	}
	return nil
}

// direct reports whether one MPI call can carry the counts and
// displacements.
func direct(counts, displs []int, limit int) bool {
	for i := range counts {
		if counts[i] > limit || displs[i] > limit {
			return false
		}
	}
	return true
}
