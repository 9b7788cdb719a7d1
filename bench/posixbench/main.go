// Command posixbench is the N-N POSIX baseline of the checkpoint
// benchmarks: every MPI rank writes its state to a new file of its own,
// fsyncs it and renames it over its previous checkpoint (overwriting in
// place would destroy the only checkpoint while the new one is written). One launch writes one step (the state is regenerated, see
// bench/internal/workload) so that the harness can back the files up with
// restic between steps; --read reads the files back instead.
//
//	mpirun -np 4 bin/posixbench --size 64MiB --dir /tmp/nn --step 0
//	mpirun -np 4 bin/posixbench --size 64MiB --dir /tmp/nn --step 2 --read
//
// Rank 0 prints progress and one RESULT line of JSON. Times are of the
// slowest rank: a Barrier before, an Allreduce(max) after.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/ckptio/ckptio/bench/internal/workload"
	"github.com/ckptio/ckptio/mpiio/mpi"
	"github.com/ckptio/ckptio/storage"
)

type options struct {
	size  int64
	dir   string
	step  int
	read  bool
	seed  uint64
	drop  bool
	world *mpi.Comm
}

func main() {
	var o options
	sizeS := flag.String("size", "64MiB", "bytes of state per rank (a multiple of 64KiB)")
	flag.StringVar(&o.dir, "dir", "", "directory of the per-rank files (required)")
	flag.IntVar(&o.step, "step", 0, "state to write: 0 full, 1 after 10% changed, 2 after 1% more")
	flag.BoolVar(&o.read, "read", false, "read the files back (they must hold --step) instead of writing")
	flag.Uint64Var(&o.seed, "seed", 1, "workload seed")
	flag.BoolVar(&o.drop, "drop-caches", false, "drop the page cache before reading (needs root)")
	flag.Parse()
	if err := mpi.Init(); err != nil {
		fmt.Fprintln(os.Stderr, "posixbench:", err)
		os.Exit(1)
	}
	o.world = mpi.World()
	var err error
	if o.size, err = storage.ParseSize(*sizeS); err != nil || o.size <= 0 || o.size%workload.PieceSize != 0 {
		err = fmt.Errorf("--size %q: want a positive multiple of 64KiB", *sizeS)
	} else if o.dir == "" {
		err = errors.New("--dir is required")
	} else if o.step < 0 || o.step >= len(workload.StepNames) {
		err = fmt.Errorf("--step %d: want 0, 1 or 2", o.step)
	}
	if err == nil {
		err = run(o)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "posixbench: rank %d: %v\n", o.world.Rank(), err)
		o.world.Abort(1)
	}
	mpi.Finalize()
}

func (o options) path() string {
	return filepath.Join(o.dir, fmt.Sprintf("rank-%05d.dat", o.world.Rank()))
}

// maxOf returns the largest v over the ranks.
func maxOf(c *mpi.Comm, v float64) (float64, error) {
	out := []float64{0}
	err := c.AllreduceFloat64([]float64{v}, out, mpi.Max)
	return out[0], err
}

func run(o options) error {
	rank := o.world.Rank()
	f := make([]float64, o.size/8)
	workload.State(f, rank, o.step, o.seed)
	want := workload.Checksum(f)
	base := workload.StatusKiB("VmRSS")
	if o.read {
		return readBack(o, f, want, base)
	}
	pieces := workload.Pieces(f)
	if o.step > 0 {
		pieces = len(workload.Changed(pieces, rank, o.step, o.seed))
	}
	if rank == 0 {
		if err := os.MkdirAll(o.dir, 0o755); err != nil {
			return err
		}
		workload.Flush()
	}
	if err := o.world.Barrier(); err != nil {
		return err
	}
	t0 := time.Now()
	if err := writeFile(o.path(), workload.Bytes(f)); err != nil {
		return err
	}
	took, err := maxOf(o.world, time.Since(t0).Seconds())
	if err != nil {
		return err
	}
	sums := make([]int64, o.world.Size())
	if err := o.world.GatherInt64([]int64{int64(want)}, sums, 0); err != nil {
		return err
	}
	peak := make([]int64, 1)
	if err := o.world.AllreduceInt64([]int64{workload.StatusKiB("VmHWM")}, peak, mpi.Max); err != nil {
		return err
	}
	if rank == 0 {
		total := o.size * int64(o.world.Size())
		fmt.Printf("posixbench: %s: %s written and fsynced by %d ranks in %.2fs (%.0f MB/s)\n",
			workload.StepNames[o.step], storage.FormatSize(total), o.world.Size(), took, float64(total)/took/1e6)
		workload.Report(map[string]any{
			"step": workload.Step{Name: workload.StepNames[o.step], Blocked: took, Durable: took,
				Logical: total, Written: total, PiecesChange: pieces},
			"checksums": hexSums(sums),
			"memory":    workload.Memory{PeakKiB: peak[0], BaselineKiB: base},
		})
	}
	return nil
}

// writeFile writes data as a new file and renames it over path, so the
// previous checkpoint stays whole until the new one is durable: the data
// is fsynced before the rename, the directory after it.
func writeFile(path string, data []byte) error {
	tmp := path + ".tmp"
	fh, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := fh.Write(data); err != nil {
		fh.Close()
		return err
	}
	if err := fh.Sync(); err != nil {
		fh.Close()
		return err
	}
	if err := fh.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func readBack(o options, f []float64, want uint64, base int64) error {
	dropped := false
	if o.world.Rank() == 0 && o.drop {
		dropped = workload.DropCaches()
	}
	if err := o.world.Barrier(); err != nil {
		return err
	}
	clear(f)
	t0 := time.Now()
	fh, err := os.Open(o.path())
	if err != nil {
		return err
	}
	_, err = io.ReadFull(fh, workload.Bytes(f))
	fh.Close()
	if err != nil {
		return fmt.Errorf("reading %s: %w", o.path(), err)
	}
	took, err := maxOf(o.world, time.Since(t0).Seconds())
	if err != nil {
		return err
	}
	bad := []int64{0}
	if workload.Checksum(f) != want {
		bad[0] = 1
	}
	anyBad := []int64{0}
	if err := o.world.AllreduceInt64(bad, anyBad, mpi.Max); err != nil {
		return err
	}
	if o.world.Rank() == 0 {
		total := o.size * int64(o.world.Size())
		fmt.Printf("posixbench: read back %s in %.2fs (page cache dropped: %v, data matches: %v)\n",
			storage.FormatSize(total), took, dropped, anyBad[0] == 0)
		workload.Report(map[string]any{"read": workload.ReadBack{Of: workload.StepNames[o.step], Seconds: took,
			Bytes: total, Dropped: dropped, Matches: anyBad[0] == 0}})
	}
	return nil
}

func hexSums(s []int64) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = fmt.Sprintf("%016x", uint64(v))
	}
	return out
}
