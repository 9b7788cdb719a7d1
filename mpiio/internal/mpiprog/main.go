// Command mpiprog exercises the mpiio API under real mpirun for the
// package's integration tests. Modes (--mode):
//
//	roundtrip  protect regions of several types, checkpoint, scramble,
//	           restore, compare; then a stream checkpoint read back through
//	           per-rank readers of other ranks
//	die        checkpoint once, then the last rank dies while the others are
//	           inside the second checkpoint
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/ckptio/ckptio/mpiio"
	"github.com/ckptio/ckptio/mpiio/mpi"
	"github.com/ckptio/ckptio/mpiio/mpicomm"
)

func main() {
	mode := flag.String("mode", "roundtrip", "roundtrip or die")
	flag.Parse()
	if err := mpi.Init(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	w := mpi.World()
	var err error
	switch *mode {
	case "roundtrip":
		err = roundtrip(w)
	case "die":
		err = die(w)
	default:
		err = fmt.Errorf("unknown mode %q", *mode)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "rank %d: %v\n", w.Rank(), err)
		w.Abort(1)
	}
	fmt.Printf("rank %d: ok\n", w.Rank())
	mpi.Finalize()
}

func roundtrip(w *mpi.Comm) error {
	ctx := context.Background()
	r := w.Rank()
	cp, err := mpiio.Open(ctx, mpicomm.Wrap(w), mpiio.Config{})
	if err != nil {
		return err
	}
	defer cp.Close(ctx)
	f := make([]float64, 100_000+r*1234)
	for i := range f {
		f[i] = float64(r*1_000_000 + i)
	}
	ints := []int32{int32(r), 2, 3}
	var empty []float32
	raw := bytes.Repeat([]byte{byte(r)}, 3<<20) // several blocks, all alike across a rank
	for name, data := range map[string]any{"f": f, "ints": ints, "empty": empty, "raw": raw} {
		if err := cp.Protect(name, data); err != nil {
			return err
		}
	}
	if err := cp.Protect("bad", map[string]int{}); err == nil {
		return fmt.Errorf("protecting a map succeeded")
	}
	v, err := cp.Checkpoint(ctx, mpiio.Meta{Step: 7})
	if err != nil {
		return err
	}
	if v == 0 { // asynchronous: the regions were copied; scribbling on them now must not matter
		f[0] = -7
		if v, err = cp.Wait(ctx); err != nil {
			return err
		}
		f[0] = float64(r * 1_000_000)
	}
	latest, ok, err := cp.Latest(ctx)
	if err != nil || !ok || latest != v {
		return fmt.Errorf("latest = %d, %v, %v; want %d", latest, ok, err, v)
	}
	for i := range f {
		f[i] = -1
	}
	ints[0], raw[0] = -1, 0xff
	if err := cp.Restore(ctx, v); err != nil {
		return err
	}
	for i := range f {
		if f[i] != float64(r*1_000_000+i) {
			return fmt.Errorf("f[%d] = %v after restore", i, f[i])
		}
	}
	if ints[0] != int32(r) || raw[0] != byte(r) {
		return fmt.Errorf("ints/raw not restored")
	}
	// Stream form, read back by another rank.
	s, err := cp.Begin(ctx)
	if err != nil {
		return err
	}
	sw, err := s.Writer("state")
	if err != nil {
		return err
	}
	fmt.Fprintf(sw, "state of rank %d ", r)
	sw.Write(bytes.Repeat([]byte{'x'}, 100_000*r))
	sv, err := s.Commit(ctx, mpiio.Meta{Step: 8})
	if err != nil {
		return err
	}
	peer := (r + 1) % w.Size()
	rd, err := cp.OpenReader(ctx, sv, peer, "state")
	if err != nil {
		return err
	}
	got, err := io.ReadAll(rd)
	rd.Close()
	if err != nil {
		return err
	}
	want := fmt.Sprintf("state of rank %d ", peer) + string(bytes.Repeat([]byte{'x'}, 100_000*peer))
	if string(got) != want {
		return fmt.Errorf("stream of rank %d read back %d bytes, want %d", peer, len(got), len(want))
	}
	if _, err := cp.OpenReader(ctx, sv, w.Size()+5, "state"); err == nil {
		return fmt.Errorf("reader of a rank that does not exist succeeded")
	}
	return nil
}

func die(w *mpi.Comm) error {
	ctx := context.Background()
	cp, err := mpiio.Open(ctx, mpicomm.Wrap(w), mpiio.Config{})
	if err != nil {
		return err
	}
	data := make([]float64, 1<<16)
	cp.Protect("data", data)
	if _, err := cp.Checkpoint(ctx, mpiio.Meta{Step: 1}); err != nil {
		return err
	}
	data[0] = 1
	if w.Rank() == w.Size()-1 {
		time.Sleep(700 * time.Millisecond) // the others are inside the checkpoint by now
		fmt.Fprintf(os.Stderr, "rank %d: dying during the second checkpoint\n", w.Rank())
		os.Exit(1)
	}
	if _, err = cp.Checkpoint(ctx, mpiio.Meta{Step: 2}); err == nil {
		_, err = cp.Wait(ctx)
	}
	return fmt.Errorf("second checkpoint completed (err %v) although a rank died", err)
}
