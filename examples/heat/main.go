// Command heat is 2-D heat diffusion (Jacobi iteration) over MPI ranks that
// checkpoints with ckptio and restarts from any saved version.
//
// The n x n grid is split by rows over the ranks; each step exchanges halo
// rows with the neighbours (Sendrecv) and updates every interior cell from
// its four neighbours, weighted by a static conductivity field. The result
// is bit-identical for any number of ranks.
//
// It protects the temperature rows, the conductivity rows (which never
// change, so incremental checkpoints store them once) and the step counter.
// Rank 0 prints, for every checkpoint,
//
//	checkpoint step S version V sha256 HEX
//
// where HEX is the SHA-256 of the global temperature grid in row order as
// little-endian float64, and at the end "final checksum: HEX".
//
// With --out DIR every rank R appends, after each step S, the line
//
//	step S sum X
//
// to DIR/heat-rank-R.log, where X is the sum of the rank's temperature
// rows printed with %.17g (so the logs of two runs on as many ranks are
// byte-identical), and protects that file (mpiio ProtectFiles: each rank
// owns its log). A restart rolls every log back to the version it
// restores, so after a failure each log still holds each step exactly
// once.
//
// Run it under ckptrun, which restarts it after a failure:
//
//	ckptrun -np 4 bin/heat --n 1024 --steps 200 --checkpoint-every 50 --out out
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"
	"unsafe"

	"github.com/ckptio/ckptio/mpiio"
	"github.com/ckptio/ckptio/mpiio/mpi"
	"github.com/ckptio/ckptio/mpiio/mpicomm"
)

type pendingLine struct {
	step int
	sum  string
}

type options struct {
	n, steps, every  int
	failAt, failRank int
	job, out         string
}

func main() {
	var o options
	flag.IntVar(&o.n, "n", 1024, "grid edge (cells)")
	flag.IntVar(&o.steps, "steps", 200, "steps to run in all (a restarted run continues to this step)")
	flag.IntVar(&o.every, "checkpoint-every", 50, "checkpoint every this many steps (0 = never)")
	flag.IntVar(&o.failAt, "fail-at-step", -1, "inject a failure: --fail-rank exits with status 1 at this step (first attempt only)")
	flag.IntVar(&o.failRank, "fail-rank", 0, "the rank that fails at --fail-at-step")
	flag.StringVar(&o.job, "job", "", "job name (default $CKPT_JOB, else heat)")
	flag.StringVar(&o.out, "out", "", "append one line per step to DIR/heat-rank-R.log on each rank R, protected with the checkpoints")
	flag.Parse()
	if err := mpi.Init(); err != nil {
		fmt.Fprintln(os.Stderr, "heat:", err)
		os.Exit(1)
	}
	err := run(o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "heat: rank %d: %v\n", mpi.World().Rank(), err)
		mpi.World().Abort(1)
	}
	mpi.Finalize()
}

// printCheckpoint says what became of the checkpoint of step: its version,
// or (v == 0) that it failed and the program goes on without it.
func printCheckpoint(cp *mpiio.Checkpointer, step int, v int64, sum string) {
	if v == 0 {
		fmt.Printf("checkpoint step %d failed; continuing without it: %v\n", step, cp.LastError())
		return
	}
	fmt.Printf("checkpoint step %d version %d sha256 %s\n", step, v, sum)
}

// rowsOf returns the first global row and the row count of rank r.
func rowsOf(n, size, r int) (int, int) {
	lo, hi := r*n/size, (r+1)*n/size
	return lo, hi - lo
}

// conductivity is the static field: smooth, between 0.05 and 0.20 (< 0.25
// keeps the explicit scheme stable).
func conductivity(i, j, n int) float64 {
	x, y := float64(i)/float64(n), float64(j)/float64(n)
	return 0.125 + 0.075*math.Sin(6*x)*math.Cos(4*y)
}

func run(o options) error {
	ctx := context.Background()
	world := mpi.World()
	rank, size := world.Rank(), world.Size()
	if o.n < 3 || o.n < size {
		return fmt.Errorf("--n %d: want at least 3 and at least the number of ranks (%d)", o.n, size)
	}
	n := o.n
	lo, rows := rowsOf(n, size, rank)
	temp := make([]float64, rows*n)
	next := make([]float64, rows*n)
	cond := make([]float64, rows*n)
	step := []int64{0}
	for i := 0; i < rows; i++ {
		for j := 0; j < n; j++ {
			cond[i*n+j] = conductivity(lo+i, j, n)
		}
		if lo+i == 0 {
			for j := 0; j < n; j++ {
				temp[j] = 1 // the hot edge
			}
		}
	}

	job := o.job
	if job == "" {
		job = os.Getenv("CKPT_JOB")
	}
	if job == "" {
		job = "heat"
	}
	cp, err := mpiio.Open(ctx, mpicomm.Wrap(world), mpiio.Config{Job: job})
	if err != nil {
		return err
	}
	defer cp.Close(ctx)
	for _, p := range []struct {
		name string
		data any
	}{{"temperature", temp}, {"conductivity", cond}, {"step", step}} {
		if err := cp.Protect(p.name, p.data); err != nil {
			return err
		}
	}
	var logPath string
	if o.out != "" {
		if err := os.MkdirAll(o.out, 0o755); err != nil {
			return fmt.Errorf("--out: %w", err)
		}
		logPath = filepath.Join(o.out, fmt.Sprintf("heat-rank-%d.log", rank))
		if err := cp.ProtectFiles(logPath); err != nil {
			return err
		}
	}
	v, restored, err := cp.Resume(ctx)
	if err != nil {
		return err
	}
	// Opened after Resume, which may have replaced the file.
	var logFile *os.File
	if logPath != "" {
		if logFile, err = os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); err != nil {
			return err
		}
		defer logFile.Close()
	}
	if rank == 0 {
		if restored {
			fmt.Printf("restored %s version %d (step %d) on %d ranks\n", job, v, step[0], size)
		} else {
			fmt.Printf("no version of %s to restore; starting at step 0 on %d ranks\n", job, size)
		}
	}

	// With asynchronous checkpoints (the default) Checkpoint returns 0 and
	// the version is known once the background commit ends: the line for a
	// checkpoint is printed then, at the next checkpoint or at the end.
	var pend *pendingLine
	flush := func() error {
		if pend == nil {
			return nil
		}
		v, err := cp.Wait(ctx)
		if err != nil {
			return err
		}
		if rank == 0 {
			printCheckpoint(cp, pend.step, v, pend.sum)
		}
		pend = nil
		return nil
	}

	injecting := o.failAt >= 0 && (os.Getenv("CKPT_ATTEMPT") == "" || os.Getenv("CKPT_ATTEMPT") == "0")
	up, down := make([]float64, n), make([]float64, n)
	start := time.Now()
	for s := int(step[0]); s < o.steps; s++ {
		if injecting && s == o.failAt {
			// The fault hits after the previous checkpoint is durable (and
			// reported), so where a run restarts does not depend on timing.
			if err := flush(); err != nil {
				return err
			}
			if rank == o.failRank {
				fmt.Fprintf(os.Stderr, "heat: rank %d: injected failure at step %d\n", rank, s)
				os.Exit(1)
			}
		}
		if err := exchange(world, temp, rows, n, up, down); err != nil {
			return err
		}
		jacobi(temp, next, cond, up, down, lo, rows, n)
		copy(temp, next)
		step[0] = int64(s + 1)
		if logFile != nil {
			// Written before the step's checkpoint, which captures it.
			if _, err := fmt.Fprintf(logFile, "step %d sum %.17g\n", s+1, rowSum(temp)); err != nil {
				return fmt.Errorf("--out: %w", err)
			}
		}
		if o.every > 0 && (s+1)%o.every == 0 {
			if err := flush(); err != nil {
				return err
			}
			v, err := cp.Checkpoint(ctx, mpiio.Meta{Step: step[0]})
			if err != nil {
				return err
			}
			sum, err := globalHash(world, temp, n)
			if err != nil {
				return err
			}
			pend = &pendingLine{step: s + 1, sum: sum}
			if v != 0 { // synchronous
				if rank == 0 {
					printCheckpoint(cp, s+1, v, sum)
				}
				pend = nil
			} else if cp.LastError() != nil { // synchronous and failed (CKPT_ON_FAILURE=continue)
				if rank == 0 {
					printCheckpoint(cp, s+1, 0, sum)
				}
				pend = nil
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if logFile != nil {
		if err := logFile.Close(); err != nil {
			return fmt.Errorf("--out: %w", err)
		}
	}
	hash, err := globalHash(world, temp, n)
	if err != nil {
		return err
	}
	if rank == 0 {
		fmt.Printf("ran to step %d in %.2fs\n", o.steps, time.Since(start).Seconds())
		fmt.Printf("final checksum: %s\n", hash)
	}
	return nil
}

// rowSum adds up a rank's cells in order: the same on every run.
func rowSum(cells []float64) float64 {
	var t float64
	for _, c := range cells {
		t += c
	}
	return t
}

// exchange fills up (the row above this rank's first) and down (the row
// below its last) from the neighbours.
func exchange(c *mpi.Comm, temp []float64, rows, n int, up, down []float64) error {
	rank, size := c.Rank(), c.Size()
	above, below := rank-1, rank+1
	if above < 0 {
		above = mpi.ProcNull
	}
	if below >= size {
		below = mpi.ProcNull
	}
	// Send my last row down, receive the row above from above.
	if _, err := c.SendrecvFloat64(temp[(rows-1)*n:rows*n], below, 1, up, above, 1); err != nil {
		return fmt.Errorf("halo exchange: %w", err)
	}
	// Send my first row up, receive the row below from below.
	if _, err := c.SendrecvFloat64(temp[:n], above, 2, down, below, 2); err != nil {
		return fmt.Errorf("halo exchange: %w", err)
	}
	return nil
}

func jacobi(temp, next, cond, up, down []float64, lo, rows, n int) {
	for i := 0; i < rows; i++ {
		g := lo + i
		row := temp[i*n : (i+1)*n]
		out := next[i*n : (i+1)*n]
		if g == 0 || g == n-1 {
			copy(out, row)
			continue
		}
		above, below := up, down
		if i > 0 {
			above = temp[(i-1)*n : i*n]
		}
		if i < rows-1 {
			below = temp[(i+1)*n : (i+2)*n]
		}
		k := cond[i*n : (i+1)*n]
		out[0], out[n-1] = row[0], row[n-1]
		for j := 1; j < n-1; j++ {
			out[j] = row[j] + k[j]*(above[j]+below[j]+row[j-1]+row[j+1]-4*row[j])
		}
	}
}

// globalHash returns, on rank 0, the SHA-256 of the whole grid in row order
// as little-endian float64 (other ranks get "").
func globalHash(c *mpi.Comm, temp []float64, n int) (string, error) {
	size := c.Size()
	var counts, displs []int
	var all []byte
	if c.Rank() == 0 {
		counts, displs = make([]int, size), make([]int, size)
		off := 0
		for r := 0; r < size; r++ {
			_, rows := rowsOf(n, size, r)
			counts[r], displs[r] = rows*n*8, off
			off += rows * n * 8
		}
		all = make([]byte, off)
	}
	if err := c.Gatherv(float64Bytes(temp), all, counts, displs, 0); err != nil {
		return "", fmt.Errorf("gathering the grid: %w", err)
	}
	if c.Rank() != 0 {
		return "", nil
	}
	h := sha256.Sum256(all)
	return hex.EncodeToString(h[:]), nil
}

// float64Bytes views s as bytes in the machine's byte order (little-endian
// on the platforms ckptio supports; checked at start).
func float64Bytes(s []float64) []byte {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), len(s)*8)
}

func init() {
	one := uint16(1)
	if *(*byte)(unsafe.Pointer(&one)) != 1 {
		panic(errors.New("heat: big-endian machines are not supported: checksums are defined over little-endian float64"))
	}
}
