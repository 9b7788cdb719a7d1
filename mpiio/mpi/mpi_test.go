//go:build cgo

package mpi

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
)

// These tests run in the test process, a singleton MPI job of size 1.

func TestSingletonWorld(t *testing.T) {
	w := initSingleton(t)
	if !Initialized() || Finalized() {
		t.Fatal("Initialized/Finalized disagree with Init")
	}
	if w.Size() != 1 || w.Rank() != 0 || Self().Size() != 1 {
		t.Fatalf("world rank %d size %d, self size %d", w.Rank(), w.Size(), Self().Size())
	}
	if err := Init(); !errors.Is(err, ErrArg) {
		t.Fatalf("second Init: %v", err)
	}
	if err := w.Barrier(); err != nil {
		t.Fatal(err)
	}
	if err := w.Free(); !errors.Is(err, ErrComm) {
		t.Fatalf("Free(World): %v", err)
	}
	var nilComm *Comm
	if err := nilComm.Barrier(); !errors.Is(err, ErrComm) || nilComm.Size() != 0 {
		t.Fatalf("nil Comm: %v", err)
	}
}

// withChunk lowers the chunk size for one test.
func withChunk(t *testing.T, n int) {
	old := maxChunk
	maxChunk = n
	t.Cleanup(func() { maxChunk = old })
}

func TestSingletonSendrecvChunked(t *testing.T) {
	w := initSingleton(t)
	withChunk(t, 5)
	for _, n := range []int{0, 1, 4, 5, 6, 10, 23} {
		msg := pattern(n, n)
		buf := make([]byte, 30)
		st, err := w.Sendrecv(msg, 0, 1, buf, AnySource, AnyTag)
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if st.Count != n || st.Source != 0 || st.Tag != 1 || !bytes.Equal(buf[:n], msg) {
			t.Fatalf("%d bytes: status %+v", n, st)
		}
	}
}

func TestSingletonTruncate(t *testing.T) {
	w := initSingleton(t)
	_, err := w.Sendrecv(make([]byte, 8), 0, 2, make([]byte, 4), 0, 2)
	if !errors.Is(err, ErrTruncate) {
		t.Fatalf("got %v, want ErrTruncate", err)
	}
	if Flavor == "openmpi" && err.Error() != "mpi: Sendrecv: MPI_ERR_TRUNCATE: message truncated" {
		t.Fatalf("error text %q", err)
	}
	// Root's own contribution longer than its count.
	err = w.Gatherv(make([]byte, 5), make([]byte, 3), []int{3}, []int{0}, 0)
	if !errors.Is(err, ErrTruncate) || !strings.HasPrefix(err.Error(), "mpi: Gatherv: ") {
		t.Fatalf("Gatherv: got %v, want ErrTruncate", err)
	}
}

func TestSingletonCollectives(t *testing.T) {
	w := initSingleton(t)
	for _, chunk := range []int{1 << 30, 3} {
		withChunk(t, chunk)
		send := pattern(1, 20)
		recv := make([]byte, 25)
		if err := w.Gatherv(send, recv, []int{20}, []int{5}, 0); err != nil {
			t.Fatalf("chunk %d: Gatherv: %v", chunk, err)
		}
		if !bytes.Equal(recv[5:], send) || !bytes.Equal(recv[:5], make([]byte, 5)) {
			t.Fatalf("chunk %d: Gatherv: %v", chunk, recv)
		}
		back := make([]byte, 20)
		if err := w.Scatterv(recv, []int{20}, []int{5}, back, 0); err != nil || !bytes.Equal(back, send) {
			t.Fatalf("chunk %d: Scatterv: %v %v", chunk, err, back)
		}
		f := []float64{1.5, -2, 3}
		out := make([]float64, 3)
		if err := w.AllreduceFloat64(f, out, Min); err != nil || !slices.Equal(out, f) {
			t.Fatalf("chunk %d: Allreduce: %v %v", chunk, err, out)
		}
		if err := w.Bcast(send, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Gatherv(nil, nil, []int{1}, []int{0}, 0); !errors.Is(err, ErrCount) {
		t.Fatalf("Gatherv past root's buffer: %v", err)
	}
}

func TestSingletonComms(t *testing.T) {
	w := initSingleton(t)
	none, err := w.Split(Undefined, 0)
	if err != nil || none != nil {
		t.Fatalf("Split(Undefined): %v %v", none, err)
	}
	d, err := w.Dup()
	if err != nil {
		t.Fatal(err)
	}
	s, err := d.SplitTypeShared(0)
	if err != nil || s.Size() != 1 {
		t.Fatalf("SplitTypeShared: %v", err)
	}
	for _, c := range []*Comm{s, d} {
		if err := c.Free(); err != nil {
			t.Fatal(err)
		}
		if err := c.Free(); !errors.Is(err, ErrComm) {
			t.Fatalf("second Free: %v", err)
		}
	}
	if _, err := d.Dup(); !errors.Is(err, ErrComm) {
		t.Fatalf("Dup of freed comm: %v", err)
	}
}
