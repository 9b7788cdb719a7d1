//go:build cgo

package mpi

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// worker runs every check as one rank of an mpirun job and returns the exit
// code. A failing check aborts the whole job so no rank waits forever.
func worker() int {
	if err := Init(); err != nil {
		fmt.Fprintln(os.Stderr, "mpi worker:", err)
		return 1
	}
	w := World()
	if s := os.Getenv(chunkEnv); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			fmt.Fprintf(os.Stderr, "mpi worker: bad %s=%q\n", chunkEnv, s)
			w.Abort(2)
		}
		maxChunk = n
	}
	checks := []struct {
		name string
		fn   func(*Comm) error
	}{
		{"size", checkSize},
		{"bcast", checkBcast},
		{"allreduce", checkAllreduce},
		{"gatherv", checkGatherv},
		{"scatterv", checkScatterv},
		{"vector-bad-args", checkVectorBadArgs},
		{"allgather", checkAllgather},
		{"send-recv", checkSendRecv},
		{"sendrecv", checkSendrecv},
		{"truncate", checkTruncate},
		{"split", checkSplit},
		{"split-shared", checkSplitShared},
		{"dup-concurrent", checkDupConcurrent},
		{"empty", checkEmpty},
		{"idle-wait", checkIdleWait},
	}
	for _, c := range checks {
		if err := c.fn(w); err != nil {
			fmt.Fprintf(os.Stderr, "mpi worker: rank %d: %s: %v\n", w.Rank(), c.name, err)
			w.Abort(1)
		}
		if err := w.Barrier(); err != nil {
			fmt.Fprintf(os.Stderr, "mpi worker: rank %d: barrier after %s: %v\n", w.Rank(), c.name, err)
			w.Abort(1)
		}
	}
	fmt.Printf("mpi worker: rank %d: all checks passed\n", w.Rank())
	if err := Finalize(); err != nil {
		fmt.Fprintln(os.Stderr, "mpi worker:", err)
		return 1
	}
	return 0
}

// pattern returns n bytes that depend on seed.
func pattern(seed, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(seed*131 + i*7 + i>>8)
	}
	return b
}

func floats(seed, n int) []float64 {
	f := make([]float64, n)
	for i := range f {
		f[i] = float64(seed)*1e6 + float64(i) + 0.25
	}
	return f
}

// sizes are message lengths around the chunk size, plus a few fixed ones.
func sizes(elemSize int) []int {
	s := []int{0, 1, 5000}
	if ce := chunkElems(elemSize); ce <= 1<<16 {
		s = append(s, ce-1, ce, ce+1, 2*ce, 3*ce+5)
	}
	return s
}

func checkSize(w *Comm) error {
	want, _ := strconv.Atoi(os.Getenv(npEnv))
	if w.Size() != want || w.Rank() < 0 || w.Rank() >= w.Size() {
		return fmt.Errorf("rank %d size %d, want size %d", w.Rank(), w.Size(), want)
	}
	if !Initialized() || Finalized() {
		return errors.New("Initialized/Finalized wrong")
	}
	return nil
}

func checkBcast(w *Comm) error {
	root := w.Size() - 1
	for _, n := range sizes(1) {
		want := pattern(n, n)
		buf := make([]byte, n)
		if w.Rank() == root {
			copy(buf, want)
		}
		if err := w.Bcast(buf, root); err != nil {
			return err
		}
		if !bytes.Equal(buf, want) {
			return fmt.Errorf("Bcast of %d bytes: wrong data", n)
		}
	}
	v := []int64{0, 0, 0}
	if w.Rank() == 0 {
		v = []int64{math.MinInt64, -1, math.MaxInt64}
	}
	if err := w.BcastInt64(v, 0); err != nil {
		return err
	}
	if !slices.Equal(v, []int64{math.MinInt64, -1, math.MaxInt64}) {
		return fmt.Errorf("BcastInt64: got %v", v)
	}
	if err := w.Bcast(nil, w.Size()); err == nil {
		return errors.New("Bcast with root out of range: no error")
	}
	return nil
}

func checkAllreduce(w *Comm) error {
	r, n := int64(w.Rank()), int64(w.Size())
	for _, k := range sizes(8) {
		send := make([]int64, k)
		fsend := make([]float64, k)
		for i := range send {
			send[i] = r*int64(i+1) - 3
			fsend[i] = float64(send[i]) / 4
		}
		for _, op := range []Op{Sum, Max, Min} {
			recv := make([]int64, k)
			frecv := make([]float64, k)
			if err := w.AllreduceInt64(send, recv, op); err != nil {
				return err
			}
			if err := w.AllreduceFloat64(fsend, frecv, op); err != nil {
				return err
			}
			for i := range recv {
				var want int64
				switch op {
				case Sum:
					want = int64(i+1)*n*(n-1)/2 - 3*n
				case Max:
					want = (n-1)*int64(i+1) - 3
				case Min:
					want = -3
				}
				if recv[i] != want || frecv[i] != float64(want)/4 {
					return fmt.Errorf("Allreduce op %d len %d [%d]: got %d %g, want %d", op, k, i, recv[i], frecv[i], want)
				}
			}
		}
		// In place: send and recv are one slice.
		inout := slices.Clone(send)
		if err := w.AllreduceInt64(inout, inout, Max); err != nil {
			return err
		}
		for i := range inout {
			if want := (n-1)*int64(i+1) - 3; inout[i] != want {
				return fmt.Errorf("in-place Allreduce [%d]: got %d want %d", i, inout[i], want)
			}
		}
	}
	if err := w.AllreduceInt64(make([]int64, 2), make([]int64, 3), Sum); !errors.Is(err, ErrCount) {
		return fmt.Errorf("Allreduce length mismatch: got %v", err)
	}
	if err := w.AllreduceInt64(nil, nil, Op(42)); !errors.Is(err, ErrArg) {
		return fmt.Errorf("Allreduce bad op: got %v", err)
	}
	return nil
}

// layout returns uneven counts (some zero, some above the chunk size when
// it is small) and displacements in reverse rank order with gaps.
func layout(size int) (counts, displs []int, total int) {
	ce := chunkElems(1)
	counts = make([]int, size)
	for i := range counts {
		switch {
		case i == 0 || i == 2:
			counts[i] = 0
		case ce <= 1<<16:
			counts[i] = (2*i+1)*ce + i
		default:
			counts[i] = 1000*i + 17
		}
	}
	displs = make([]int, size)
	off := 3
	for i := size - 1; i >= 0; i-- {
		displs[i] = off
		off += counts[i] + 5
	}
	return counts, displs, off
}

func checkGatherv(w *Comm) error {
	counts, displs, total := layout(w.Size())
	for _, root := range []int{1 % w.Size(), 0} {
		send := pattern(w.Rank(), counts[w.Rank()])
		var recv []byte
		if w.Rank() == root {
			recv = bytes.Repeat([]byte{0xEE}, total)
		}
		if err := w.Gatherv(send, recv, counts, displs, root); err != nil {
			return fmt.Errorf("root %d: %w", root, err)
		}
		if w.Rank() != root {
			continue
		}
		want := bytes.Repeat([]byte{0xEE}, total)
		for i := range counts {
			copy(want[displs[i]:], pattern(i, counts[i]))
		}
		if !bytes.Equal(recv, want) {
			return fmt.Errorf("root %d: gathered bytes differ", root)
		}
	}
	return nil
}

func checkScatterv(w *Comm) error {
	counts, displs, total := layout(w.Size())
	root := w.Size() - 1
	var send []byte
	if w.Rank() == root {
		send = pattern(99, total)
	}
	recv := make([]byte, counts[w.Rank()])
	if err := w.Scatterv(send, counts, displs, recv, root); err != nil {
		return err
	}
	want := pattern(99, total)[displs[w.Rank()]:][:counts[w.Rank()]]
	if !bytes.Equal(recv, want) {
		return errors.New("scattered bytes differ")
	}
	return nil
}

// checkVectorBadArgs: arguments rejected at root fail on every rank and
// leave the communicator usable.
func checkVectorBadArgs(w *Comm) error {
	counts := make([]int, w.Size()+1) // one too many
	displs := make([]int, w.Size()+1)
	err := w.Gatherv(nil, nil, counts, displs, 0)
	switch {
	case w.Rank() == 0 && !errors.Is(err, ErrCount):
		return fmt.Errorf("root: want ErrCount, got %v", err)
	case w.Rank() != 0 && !errors.Is(err, ErrArg):
		return fmt.Errorf("non-root: want ErrArg, got %v", err)
	}
	var send []byte
	if w.Rank() == 0 {
		send = make([]byte, 10)
	}
	counts, displs = make([]int, w.Size()), make([]int, w.Size())
	counts[0] = 11 // past root's 10 bytes
	err = w.Scatterv(send, counts, displs, make([]byte, 11), 0)
	if err == nil || !strings.Contains(err.Error(), "mpi: Scatterv: ") {
		return fmt.Errorf("Scatterv past root's buffer: got %v", err)
	}
	return nil
}

func checkAllgather(w *Comm) error {
	n := w.Size()
	send := []int64{int64(w.Rank()), int64(w.Rank()) * 10}
	recv := make([]int64, 2*n)
	if err := w.AllgatherInt64(send, recv); err != nil {
		return err
	}
	for i := range n {
		if recv[2*i] != int64(i) || recv[2*i+1] != int64(i)*10 {
			return fmt.Errorf("Allgather: got %v", recv)
		}
	}
	var got []int64
	if w.Rank() == n-1 {
		got = make([]int64, 2*n)
	}
	if err := w.GatherInt64(send, got, n-1); err != nil {
		return err
	}
	if w.Rank() == n-1 && !slices.Equal(got, recv) {
		return fmt.Errorf("Gather: got %v want %v", got, recv)
	}
	if err := w.AllgatherInt64(send, recv[:1]); !errors.Is(err, ErrCount) {
		return fmt.Errorf("Allgather short recv: got %v", err)
	}
	return nil
}

// ring passes one message around the ring with Send and Recv: even ranks
// send first, odd ranks receive first.
func ring[T elem](w *Comm, msg []T, buf []T, tag int, send func([]T, int, int) error, recv func([]T, int, int) (Status, error)) (Status, error) {
	next, prev := (w.Rank()+1)%w.Size(), (w.Rank()+w.Size()-1)%w.Size()
	var st Status
	var err error
	if w.Rank()%2 == 0 {
		if err = send(msg, next, tag); err == nil {
			st, err = recv(buf, prev, tag)
		}
	} else {
		if st, err = recv(buf, AnySource, AnyTag); err == nil {
			err = send(msg, next, tag)
		}
	}
	return st, err
}

func checkSendRecv(w *Comm) error {
	prev := (w.Rank() + w.Size() - 1) % w.Size()
	for _, n := range sizes(1) {
		msg := pattern(w.Rank()+n, n)
		buf := make([]byte, n+3)
		st, err := ring(w, msg, buf, 7, w.Send, w.Recv)
		if err != nil {
			return fmt.Errorf("bytes %d: %w", n, err)
		}
		if st.Source != prev || st.Tag != 7 || st.Count != n || !bytes.Equal(buf[:n], pattern(prev+n, n)) {
			return fmt.Errorf("bytes %d: status %+v, data ok %v", n, st, bytes.Equal(buf[:n], pattern(prev+n, n)))
		}
	}
	for _, n := range sizes(8) {
		msg := floats(w.Rank(), n)
		buf := make([]float64, n)
		st, err := ring(w, msg, buf, 8, w.SendFloat64, w.RecvFloat64)
		if err != nil {
			return fmt.Errorf("float64 %d: %w", n, err)
		}
		if st.Source != prev || st.Tag != 8 || st.Count != n || !slices.Equal(buf, floats(prev, n)) {
			return fmt.Errorf("float64 %d: status %+v", n, st)
		}
	}
	if err := w.Send(nil, w.Size(), 0); err == nil || !strings.HasPrefix(err.Error(), "mpi: Send: ") {
		return fmt.Errorf("Send to a rank out of range: got %v", err)
	}
	if err := w.Send(nil, 0, -5); !errors.Is(err, ErrArg) {
		return fmt.Errorf("Send with a negative tag: got %v", err)
	}
	return nil
}

func checkSendrecv(w *Comm) error {
	next, prev := (w.Rank()+1)%w.Size(), (w.Rank()+w.Size()-1)%w.Size()
	ss := sizes(1)
	for i := range ss {
		// Send and receive lengths differ, so one side finishes first.
		ns, nr := ss[(i+w.Rank())%len(ss)], ss[(i+prev)%len(ss)]
		rbuf := make([]byte, nr+1)
		st, err := w.Sendrecv(pattern(w.Rank(), ns), next, 3, rbuf, prev, 3)
		if err != nil {
			return fmt.Errorf("bytes %d/%d: %w", ns, nr, err)
		}
		if st.Source != prev || st.Count != nr || !bytes.Equal(rbuf[:nr], pattern(prev, nr)) {
			return fmt.Errorf("bytes %d/%d: status %+v", ns, nr, st)
		}
	}
	fs := sizes(8)
	for i := range fs {
		ns, nr := fs[(i+w.Rank())%len(fs)], fs[(i+prev)%len(fs)]
		rbuf := make([]float64, nr)
		st, err := w.SendrecvFloat64(floats(w.Rank(), ns), next, 4, rbuf, AnySource, AnyTag)
		if err != nil {
			return fmt.Errorf("float64 %d/%d: %w", ns, nr, err)
		}
		if st.Source != prev || st.Tag != 4 || st.Count != nr || !slices.Equal(rbuf, floats(prev, nr)) {
			return fmt.Errorf("float64 %d/%d: status %+v", ns, nr, st)
		}
	}
	// A non-periodic halo exchange: the ends talk to ProcNull.
	left, right := w.Rank()-1, w.Rank()+1
	if left < 0 {
		left = ProcNull
	}
	if right >= w.Size() {
		right = ProcNull
	}
	halo := []float64{-1}
	st, err := w.SendrecvFloat64([]float64{float64(w.Rank())}, right, 5, halo, left, 5)
	if err != nil {
		return fmt.Errorf("halo: %w", err)
	}
	if left == ProcNull && (st.Count != 0 || st.Source != ProcNull || halo[0] != -1) ||
		left != ProcNull && (st.Count != 1 || halo[0] != float64(left)) {
		return fmt.Errorf("halo: status %+v value %g", st, halo[0])
	}
	return nil
}

// checkTruncate: a receive buffer shorter than the message is an error
// matching ErrTruncate, not an abort.
func checkTruncate(w *Comm) error {
	if w.Size() < 2 {
		return nil
	}
	ce := chunkElems(1)
	bufLen := max(1, min(10, ce/2))
	msgLen := min(100, ce-1) // one message, longer than bufLen
	switch w.Rank() {
	case 0:
		return w.Send(pattern(1, msgLen), 1, 11)
	case 1:
		_, err := w.Recv(make([]byte, bufLen), 0, 11)
		if !errors.Is(err, ErrTruncate) || !strings.HasPrefix(err.Error(), "mpi: Recv: ") {
			return fmt.Errorf("want a truncation error, got %v", err)
		}
		var e *Error
		if !errors.As(err, &e) || e.Code == 0 || !strings.Contains(e.Msg, "MPI_ERR_TRUNCATE") && Flavor == "openmpi" {
			return fmt.Errorf("error %#v lacks the MPI code or string", err)
		}
	}
	return nil
}

func checkSplit(w *Comm) error {
	r, n := w.Rank(), w.Size()
	// Halves by parity, ranks reversed by key.
	sub, err := w.Split(r%2, -r)
	if err != nil {
		return err
	}
	var mates []int
	for i := n - 1; i >= 0; i-- {
		if i%2 == r%2 {
			mates = append(mates, i)
		}
	}
	if sub.Size() != len(mates) || mates[sub.Rank()] != r {
		return fmt.Errorf("Split: rank %d of %d, want %d of %d", sub.Rank(), sub.Size(), slices.Index(mates, r), len(mates))
	}
	sum := []int64{0}
	if err := sub.AllreduceInt64([]int64{int64(r)}, sum, Sum); err != nil {
		return err
	}
	var want int64
	for _, m := range mates {
		want += int64(m)
	}
	if sum[0] != want {
		return fmt.Errorf("Allreduce on split: got %d want %d", sum[0], want)
	}
	if err := sub.Free(); err != nil {
		return err
	}
	if err := sub.Barrier(); !errors.Is(err, ErrComm) {
		return fmt.Errorf("Barrier on freed comm: got %v", err)
	}
	// Rank 0 opts out.
	color := 0
	if r == 0 {
		color = Undefined
	}
	rest, err := w.Split(color, 0)
	if err != nil {
		return err
	}
	if r == 0 {
		if rest != nil {
			return errors.New("Split with Undefined returned a communicator")
		}
		return nil
	}
	if rest.Size() != n-1 || rest.Rank() != r-1 {
		return fmt.Errorf("Split without rank 0: rank %d of %d", rest.Rank(), rest.Size())
	}
	return rest.Free()
}

func checkSplitShared(w *Comm) error {
	node, err := w.SplitTypeShared(w.Rank())
	if err != nil {
		return err
	}
	// mpirun runs every rank on this machine.
	if node.Size() != w.Size() || node.Rank() != w.Rank() {
		return fmt.Errorf("SplitTypeShared: rank %d of %d", node.Rank(), node.Size())
	}
	if err := node.Free(); err != nil {
		return err
	}
	if err := w.Free(); !errors.Is(err, ErrComm) {
		return fmt.Errorf("Free(World): got %v", err)
	}
	return nil
}

// checkDupConcurrent runs collectives on two duplicates from two goroutines
// at once (MPI_THREAD_MULTIPLE).
func checkDupConcurrent(w *Comm) error {
	comms := make([]*Comm, 2)
	for i := range comms {
		c, err := w.Dup()
		if err != nil {
			return err
		}
		if c.Size() != w.Size() || c.Rank() != w.Rank() {
			return errors.New("Dup: rank or size differ")
		}
		comms[i] = c
	}
	errs := make([]error, len(comms))
	var wg sync.WaitGroup
	for i, c := range comms {
		wg.Go(func() {
			for k := range 50 {
				out := make([]int64, 3)
				if err := c.AllreduceInt64([]int64{int64(i), int64(k), 1}, out, Sum); err != nil {
					errs[i] = err
					return
				}
				if want := int64(w.Size()); out[2] != want || out[0] != int64(i)*want || out[1] != int64(k)*want {
					errs[i] = fmt.Errorf("goroutine %d round %d: got %v", i, k, out)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, c := range comms {
		if err := c.Free(); err != nil {
			return err
		}
	}
	return errors.Join(errs...)
}

func checkEmpty(w *Comm) error {
	if err := w.Bcast(nil, 0); err != nil {
		return err
	}
	if err := w.AllreduceFloat64([]float64{}, nil, Sum); err != nil {
		return err
	}
	zeros := make([]int, w.Size())
	if err := w.Gatherv(nil, nil, zeros, zeros, 0); err != nil {
		return err
	}
	if err := w.Scatterv(nil, zeros, zeros, nil, 0); err != nil {
		return err
	}
	if err := w.AllgatherInt64(nil, nil); err != nil {
		return err
	}
	next, prev := (w.Rank()+1)%w.Size(), (w.Rank()+w.Size()-1)%w.Size()
	st, err := w.Sendrecv(nil, next, 0, nil, prev, 0)
	if err != nil || st.Count != 0 {
		return fmt.Errorf("empty Sendrecv: %+v %v", st, err)
	}
	return nil
}

// checkIdleWait runs the collective checks again on a duplicate set to
// wait idly, then has rank 0 arrive 300 ms late at a Barrier: the others
// must have waited without spinning (CPU time well under the wait).
func checkIdleWait(w *Comm) error {
	c, err := w.Dup()
	if err != nil {
		return err
	}
	defer c.Free()
	c.SetIdleWait(time.Millisecond)
	for _, check := range []func(*Comm) error{checkBcast, checkAllreduce, checkGatherv, checkScatterv, checkVectorBadArgs} {
		if err := check(c); err != nil {
			return err
		}
	}
	const late = 300 * time.Millisecond
	if c.Rank() == 0 {
		time.Sleep(late)
		return c.Barrier()
	}
	before, start := cpuTime(), time.Now()
	if err := c.Barrier(); err != nil {
		return err
	}
	used, waited := cpuTime()-before, time.Since(start)
	if waited < late/2 {
		return fmt.Errorf("barrier returned after %v, before rank 0 arrived", waited)
	}
	if used > waited/4 {
		return fmt.Errorf("waiting %v at an idle barrier used %v of CPU: it spins", waited, used)
	}
	return nil
}

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
