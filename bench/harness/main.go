// Command harness runs the checkpoint benchmarks in one go and compares
// ckptio with what an MPI program would otherwise do, on the same workload
// (bench/internal/workload) and in the same run:
//
//  1. POSIX N-N (bench/posixbench): every rank writes and fsyncs its file;
//  2. restic: backs the N-N files up after each step, then restores;
//  3. MPI-IO (bench/mpiiobench, built here with mpicc): collective writes
//     to one shared file, MPI_File_sync;
//  4. ckptio synchronous then asynchronous (bench/ckptbench), each on a
//     fresh embedded local cluster of 4 stores.
//
// It writes the figures and their ratios to POSIX into --json and a
// markdown table into --md. See docs/benchmarks.md.
//
//	make bench-quick                      # 256 MiB in all, under 2 minutes
//	make bench                            # 4 GiB in all
//	bin/benchharness --total 1GiB --np 4
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ckptio/ckptio/bench/internal/workload"
	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/cluster"
)

type options struct {
	np       int
	total    int64
	perRank  int64
	seed     uint64
	binDir   string
	work     string
	jsonOut  string
	mdOut    string
	profDir  string
	noRestic bool
	noDrop   bool
	label    string
	timeout  time.Duration
}

func main() {
	var o options
	totalS := flag.String("total", "4GiB", "state checkpointed by all ranks together")
	flag.IntVar(&o.np, "np", 4, "MPI ranks")
	flag.Uint64Var(&o.seed, "seed", 1, "workload seed")
	flag.StringVar(&o.binDir, "bin", "", "directory of ckptbench, posixbench, ckpt-manager, ckpt-store (default: this program's)")
	flag.StringVar(&o.work, "work", "bench/out", "parent of the run's temporary directory (on the disk to measure)")
	flag.StringVar(&o.jsonOut, "json", "bench/results.json", "where to write the figures")
	flag.StringVar(&o.mdOut, "md", "bench/results.md", "where to write the markdown table")
	flag.StringVar(&o.profDir, "cpuprofile", "bench/out/profiles", "directory for CPU profiles of ckptio's full checkpoint, one per rank (\"\" = none)")
	flag.BoolVar(&o.noRestic, "no-restic", false, "skip restic")
	flag.BoolVar(&o.noDrop, "no-drop-caches", false, "do not drop the page cache before read-backs")
	flag.StringVar(&o.label, "label", "bench", "name of this setting in the report (bench, bench-quick)")
	flag.DurationVar(&o.timeout, "timeout", 30*time.Minute, "bound on the whole run")
	flag.Parse()
	var err error
	if o.total, err = storage.ParseSize(*totalS); err != nil || o.total <= 0 {
		fmt.Fprintf(os.Stderr, "harness: --total %q: want a size like 4GiB\n", *totalS)
		os.Exit(2)
	}
	if o.np < 1 {
		fmt.Fprintln(os.Stderr, "harness: --np: want at least 1")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "harness:", err)
		os.Exit(1)
	}
}

// stage prints a stage's heading.
func stage(format string, args ...any) {
	fmt.Printf("\n== "+format+"\n", args...)
}

func run(ctx context.Context, o options) (err error) {
	start := time.Now()
	if o.binDir == "" {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		o.binDir = filepath.Dir(exe)
	}
	for _, b := range []string{"ckptbench", "posixbench", "ckpt-manager", "ckpt-store"} {
		if _, err := os.Stat(filepath.Join(o.binDir, b)); err != nil {
			return fmt.Errorf("%s is missing in %s: build it first (make bench-quick does)", b, o.binDir)
		}
	}
	if err := os.MkdirAll(o.work, 0o755); err != nil {
		return err
	}
	work, err := os.MkdirTemp(o.work, "run-")
	if err != nil {
		return err
	}
	work, _ = filepath.Abs(work)
	// Whatever happens, the run's clusters stop and its files go.
	var homes []string
	defer func() {
		for _, h := range homes {
			if derr := cluster.Down(h); derr != nil {
				fmt.Fprintln(os.Stderr, "harness: stopping the cluster under", h+":", derr)
			}
		}
		if rerr := os.RemoveAll(work); rerr != nil && err == nil {
			err = rerr
		}
		fmt.Printf("\nharness: removed %s\n", work)
	}()

	rep := &report{Notes: []string{}}
	rep.Machine = describeMachine(ctx, work)
	notes, err := o.fit(work)
	if err != nil {
		return err
	}
	rep.Notes = append(rep.Notes, notes...)
	rep.Setting = setting{Label: o.label, Ranks: o.np, BytesPerRank: o.perRank, TotalBytes: o.perRank * int64(o.np),
		PieceBytes: workload.PieceSize, Steps: workload.StepNames, Fractions: workload.Fractions, Stores: 4,
		ReplicasAsked: 1, Seed: o.seed, Work: work,
		GOGC: os.Getenv("GOGC"), GOMEMLIMIT: os.Getenv("GOMEMLIMIT")}
	perRank := fmt.Sprint(o.perRank)
	fmt.Printf("harness: %d ranks x %s = %s per checkpoint; full, then %.0f%% and %.0f%% of the 64 KiB pieces changed; work in %s\n",
		o.np, storage.FormatSize(o.perRank), storage.FormatSize(o.perRank*int64(o.np)), workload.Fractions[1]*100, workload.Fractions[2]*100, work)
	stageTimeout := 2*time.Minute + time.Duration(float64(o.perRank*int64(o.np))/20e6)*time.Second
	drop := []string{}
	if !o.noDrop {
		drop = []string{"--drop-caches"}
	}

	// 1. POSIX N-N, with restic backing the files up after each step.
	var rs *restic
	if !o.noRestic {
		bin, note := findRestic(ctx)
		if bin != "" {
			if rs, err = newRestic(ctx, bin, work); err != nil {
				note = "restic failed to start: " + err.Error()
				rs = nil
			}
		}
		if note != "" {
			fmt.Println("  skipping restic:", note)
			rep.Notes = append(rep.Notes, "restic skipped: "+note)
		}
	}
	nn := filepath.Join(work, "nn")
	posix := &posixRun{}
	var rst *resticRun
	var snaps []string
	if rs != nil {
		rst = &resticRun{Version: rs.version}
	}
	for step, name := range workload.StepNames {
		stage("POSIX N-N: %s (every rank writes its file and fsyncs it)", name)
		var r struct {
			Step      workload.Step   `json:"step"`
			Checksums []string        `json:"checksums"`
			Memory    workload.Memory `json:"memory"`
		}
		if err := mpirun(ctx, o.np, stageTimeout, nil, &r, filepath.Join(o.binDir, "posixbench"),
			"--size", perRank, "--dir", nn, "--step", fmt.Sprint(step), "--seed", fmt.Sprint(o.seed)); err != nil {
			return fmt.Errorf("POSIX N-N %s: %w", name, err)
		}
		posix.Steps = append(posix.Steps, r.Step)
		posix.PeakKiB = max(posix.PeakKiB, r.Memory.PeakKiB)
		if step == 0 {
			posix.Checksums = r.Checksums
		}
		if rs == nil {
			continue
		}
		stage("restic: backup after %s", name)
		before := rs.size()
		snap, took, err := rs.backup(ctx, stageTimeout, nn)
		if err != nil {
			return fmt.Errorf("restic backup after %s: %w", name, err)
		}
		grew := rs.size() - before
		snaps = append(snaps, snap)
		fmt.Printf("    restic: snapshot %s in %.2fs, repository grew by %s\n", snap, took, storage.FormatSize(grew))
		rst.Steps = append(rst.Steps, resticStep{Name: name, Durable: took, Logical: r.Step.Logical, Written: grew, Snapshot: snap})
	}
	stage("POSIX N-N: read back")
	var pr struct {
		Read workload.ReadBack `json:"read"`
	}
	if err := mpirun(ctx, o.np, stageTimeout, nil, &pr, filepath.Join(o.binDir, "posixbench"),
		append([]string{"--size", perRank, "--dir", nn, "--step", "2", "--read", "--seed", fmt.Sprint(o.seed)}, drop...)...); err != nil {
		return fmt.Errorf("POSIX N-N read-back: %w", err)
	}
	posix.Read = pr.Read
	rep.Systems.Posix = posix
	if rs != nil {
		stage("restic: restore of the full snapshot")
		dropped := !o.noDrop && workload.DropCaches()
		target := filepath.Join(work, "restic-restore")
		took, err := rs.restore(ctx, stageTimeout, snaps[0], target)
		if err != nil {
			return fmt.Errorf("restic restore: %w", err)
		}
		ok := checkRestored(target, o.np, posix.Checksums)
		fmt.Printf("    restic: restored %s in %.2fs (page cache dropped: %v, data matches: %v)\n",
			storage.FormatSize(o.perRank*int64(o.np)), took, dropped, ok)
		rst.Restore = workload.ReadBack{Of: "full", Seconds: took, Bytes: o.perRank * int64(o.np), Dropped: dropped, Matches: ok}
		rep.Systems.Restic = rst
		os.RemoveAll(target)
		os.RemoveAll(rs.repo)
	}
	os.RemoveAll(nn)

	// 2. MPI-IO collective writes to one shared file.
	stage("MPI-IO: MPI_File_write_at_all to one shared file + MPI_File_sync")
	mpiioBin := filepath.Join(work, "mpiiobench")
	src := filepath.Join(o.binDir, "..", "bench", "mpiiobench", "mpiiobench.c")
	if _, err := os.Stat(src); err != nil {
		src = filepath.Join("bench", "mpiiobench", "mpiiobench.c")
	}
	if out, err := capture(ctx, 2*time.Minute, os.Environ(), "mpicc", "-O2", "-ffp-contract=off", "-o", mpiioBin, src); err != nil {
		return fmt.Errorf("building %s with mpicc: %w %s", src, err, out)
	}
	mr := &mpiioRun{}
	if err := mpirun(ctx, o.np, 2*stageTimeout, nil, mr, mpiioBin,
		append([]string{"--size", perRank, "--file", filepath.Join(work, "shared.dat"), "--seed", fmt.Sprint(o.seed)}, drop...)...); err != nil {
		return fmt.Errorf("MPI-IO: %w", err)
	}
	rep.Systems.MPIIO = mr
	os.Remove(filepath.Join(work, "shared.dat"))

	// 3. ckptio, synchronous then asynchronous, each on a fresh cluster.
	if o.profDir != "" {
		if err := os.MkdirAll(o.profDir, 0o755); err != nil {
			return err
		}
		o.profDir, _ = filepath.Abs(o.profDir)
	}
	quota := max(int64(8)<<30, 3*o.perRank*int64(o.np)/4)
	for _, mode := range []string{"sync", "async"} {
		stage("ckptio %s: fresh local cluster of 4 stores", mode)
		home := filepath.Join(work, "ckpt-"+mode)
		homes = append(homes, home)
		copts := cluster.Options{Home: home, Stores: 4, Quota: storage.FormatSize(quota), BinDir: o.binDir,
			Progress: func(s string) { fmt.Println("    " + s) }}
		if o.profDir != "" {
			// The stores' profiles cover the whole run of this mode.
			copts.ProfileDir = filepath.Join(o.profDir, "stores-"+mode)
			if err := os.MkdirAll(copts.ProfileDir, 0o755); err != nil {
				return err
			}
		}
		info, err := cluster.Up(ctx, copts)
		if err != nil {
			return fmt.Errorf("ckptio %s: starting the cluster: %w", mode, err)
		}
		env := []string{"CKPT_MANAGER=" + info.Manager, "CKPT_TOKEN_FILE=" + info.TokenFile, "CKPT_HOME=" + home, "CKPT_REPLICAS=1"}
		// For the breakdown of where the time goes: the daemons' CPU
		// and the stores' fdatasyncs (info.Pids: manager first).
		env = append(env, workload.Daemons{Manager: info.Pids[0], Stores: info.Pids[1:], StoreMetrics: info.StoreMetrics}.Env()...)
		args := []string{"--size", perRank, "--mode", mode, "--job", "bench-" + mode, "--store-root", home, "--seed", fmt.Sprint(o.seed)}
		args = append(args, drop...)
		if o.profDir != "" {
			args = append(args, "--cpuprofile", o.profDir)
		}
		stage("ckptio %s: full, incr10, incr1, restore of the full version", mode)
		cr := &workload.Ckptio{}
		if err := mpirun(ctx, o.np, 2*stageTimeout, env, cr, filepath.Join(o.binDir, "ckptbench"), args...); err != nil {
			return fmt.Errorf("ckptio %s: %w", mode, err)
		}
		if mode == "sync" {
			rep.Systems.CkptioSync = cr
		} else {
			rep.Systems.CkptioAsync = cr
		}
		if err := cluster.Down(home); err != nil {
			return fmt.Errorf("ckptio %s: stopping the cluster: %w", mode, err)
		}
		homes = homes[:len(homes)-1]
		os.RemoveAll(home)
	}
	if o.profDir != "" {
		rep.ProfileTop = profileTops(ctx, o.profDir, rep.Systems.CkptioSync, rep.Systems.CkptioAsync)
	}

	rep.Setting.DropCaches = !o.noDrop && posix.Read.Dropped
	rep.Seconds = time.Since(start).Seconds()
	rep.compute()
	stage("results")
	md := rep.markdown()
	fmt.Print(md)
	if err := writeFile(o.jsonOut, rep.json()); err != nil {
		return err
	}
	if err := writeFile(o.mdOut, []byte(md)); err != nil {
		return err
	}
	fmt.Printf("\nharness: wrote %s and %s in %.0fs\n", o.jsonOut, o.mdOut, rep.Seconds)
	return nil
}

// fit chooses the per-rank size: total / np, a multiple of 64 KiB, reduced
// when the disk or the memory cannot hold the run.
func (o *options) fit(work string) ([]string, error) {
	var notes []string
	total := o.total
	var fs syscall.Statfs_t
	if err := syscall.Statfs(work, &fs); err == nil {
		free := int64(fs.Bavail) * int64(fs.Bsize)
		// At the peak: the N-N files, the restic repository (about twice
		// the state after the incremental steps) and its restore.
		if need := 5*total + 2<<30; need > free {
			t := (free - 2<<30) / 5
			notes = append(notes, fmt.Sprintf("total reduced from %s to %s: %s free on the disk", storage.FormatSize(total), storage.FormatSize(t), storage.FormatSize(free)))
			total = t
		}
	}
	if mem := memAvailable(); mem > 0 {
		// Each rank holds its state and, asynchronously, a copy of it.
		if need := 3*total + 2<<30; need > mem {
			t := (mem - 2<<30) / 3
			notes = append(notes, fmt.Sprintf("total reduced from %s to %s: %s of memory available", storage.FormatSize(total), storage.FormatSize(t), storage.FormatSize(mem)))
			total = t
		}
	}
	o.perRank = total / int64(o.np) / workload.PieceSize * workload.PieceSize
	if o.perRank < workload.PieceSize {
		return nil, errors.New("not enough disk or memory for even 64 KiB per rank")
	}
	for _, n := range notes {
		fmt.Println("harness:", n)
	}
	return notes, nil
}

func memAvailable() int64 {
	raw, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemAvailable:"); ok {
			var kib int64
			fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), &kib)
			return kib << 10
		}
	}
	return 0
}

// checkRestored compares the restored N-N files with the full state's
// checksums.
func checkRestored(target string, np int, sums []string) bool {
	if len(sums) != np {
		return false
	}
	found := 0
	ok := true
	filepath.WalkDir(target, func(path string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return nil
		}
		var r int
		if _, err := fmt.Sscanf(e.Name(), "rank-%05d.dat", &r); err != nil || r < 0 || r >= np {
			return nil
		}
		found++
		raw, err := os.ReadFile(path)
		if err != nil || len(raw)%8 != 0 {
			ok = false
			return nil
		}
		if fmt.Sprintf("%016x", workload.ChecksumBytes(raw)) != sums[r] {
			ok = false
		}
		return nil
	})
	return ok && found == np
}

// writeFile writes data to path through a temporary file and a rename.
func writeFile(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
