// Command ckptbench measures ckptio on the checkpoint benchmarks' workload
// (bench/internal/workload): an MPI Go program that protects each rank's
// field with mpiio and checkpoints it three times (full, 10% of the 64 KiB
// pieces changed, 1% changed), then restores the full version.
//
//	mpirun -np 4 bin/ckptbench --size 64MiB --mode async
//
// The cluster comes from the environment as for any mpiio program
// (CKPT_MANAGER and CKPT_TOKEN_FILE, or the local cluster under CKPT_HOME);
// the harness (bench/harness) starts a fresh one per run.
//
// For each checkpoint: the time the application is blocked (the Checkpoint
// call), the time to durable (Checkpoint start to Wait's return), both of
// the slowest rank (Barrier before, Allreduce(max) after), and the
// version's figures (cp.LastResult). Every rank's peak RSS (VmHWM) is
// gathered; leaders are the ranks with group rank 0. Rank 0 prints progress
// and one RESULT line of JSON.
package main

import (
	"context"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"time"

	"github.com/ckptio/ckptio/bench/internal/workload"
	"github.com/ckptio/ckptio/collective"
	"github.com/ckptio/ckptio/mpiio"
	"github.com/ckptio/ckptio/mpiio/mpi"
	"github.com/ckptio/ckptio/mpiio/mpicomm"
	"github.com/ckptio/ckptio/storage"
)

type options struct {
	size      int64
	mode      string
	job       string
	seed      uint64
	drop      bool
	storeRoot string
	profDir   string
	memDir    string
	world     *mpi.Comm
}

func main() {
	var o options
	sizeS := flag.String("size", "64MiB", "bytes of state per rank (a multiple of 64KiB)")
	flag.StringVar(&o.mode, "mode", "async", "async (the default of mpiio) or sync (as with CKPT_ASYNC=0)")
	flag.StringVar(&o.job, "job", "bench", "job name")
	flag.Uint64Var(&o.seed, "seed", 1, "workload seed")
	flag.BoolVar(&o.drop, "drop-caches", false, "drop the page cache before the restore (needs root)")
	flag.StringVar(&o.storeRoot, "store-root", "", "the local cluster's home: rank 0 measures the growth of its store-* directories")
	flag.StringVar(&o.profDir, "cpuprofile", "", "write a CPU profile of the full checkpoint per rank into this directory")
	flag.StringVar(&o.memDir, "memprofile", "", "write rank 0's allocation profiles before and after each checkpoint into this directory (compare with go tool pprof -base)")
	flag.Parse()
	if err := mpi.Init(); err != nil {
		fmt.Fprintln(os.Stderr, "ckptbench:", err)
		os.Exit(1)
	}
	o.world = mpi.World()
	var err error
	if o.size, err = storage.ParseSize(*sizeS); err != nil || o.size <= 0 || o.size%workload.PieceSize != 0 {
		err = fmt.Errorf("--size %q: want a positive multiple of 64KiB", *sizeS)
	} else if o.mode != "async" && o.mode != "sync" {
		err = fmt.Errorf("--mode %q: want async or sync", o.mode)
	}
	if err == nil {
		err = run(o)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "ckptbench: rank %d: %v\n", o.world.Rank(), err)
		o.world.Abort(1)
	}
	mpi.Finalize()
}

// maxOf returns the largest v over the ranks.
func maxOf(c *mpi.Comm, v float64) (float64, error) {
	out := []float64{0}
	err := c.AllreduceFloat64([]float64{v}, out, mpi.Max)
	return out[0], err
}

// gather collects v from every rank on rank 0.
func gather(c *mpi.Comm, v int64) ([]int64, error) {
	out := make([]int64, c.Size())
	err := c.GatherInt64([]int64{v}, out, 0)
	return out, err
}

// isLeader reports whether this rank is an I/O leader: group rank 0 of its
// aggregation group, formed as mpiio forms it.
func isLeader(world *mpi.Comm) (bool, error) {
	if v := os.Getenv("CKPT_RANKS_PER_LEADER"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return false, fmt.Errorf("CKPT_RANKS_PER_LEADER=%q", v)
		}
		return world.Rank()%n == 0, nil
	}
	node, err := world.SplitTypeShared(world.Rank())
	if err != nil {
		return false, err
	}
	defer node.Free()
	return node.Rank() == 0, nil
}

// bound is the leader memory bound mpiio applies.
func bound() int64 {
	if v := os.Getenv("CKPT_LEADER_MEMORY"); v != "" {
		if n, err := storage.ParseSize(v); err == nil {
			return n
		}
	}
	return collective.DefaultLeaderMemory
}

func blockSize() int64 {
	if v := os.Getenv("CKPT_BLOCK_SIZE"); v != "" {
		if n, err := storage.ParseSize(v); err == nil {
			return n
		}
	}
	return 64 << 10
}

// diskUsage is the space the files under root's store-* directories take.
func diskUsage(root string) int64 {
	if root == "" {
		return 0
	}
	dirs, _ := filepath.Glob(filepath.Join(root, "store-*"))
	var n int64
	for _, d := range dirs {
		filepath.WalkDir(d, func(_ string, e fs.DirEntry, err error) error {
			if err == nil && !e.IsDir() {
				if info, err := e.Info(); err == nil {
					n += diskBytes(info)
				}
			}
			return nil
		})
	}
	return n
}

func run(o options) error {
	ctx := context.Background()
	rank := o.world.Rank()
	say := func(format string, args ...any) {
		if rank == 0 {
			fmt.Printf("ckptbench (%s): "+format+"\n", append([]any{o.mode}, args...)...)
		}
	}
	f := make([]float64, o.size/8)
	workload.Fill(f, rank, o.seed)
	fullSum := workload.Checksum(f)
	res := workload.Ckptio{Mode: o.mode, RegionBytes: o.size, LeaderMemory: bound(), BlockSize: blockSize()}
	baseline := workload.StatusKiB("VmRSS")
	daemons := workload.DaemonsFromEnv()

	leader, err := isLeader(o.world)
	if err != nil {
		return err
	}
	cp, err := mpiio.Open(ctx, mpicomm.Wrap(o.world), mpiio.Config{Job: o.job, Sync: o.mode == "sync"})
	if err != nil {
		return err
	}
	defer cp.Close(ctx)
	if err := cp.Protect("field", f); err != nil {
		return err
	}
	total := o.size * int64(o.world.Size())
	var fullVersion int64
	async := false // some checkpoint ran asynchronously
	for step := range workload.StepNames {
		pieces := workload.Pieces(f)
		if step > 0 {
			pieces = workload.Change(f, rank, step, o.seed)
		}
		before := int64(0)
		if rank == 0 {
			workload.Flush()
			before = diskUsage(o.storeRoot)
		}
		if err := o.world.Barrier(); err != nil {
			return err
		}
		var prof *os.File
		if step == 0 && o.profDir != "" {
			path := filepath.Join(o.profDir, fmt.Sprintf("ckptio-%s-rank-%d.prof", o.mode, rank))
			if prof, err = os.Create(path); err != nil {
				return err
			}
			if err := pprof.StartCPUProfile(prof); err != nil {
				return err
			}
		}
		if err := o.allocProfile(rank, step, "before"); err != nil {
			return err
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		allocBefore, gcBefore := ms.TotalAlloc, ms.NumGC
		c0 := daemons.Read(rank == 0)
		t0 := time.Now()
		v, err := cp.Checkpoint(ctx, mpiio.Meta{Step: int64(step)})
		if err != nil {
			return err
		}
		blocked := time.Since(t0)
		wasAsync := v == 0
		if wasAsync {
			if v, err = cp.Wait(ctx); err != nil {
				return err
			}
			async = true
		}
		durable := time.Since(t0)
		c1 := daemons.Read(rank == 0)
		if prof != nil {
			pprof.StopCPUProfile()
			if err := prof.Close(); err != nil {
				return err
			}
		}
		runtime.ReadMemStats(&ms)
		allocs, gcs := ms.TotalAlloc-allocBefore, ms.NumGC-gcBefore
		if err := o.allocProfile(rank, step, "after"); err != nil {
			return err
		}
		if step == 0 {
			fullVersion = v
		}
		r := cp.LastResult()
		b, err := maxOf(o.world, blocked.Seconds())
		if err != nil {
			return err
		}
		d, err := maxOf(o.world, durable.Seconds())
		if err != nil {
			return err
		}
		h, err := maxOf(o.world, r.Hash.Took.Seconds())
		if err != nil {
			return err
		}
		st := workload.Step{Name: workload.StepNames[step], Blocked: b, Durable: d, Logical: r.LogicalBytes,
			Written: r.NewBytes, Sent: r.SentBytes, PiecesChange: pieces, Async: wasAsync, Version: v, HashSeconds: h}
		if rank == 0 {
			st.DiskGrowth = diskUsage(o.storeRoot) - before
			st.AllocBytes, st.GCs = int64(allocs), int64(gcs)
		}
		res.Steps = append(res.Steps, st)
		if step < 2 {
			bd, err := o.breakdown(c0, c1, d, r.Stages, &res)
			if err != nil {
				return err
			}
			bd.Hash = h
			if step == 0 {
				res.FullStages = bd
			} else {
				res.Incr10Stages = bd
			}
		}
		say("%s: version %d, %s of %s new; blocked %.3fs, durable %.3fs (%.0f MB/s of state)",
			st.Name, v, storage.FormatSize(r.NewBytes), storage.FormatSize(total), b, d, float64(total)/d/1e6)
	}
	if async {
		res.StagingBytes = o.size
	}
	if full := res.Steps[0]; full.Written > 0 {
		res.ReplicasSeen = float64(full.Sent) / float64(full.Written)
	}
	peak := workload.StatusKiB("VmHWM")

	// Restore the full version over the changed state.
	res.PeakReset = workload.ResetPeak()
	dropped := false
	if rank == 0 && o.drop {
		dropped = workload.DropCaches()
	}
	if err := o.world.Barrier(); err != nil {
		return err
	}
	var prof *os.File
	if o.profDir != "" {
		path := filepath.Join(o.profDir, fmt.Sprintf("ckptio-%s-restore-rank-%d.prof", o.mode, rank))
		if prof, err = os.Create(path); err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(prof); err != nil {
			return err
		}
	}
	c0 := daemons.Read(rank == 0)
	t0 := time.Now()
	if err := cp.Restore(ctx, fullVersion); err != nil {
		return err
	}
	rtook := time.Since(t0)
	c1 := daemons.Read(rank == 0)
	if prof != nil {
		pprof.StopCPUProfile()
		if err := prof.Close(); err != nil {
			return err
		}
	}
	took, err := maxOf(o.world, rtook.Seconds())
	if err != nil {
		return err
	}
	if res.RestoreStages, err = o.breakdown(c0, c1, took, cp.LastRestore(), &res); err != nil {
		return err
	}
	restorePeak := workload.StatusKiB("VmHWM")
	bad := []int64{0}
	if workload.Checksum(f) != fullSum {
		bad[0] = 1
	}
	anyBad := []int64{0}
	if err := o.world.AllreduceInt64(bad, anyBad, mpi.Max); err != nil {
		return err
	}
	res.Restore = workload.ReadBack{Of: "full", Seconds: took, Bytes: total, Dropped: dropped, Matches: anyBad[0] == 0}
	say("restored version %d (%s) in %.3fs (page cache dropped: %v, data matches: %v)",
		fullVersion, storage.FormatSize(total), took, dropped, anyBad[0] == 0)

	lead := int64(0)
	if leader {
		lead = 1
	}
	for _, g := range []struct {
		v   int64
		out *[]int64
	}{{peak, &res.PeakKiB}, {restorePeak, &res.RestorePeak}, {baseline, &res.BaselineKiB}} {
		if *g.out, err = gather(o.world, g.v); err != nil {
			return err
		}
	}
	leaders, err := gather(o.world, lead)
	if err != nil {
		return err
	}
	sums, err := gather(o.world, int64(fullSum))
	if err != nil {
		return err
	}
	if rank == 0 {
		for r, l := range leaders {
			if l != 0 {
				res.Leaders = append(res.Leaders, r)
			}
		}
		for _, s := range sums {
			res.Checksums = append(res.Checksums, fmt.Sprintf("%016x", uint64(s)))
		}
		if o.profDir != "" {
			for r := range o.world.Size() {
				res.ProfileFiles = append(res.ProfileFiles, filepath.Join(o.profDir, fmt.Sprintf("ckptio-%s-rank-%d.prof", o.mode, r)))
			}
		}
		workload.Report(res)
	}
	return cp.Close(ctx)
}

// breakdown is where an operation's time went, from the counters read
// before (a) and after (b) it on every rank; wall is the slowest rank's
// time and st this rank's leader split. Collective.
func (o options) breakdown(a, b workload.Counters, wall float64, st collective.Stages, res *workload.Ckptio) (workload.Breakdown, error) {
	cpu, faults := workload.SelfDelta(a, b)
	out := []float64{0}
	if err := o.world.AllreduceFloat64([]float64{cpu}, out, mpi.Sum); err != nil {
		return workload.Breakdown{}, err
	}
	fout := []int64{0}
	if err := o.world.AllreduceInt64([]int64{faults}, fout, mpi.Sum); err != nil {
		return workload.Breakdown{}, err
	}
	bd, missing := workload.Sub(a, b)
	bd.Wall, bd.RanksCPU, bd.RanksFaults = wall, out[0], fout[0]
	bd.LeaderMPI, bd.LeaderStores = st.MPI.Seconds(), st.Stores.Seconds()
	if o.world.Rank() == 0 {
		res.StageNotes = append(res.StageNotes, missing...)
	}
	return bd, nil
}

// allocProfile writes rank 0's allocation profile (--memprofile) as
// ckptio-MODE-STEP-WHEN.prof, after a collection so that it is current.
func (o options) allocProfile(rank, step int, when string) error {
	if o.memDir == "" || rank != 0 {
		return nil
	}
	runtime.GC()
	f, err := os.Create(filepath.Join(o.memDir, fmt.Sprintf("ckptio-%s-%s-%s.prof", o.mode, workload.StepNames[step], when)))
	if err != nil {
		return err
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
