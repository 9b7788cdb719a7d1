//go:build linux

package chaos_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ckptio/ckptio/chaos"
	"github.com/ckptio/ckptio/mpiio/mpi/mpitest"
	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/cluster/clustertest"
	"github.com/ckptio/ckptio/storage/remote"
)

// size is one form of the chaos test.
type size struct {
	name            string
	n, steps, every int           // heat's --n, --steps, --checkpoint-every
	chaos           chaos.Options // Seed is set by the test
	wipeGap         time.Duration // chaos.RunOptions.MinWipeGap
	timeout         time.Duration // for the job under chaos
	maxRestarts     int
	restores        int // versions restored and hashed; 0 = all
}

// sizes: "short" under go test -short, "default" in make test, "long"
// with CKPT_CHAOS=long (make chaos). A checkpoint costs heat far more than
// its steps (30 to 200 ms on 2 cores, with the load), so the job's length
// is set by the number of checkpoints. The manager's kill falls between
// 25 and 50 % of the failure-free run's time (set by the test), so that
// the job under chaos has committed versions and still runs then, however
// fast the machine. In the long form the first of its 3 kills loses its
// data directory, and the manager comes back by recovering the catalog
// from the stores (chaos.Options.ManagerDataLoss); every manager, the
// recovered one too, runs with the harness's --gc-every 0, so no GC can
// collect the blocks of a version the recovery missed before the checks
// below find it missing.
var sizes = map[string]size{
	"short": {name: "short", n: 96, steps: 800, every: 10, maxRestarts: 60, wipeGap: 2 * time.Second, timeout: 3 * time.Minute, restores: 8,
		chaos: chaos.Options{Stores: 5, Length: 10 * time.Second, Every: 700 * time.Millisecond, Down: 1500 * time.Millisecond, Wipe: 0.5, ManagerDown: 2 * time.Second}},
	"default": {name: "default", n: 128, steps: 1000, every: 10, maxRestarts: 100, wipeGap: 2 * time.Second, timeout: 5 * time.Minute, restores: 12,
		chaos: chaos.Options{Stores: 5, Length: 15 * time.Second, Every: 800 * time.Millisecond, Down: 1600 * time.Millisecond, Wipe: 0.5, ManagerDown: 3 * time.Second}},
	"long": {name: "long", n: 512, steps: 6000, every: 20, maxRestarts: 400, wipeGap: 3 * time.Second, timeout: 25 * time.Minute,
		chaos: chaos.Options{Stores: 5, Length: 3 * time.Minute, Every: 1500 * time.Millisecond, Down: 3 * time.Second, Wipe: 0.8,
			ManagerDown: 10 * time.Second, ManagerDownMax: 30 * time.Second, ManagerKills: 3, ManagerDataLoss: true}},
}

func pickSize(t *testing.T) size {
	switch v := os.Getenv("CKPT_CHAOS"); v {
	case "long":
		return sizes["long"]
	case "":
		if testing.Short() {
			return sizes["short"]
		}
		return sizes["default"]
	default:
		if s, ok := sizes[v]; ok {
			return s
		}
		t.Fatalf("CKPT_CHAOS=%q: want short, default or long", v)
	}
	return size{}
}

// seed is CKPT_CHAOS_SEED, else the clock.
func seed(t *testing.T) int64 {
	if v := os.Getenv("CKPT_CHAOS_SEED"); v != "" {
		s, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("CKPT_CHAOS_SEED=%q: want an integer", v)
		}
		return s
	}
	return time.Now().UnixNano()
}

var (
	finalRE    = regexp.MustCompile(`final checksum: ([0-9a-f]{64})`)
	ckptRE     = regexp.MustCompile(`checkpoint step (\d+) version (\d+) sha256 ([0-9a-f]{64})`)
	restoredRE = regexp.MustCompile(`restored \S+ version (\d+) \(step (\d+)\)`)
	attemptRE  = regexp.MustCompile(`ckptrun: attempt \d+/\d+:`)
	failedRE   = regexp.MustCompile(`ckptrun: attempt \d+ failed after`)
	rankErrRE  = regexp.MustCompile(`heat: rank \d+: .*`)
)

// TestChaos runs heat on 4 ranks through ckptrun, checkpointing to 5
// stores with 2 copies of each block, while chaos.Run kills and restarts
// stores (some wiped) and the manager once. It then checks the end state:
// the job finished with the checksum of a failure-free run; the versions
// are numbered 1..N with increasing steps, and every version heat
// reported is there with the failure-free hash of its step; after repair
// every version of both jobs is healthy by ckpt verify and by ckpt verify
// --deep (known issue 1 of docs/availability.md aside, logged); and the
// versions restored give the failure-free grid of their step.
func TestChaos(t *testing.T) {
	mpitest.Require(t)
	sz := pickSize(t)
	sz.chaos.Seed = seed(t)
	t.Logf("chaos test, %s form: seed %d (replay with CKPT_CHAOS_SEED=%d CKPT_CHAOS=%s)", sz.name, sz.chaos.Seed, sz.chaos.Seed, sz.name)
	c := clustertest.NewCluster(t, clustertest.Options{Stores: sz.chaos.Stores, Extra: []string{"examples/heat"}})
	// NewCluster's manager never repairs by itself within a test's time:
	// restart it (same address, same catalog) with the chaos settings.
	c.RestartManager(t, "--dead-after", "2s", "--repair-every", "1s", "--gc-every", "0")
	c.WaitAlive(t, sz.chaos.Stores)
	// Env is read once, before the chaos: the manager keeps its address.
	env := append(c.Env(), mpitest.Env()...)
	env = append(env, "CKPT_REPLICAS=2")
	heatArgs := []string{filepath.Join(c.Bin, "heat"), "--n", fmt.Sprint(sz.n), "--steps", fmt.Sprint(sz.steps), "--checkpoint-every", fmt.Sprint(sz.every)}

	// The failure-free run, job "ref", on the same cluster before the
	// chaos: its final checksum, and the grid's hash at every checkpoint
	// step. Its versions then live through the chaos too.
	t0 := time.Now()
	refCtx, refCancel := context.WithTimeout(context.Background(), sz.timeout)
	refOut, refCode := runJob(refCtx, t, c, env, "ref", 0, heatArgs)
	refCancel()
	if refCode != 0 {
		t.Fatalf("failure-free run: exit %d\n%s", refCode, refOut)
	}
	want := lastFinal(refOut)
	stepSum := map[int64]string{}
	for _, m := range ckptRE.FindAllStringSubmatch(refOut, -1) {
		stepSum[atoi(m[1])] = m[3]
	}
	if want == "" || len(stepSum) != sz.steps/sz.every {
		t.Fatalf("failure-free run: final %q, %d checkpoint lines, want %d\n%s", want, len(stepSum), sz.steps/sz.every, refOut)
	}
	refTook := time.Since(t0)
	t.Logf("failure-free run: %d versions in %s, final checksum %s", len(stepSum), refTook.Round(time.Millisecond), want)
	sz.chaos.ManagerFrom, sz.chaos.ManagerTo = refTook/4, refTook/2
	plan, err := chaos.Plan(sz.chaos)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("chaos plan: %d events over %s; the manager dies between %s and %s (25 to 50 %% of the failure-free run)",
		len(plan), sz.chaos.Length, sz.chaos.ManagerFrom.Round(time.Millisecond), sz.chaos.ManagerTo.Round(time.Millisecond))

	// The job under chaos. The chaos plays in this goroutine (it may fail
	// the test); the job runs in its own, and ends the chaos when it ends.
	ctx, cancel := context.WithTimeout(context.Background(), sz.timeout)
	defer cancel()
	chaosCtx, stopChaos := context.WithCancel(ctx)
	defer stopChaos()
	var out string
	var code int
	jobDone := make(chan struct{})
	t1 := time.Now()
	go func() {
		defer close(jobDone)
		defer stopChaos()
		out, code = runJob(ctx, t, c, env, "heat", sz.maxRestarts, heatArgs)
	}()
	fleet := newClusterFleet(t, c)
	stats, err := chaos.Run(chaosCtx, fleet, plan, chaos.RunOptions{MinWipeGap: sz.wipeGap, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	<-jobDone
	took := time.Since(t1)
	if ctx.Err() != nil {
		t.Fatalf("the job did not finish within %s (seed %d)\n%s", sz.timeout, sz.chaos.Seed, out)
	}
	if code != 0 {
		t.Fatalf("ckptrun exit %d (seed %d)\n%s", code, sz.chaos.Seed, out)
	}
	if got := lastFinal(out); got != want {
		t.Fatalf("final checksum %s, failure-free %s (seed %d)\n%s", got, want, sz.chaos.Seed, out)
	}
	if sz.chaos.ManagerDown > 0 && stats.ManagerKills == 0 {
		t.Errorf("the job ended after %s, before the manager's kill: make the job longer", took.Round(time.Millisecond))
	}
	if sz.chaos.ManagerDataLoss && stats.Recoveries == 0 {
		t.Errorf("the manager's data loss and recovery planned did not happen (%s)", stats)
	}
	attempts := len(attemptRE.FindAllString(out, -1))
	restored := len(restoredRE.FindAllString(out, -1))
	why := fleet.annotate(failures(out))

	// Every store is up again; wait until the manager sees each one alive
	// (a wiped store's old ID stays dead).
	fleet.waitAllAlive(t)

	// Versions: numbered 1..N at commit with increasing steps (a relaunch
	// restores the latest), and every version heat reported is there with
	// its step.
	vs, err := c.Client().Versions(t.Context(), "heat")
	if err != nil {
		t.Fatal(err)
	}
	stepOf := map[int64]int64{}
	for i, v := range vs {
		step := atoi(v.Meta["step"])
		stepOf[v.Version] = step
		if v.Version != int64(i+1) {
			t.Errorf("version %d at position %d: versions are not 1..%d", v.Version, i, len(vs))
		}
		if i > 0 && step <= stepOf[vs[i-1].Version] {
			t.Errorf("version %d has step %d, version %d step %d: steps do not increase", v.Version, step, vs[i-1].Version, stepOf[vs[i-1].Version])
		}
		if stepSum[step] == "" {
			t.Errorf("version %d has step %d, which is no checkpoint step", v.Version, step)
		}
	}
	for _, m := range ckptRE.FindAllStringSubmatch(out, -1) {
		step, v, sum := atoi(m[1]), atoi(m[2]), m[3]
		if s, ok := stepOf[v]; !ok || s != step {
			t.Errorf("heat reported version %d at step %d; the catalog has it at step %d (present %v)", v, step, s, ok)
		}
		if sum != stepSum[step] {
			t.Errorf("heat reported sha256 %s at step %d (version %d), the failure-free run %s", sum, step, v, stepSum[step])
		}
	}
	// The recovery brought back every version committed before the loss
	// (RecoverManager checked each one); the catalog lists at least as
	// many after the run.
	for job, before := range fleet.before {
		after := vs
		if job != "heat" {
			if after, err = c.Client().Versions(t.Context(), job); err != nil {
				t.Fatal(err)
			}
		}
		if len(after) < len(before) {
			t.Errorf("%s: %d versions listed after the run, %d before the manager lost its data", job, len(after), len(before))
		}
	}
	if t.Failed() {
		t.Fatalf("seed %d: job output:\n%s", sz.chaos.Seed, out)
	}

	// Repair until every version of both jobs is healthy, by the
	// manager's count and by reading every copy.
	t2 := time.Now()
	passes := 0
	deadline := time.Now().Add(90 * time.Second)
	var known map[string]map[int64]knownCase
	for {
		passes++
		bad := ""
		if repOut, repErr, code := c.Run(t, t.TempDir(), nil, "ckpt", "repair"); code != 0 {
			bad = fmt.Sprintf("ckpt repair: exit %d\n%s%s", code, repOut, repErr)
		}
		known = map[string]map[int64]knownCase{}
		failed := map[string][]int64{}
		for _, job := range []string{"ref", "heat"} {
			if bad == "" {
				known[job], failed[job], bad = fleet.checkJob(t, job)
			}
		}
		if bad == "" {
			break
		}
		if time.Now().After(deadline) {
			for _, job := range []string{"ref", "heat"} {
				fleet.describe(t, job, failed[job])
			}
			t.Fatalf("not healthy %s after the chaos (seed %d): %s\nchaos: %s\njob output:\n%s", time.Since(t2).Round(time.Second), sz.chaos.Seed, bad, stats, out)
		}
		time.Sleep(time.Second)
	}
	nKnown, nUnreadable := 0, 0
	for _, job := range []string{"ref", "heat"} {
		if len(known[job]) == 0 {
			continue
		}
		var versions, unreadable []int64
		for v, k := range known[job] {
			versions = append(versions, v)
			if k.unreadable {
				unreadable = append(unreadable, v)
			}
		}
		slices.Sort(versions)
		slices.Sort(unreadable)
		nKnown += len(versions)
		nUnreadable += len(unreadable)
		fleet.describe(t, job, versions[:1])
		t.Logf("known issue 1 (docs/availability.md, Known issues): %d versions of %s list a block on fewer than 2 alive stores "+
			"although at least 2 running stores hold it; ckpt verify counts them healthy and ckpt repair leaves them, "+
			"ckpt verify --deep does not; %d of them list no alive store for a block and cannot be restored: %v; "+
			"all: %v (a failure unless CKPT_CHAOS_STRICT=0)", len(versions), job, len(unreadable), unreadable, versions)
	}

	// The versions restore to the grid of their step, but for the ones
	// known issue 1 made unreadable.
	to := t.TempDir()
	picked := sample(vs, sz.restores)
	skipped := 0
	for _, v := range picked {
		if known["heat"][v.Version].unreadable {
			skipped++
			continue
		}
		dir := filepath.Join(to, fmt.Sprint(v.Version))
		if _, errOut, code := c.Run(t, to, nil, "ckpt", "restore", "heat", "--version", fmt.Sprint(v.Version), "--to", dir); code != 0 {
			t.Fatalf("restore version %d: %s", v.Version, errOut)
		}
		if got := gridSum(t, dir, 4); got != stepSum[stepOf[v.Version]] {
			t.Errorf("version %d (step %d) restores to a grid with sha256 %s, the failure-free run had %s", v.Version, stepOf[v.Version], got, stepSum[stepOf[v.Version]])
		}
	}

	t.Logf(`chaos summary (%s form, seed %d):
  chaos:    %s
  recovery: %s
  job:      %d attempts (%d restored a version) in %s; final checksum equals the failure-free run's
  failures: %s
  versions: %d of heat committed (steps %d to %d), %d of ref (failure-free)
  verify:   after %d repair passes (%s), every version of both jobs healthy and no copy unreadable or corrupt,
            but for known issue 1: %d versions listed below target, %d of them unreadable
  restore:  %d of %d versions of heat restored, each to the failure-free grid of its step (%d skipped: known issue 1)`,
		sz.name, sz.chaos.Seed, stats, recoveries(fleet.losses), attempts, restored, took.Round(time.Second), why,
		len(vs), stepOf[1], stepOf[int64(len(vs))], len(stepSum),
		passes, time.Since(t2).Round(time.Millisecond), nKnown, nUnreadable,
		len(picked)-skipped, len(vs), skipped)
}

func recoveries(losses []string) string {
	if len(losses) == 0 {
		return "none (the manager's data directory was not lost)"
	}
	return strings.Join(losses, "; ")
}

// failures sums up why the attempts in ckptrun's output failed, by the
// first error a rank printed in each: "3 manager unreachable, 1 other
// (heat: rank 2: ...)".
func failures(out string) string {
	counts := map[string]int{}
	first := ""
	for _, part := range failedRE.Split(out, -1)[:len(failedRE.FindAllString(out, -1))] {
		reason := "no error printed"
		if m := rankErrRE.FindAllString(part, -1); len(m) > 0 {
			switch line := m[0]; {
			case strings.Contains(line, "manager at ") && strings.Contains(line, "unreachable"):
				reason = "manager unreachable"
			default:
				reason = "other"
				if first == "" {
					first = line
				}
			}
		}
		counts[reason]++
	}
	if len(counts) == 0 {
		return "none"
	}
	var parts []string
	for _, r := range []string{"manager unreachable", "other", "no error printed"} {
		if counts[r] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[r], r))
		}
	}
	if first != "" {
		parts = append(parts, "first other: "+first)
	}
	return strings.Join(parts, ", ")
}

var (
	storeIDRE   = regexp.MustCompile(`st-[0-9a-f]{12}`)
	recoveredRE = regexp.MustCompile(`recovered the catalog from (\d+) of (\d+) stores: (\d+) jobs, (\d+) versions`)
)

// annotate follows every store ID in s with the store it names.
func (f *clusterFleet) annotate(s string) string {
	return storeIDRE.ReplaceAllStringFunc(s, func(id string) string {
		if name, ok := f.names[id]; ok {
			return id + " (" + name + ")"
		}
		return id
	})
}

// sample returns n of vs spread evenly, the first and last among them;
// all of them when n is 0 or at least len(vs).
func sample(vs []catalog.VersionInfo, n int) []catalog.VersionInfo {
	if n <= 0 || n >= len(vs) {
		return vs
	}
	if n == 1 {
		return vs[len(vs)-1:]
	}
	out := make([]catalog.VersionInfo, 0, n)
	for i := 0; i < n; i++ {
		out = append(out, vs[i*(len(vs)-1)/(n-1)])
	}
	return out
}

// runJob runs heat as job through ckptrun on 4 ranks and returns its
// stdout and stderr together and its exit status. ctx ending kills the
// whole process group (ckptrun, mpirun, the ranks).
func runJob(ctx context.Context, t *testing.T, c *clustertest.Cluster, env []string, job string, maxRestarts int, heat []string) (string, int) {
	args := append([]string{"--job", job, "--max-restarts", fmt.Sprint(maxRestarts), "-np", "4"}, heat...)
	cmd := exec.CommandContext(ctx, filepath.Join(c.Bin, "ckptrun"), args...)
	cmd.Dir = t.TempDir()
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out.String(), 0
	case errors.As(err, &ee):
		return out.String(), ee.ExitCode()
	}
	return out.String() + "\n" + err.Error(), -1
}

// versionCheck is one version as ckpt verify --json prints it.
type versionCheck struct {
	catalog.VersionHealth
	BadCopies []json.RawMessage `json:"bad_copies"`
}

// verify runs ckpt verify JOB --json, with --deep if deep, and returns its
// versions, and what went wrong if it did not exit 0.
func verify(t *testing.T, c *clustertest.Cluster, job string, deep bool) ([]versionCheck, string) {
	args := []string{"verify", job, "--json"}
	if deep {
		args = append(args, "--deep")
	}
	out, errOut, code := c.Run(t, t.TempDir(), nil, "ckpt", args...)
	var doc struct {
		Versions []versionCheck `json:"versions"`
	}
	err := json.Unmarshal([]byte(out), &doc)
	checks := doc.Versions
	if err != nil || len(checks) == 0 {
		return nil, fmt.Sprintf("ckpt %s: exit %d, %d versions (%v)\n%s%s", strings.Join(args, " "), code, len(checks), err, out, errOut)
	}
	if code != 0 {
		return checks, fmt.Sprintf("ckpt %s: exit %d\n%s", strings.Join(args, " "), code, errOut)
	}
	return checks, ""
}

// knownCase is a version in the state of known issue 1.
type knownCase struct {
	unreadable bool // a block is listed on no alive store
}

// checkJob returns "" when every version of job is healthy both by the
// manager's count (ckpt verify) and by reading every listed copy (ckpt
// verify --deep), with no copy unreadable or corrupt; else what is wrong
// and the versions at fault. A version the manager counts healthy that
// --deep does not, because a block is listed on fewer alive stores than
// its target while at least that many running stores hold it, is known
// issue 1 (docs/availability.md, now fixed): it is an error, unless
// CKPT_CHAOS_STRICT=0, which returns it in known instead (the old,
// lenient counting).
func (f *clusterFleet) checkJob(t *testing.T, job string) (known map[int64]knownCase, failed []int64, bad string) {
	plain, plainErr := verify(t, f.c, job, false)
	deep, deepErr := verify(t, f.c, job, true)
	healthy := map[int64]bool{}
	var problems []string
	for _, v := range plain {
		healthy[v.Version] = v.State == catalog.StateHealthy
		if v.State != catalog.StateHealthy {
			problems = append(problems, fmt.Sprintf("version %d %s (%d degraded, %d lost blocks)", v.Version, v.State, v.DegradedBlocks, v.LostBlocks))
			failed = append(failed, v.Version)
		}
	}
	known = map[int64]knownCase{}
	strict := os.Getenv("CKPT_CHAOS_STRICT") != "0"
	for _, v := range deep {
		if v.State == catalog.StateHealthy && len(v.BadCopies) == 0 {
			continue
		}
		if healthy[v.Version] && len(v.BadCopies) == 0 && !strict {
			if k, ok := f.underListed(t, job, v.Version, v.Target); ok {
				known[v.Version] = k
				continue
			}
		}
		problems = append(problems, fmt.Sprintf("--deep: version %d %s (%d degraded, %d lost blocks, %d unreadable or corrupt copies)",
			v.Version, v.State, v.DegradedBlocks, v.LostBlocks, len(v.BadCopies)))
		failed = append(failed, v.Version)
	}
	if plainErr != "" && len(failed) == 0 || deepErr != "" && len(failed) == 0 && len(known) == 0 {
		problems = append(problems, plainErr, deepErr)
	}
	if len(problems) > 0 {
		slices.Sort(failed)
		return known, slices.Compact(failed), fmt.Sprintf("job %s: %s", job, strings.Join(problems, "; "))
	}
	return known, nil, ""
}

// underListed reports whether job's version v is in the state of known
// issue 1: some blocks are listed on fewer than target alive stores, and
// each of them is held by at least target running stores.
func (f *clusterFleet) underListed(t *testing.T, job string, v int64, target int) (knownCase, bool) {
	stores, err := f.c.Client().Stores(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	alive := map[string]bool{}
	for _, s := range stores {
		alive[s.ID] = s.Alive
	}
	m, err := f.c.Client().Manifest(t.Context(), job, v)
	if err != nil {
		t.Fatal(err)
	}
	var k knownCase
	rows := 0
	for _, b := range m.Blocks {
		live := 0
		for _, id := range b.Stores {
			if alive[id] {
				live++
			}
		}
		if b.Length == 0 || live >= target {
			continue
		}
		rows++
		if held := f.holders(t, b.Key); len(held) < target {
			return k, false
		}
		if live == 0 {
			k.unreadable = true
		}
	}
	return k, rows > 0
}

// gridSum is the SHA-256 of the temperature files of ranks 0..ranks-1
// under dir, in rank order: what heat prints for the grid.
func gridSum(t *testing.T, dir string, ranks int) string {
	h := sha256.New()
	for r := 0; r < ranks; r++ {
		b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("rank-%05d", r), "temperature"))
		if err != nil {
			t.Fatal(err)
		}
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func lastFinal(out string) string {
	m := finalRE.FindAllStringSubmatch(out, -1)
	if len(m) == 0 {
		return ""
	}
	return m[len(m)-1][1]
}

func atoi(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

// clusterFleet is a chaos.Fleet over a clustertest cluster. Run calls it
// from the test's goroutine, so it may fail the test. It names every store
// ID it has seen, for the diagnosis of a failure.
type clusterFleet struct {
	t     *testing.T
	c     *clustertest.Cluster
	start time.Time
	names map[string]string // store ID -> "store 2", "store 2 until its wipe at 8.9s"
	// first is the manager as the chaos found it (with the harness's
	// flags, --gc-every 0 among them); every restart starts its command
	// again on its address, with --data set to data, the directory in use.
	first *clustertest.Proc
	data  string
	// before: every job's versions listed just before the manager lost its
	// data; losses: what each recovery brought back, for the summary.
	before map[string][]catalog.VersionInfo
	losses []string
}

func newClusterFleet(t *testing.T, c *clustertest.Cluster) *clusterFleet {
	f := &clusterFleet{t: t, c: c, start: time.Now(), names: map[string]string{}, first: c.Manager, data: c.Manager.Flag("data")}
	for i := range c.Stores {
		f.name(i)
	}
	return f
}

// name records the ID of store i, read from its directory.
func (f *clusterFleet) name(i int) string {
	b, _ := os.ReadFile(filepath.Join(f.c.Stores[i].Flag("dir"), "STORE"))
	for _, line := range strings.Split(string(b), "\n") {
		if id, ok := strings.CutPrefix(line, "id "); ok {
			f.names[id] = fmt.Sprintf("store %d", i)
			return id
		}
	}
	return ""
}

func (f *clusterFleet) KillStore(i int) error {
	f.c.Stores[i].Kill()
	return nil
}

func (f *clusterFleet) WipeStore(i int) error {
	id := f.name(i)
	f.names[id] = fmt.Sprintf("store %d until its wipe at %s", i, time.Since(f.start).Round(time.Millisecond))
	return os.RemoveAll(f.c.Stores[i].Flag("dir"))
}

func (f *clusterFleet) StartStore(i int) error {
	f.c.RestartStore(f.t, i)
	if _, ok := f.names[f.name(i)]; !ok {
		return fmt.Errorf("store %d started without an ID in its directory", i)
	}
	return nil
}

func (f *clusterFleet) KillManager() error {
	f.c.Manager.Kill()
	return nil
}

func (f *clusterFleet) StartManager() error {
	f.c.Manager = f.first.Restart(f.t, true, "--data", f.data)
	return nil
}

// LoseManager lists every job's versions, then kills the manager and
// removes its data directory. A commit can be in the catalog, and so in
// the list, before its catalog records are on the stores (the manager
// writes them before it answers the commit): RecoverManager allows the
// last version of a job listed to be missing for that reason only.
func (f *clusterFleet) LoseManager() error {
	ctx, cancel := context.WithTimeout(f.t.Context(), 30*time.Second)
	defer cancel()
	mc := f.c.Client()
	jobs, err := mc.Jobs(ctx)
	if err != nil {
		return fmt.Errorf("listing the jobs before losing the manager: %w", err)
	}
	f.before = map[string][]catalog.VersionInfo{}
	for _, j := range jobs {
		vs, err := mc.Versions(ctx, j.Name)
		if err != nil && !errors.Is(err, catalog.ErrNoVersions) {
			return fmt.Errorf("listing %s's versions before losing the manager: %w", j.Name, err)
		}
		f.before[j.Name] = vs
	}
	f.c.Manager.Kill()
	return os.RemoveAll(f.data)
}

// RecoverManager starts the manager on its address and a new directory
// with --recover from every store's current address. It then checks, and
// fails the test otherwise, that the recovery report read every store and
// names no version without a record, and that every version listed before
// the loss is back with the same VersionInfo (Protected and
// ManifestBytes aside, see below), but for the last one of a job
// when it was committed and not yet answered (LoseManager).
func (f *clusterFleet) RecoverManager() error {
	var addrs []string
	for _, p := range f.c.Stores {
		addrs = append(addrs, p.Addr)
	}
	f.data = filepath.Join(f.c.Dir, fmt.Sprintf("manager-recovered-%d", len(f.losses)+1))
	at := time.Since(f.start).Round(time.Millisecond)
	f.c.Manager = f.first.Restart(f.t, true, "--data", f.data, "--recover", "--recover-from", strings.Join(addrs, ","))
	var report []string
	for _, line := range strings.Split(f.c.Manager.Output(), "\n") {
		if strings.HasPrefix(line, "ckpt-manager: recover") {
			report = append(report, line)
		}
	}
	f.t.Logf("chaos %s: recovery report:\n  %s", at, strings.Join(report, "\n  "))
	sum := recoveredRE.FindStringSubmatch(strings.Join(report, "\n"))
	if sum == nil || sum[1] != sum[2] || len(report) != 1 {
		f.t.Errorf("the recovery did not read every store, or names a version without a record, or an unreadable record:\n%s", strings.Join(report, "\n"))
	}
	ctx, cancel := context.WithTimeout(f.t.Context(), 30*time.Second)
	defer cancel()
	var counts, notes []string
	for _, job := range slices.Sorted(maps.Keys(f.before)) {
		before := f.before[job]
		after, err := f.c.Client().Versions(ctx, job)
		if err != nil && !errors.Is(err, catalog.ErrNoVersions) && !errors.Is(err, catalog.ErrUnknownJob) {
			return fmt.Errorf("listing %s's versions after the recovery: %w", job, err)
		}
		// Protected is computed from the stores alive now, and a repair
		// running as the manager died may have rewritten a manifest (so
		// its size) without its record yet: compare the rest. The
		// manifests are checked later, by verify --deep and the restores.
		got := map[int64]catalog.VersionInfo{}
		for _, v := range after {
			v.Protected, v.ManifestBytes = false, 0
			got[v.Version] = v
		}
		back := 0
		for i, v := range before {
			v.Protected, v.ManifestBytes = false, 0
			switch g, ok := got[v.Version]; {
			case ok && reflect.DeepEqual(g, v):
				back++
			case !ok && i == len(before)-1:
				notes = append(notes, fmt.Sprintf("%s version %d (step %s), the last listed, not recovered: committed as the manager died, before its records were written and the commit answered",
					job, v.Version, v.Meta["step"]))
			case !ok:
				f.t.Errorf("%s version %d (step %s), committed before the manager lost its data, is not recovered", job, v.Version, v.Meta["step"])
			default:
				f.t.Errorf("%s version %d recovered as\n%+v\nlisted before the loss as\n%+v", job, v.Version, g, v)
			}
		}
		if len(after) < len(before)-1 {
			f.t.Errorf("%s: %d versions listed after the recovery, %d before the loss", job, len(after), len(before))
		}
		counts = append(counts, fmt.Sprintf("%d of %d versions of %s", back, len(before), job))
	}
	read := "?"
	if sum != nil {
		read = sum[1] + " of " + sum[2]
	}
	f.losses = append(f.losses, fmt.Sprintf("recovered at %s from %s stores: %s back%s", at, read,
		strings.Join(counts, ", "), strings.Join(append([]string{""}, notes...), "; ")))
	return nil
}

// describe logs, for each of job's versions, when it was committed (from
// the start of the chaos) and its blocks listed on fewer than their
// target of alive stores, with the stores named.
func (f *clusterFleet) describe(t *testing.T, job string, versions []int64) {
	mc := f.c.Client()
	stores, err := mc.Stores(t.Context())
	if err != nil {
		t.Logf("describe: %v", err)
		return
	}
	alive := map[string]bool{}
	for _, s := range stores {
		alive[s.ID] = s.Alive
	}
	for i, v := range versions {
		if i == 20 {
			t.Logf("%s: ... and %d more versions", job, len(versions)-i)
			break
		}
		vi, err := mc.Version(t.Context(), job, v)
		if err != nil {
			t.Logf("describe %s version %d: %v", job, v, err)
			continue
		}
		m, err := mc.Manifest(t.Context(), job, v)
		if err != nil {
			t.Logf("describe %s version %d: %v", job, v, err)
			continue
		}
		var rows []string
		for _, b := range m.Blocks {
			live := 0
			var where []string
			for _, id := range b.Stores {
				if alive[id] {
					live++
				}
				where = append(where, fmt.Sprintf("%s (%s, alive %v)", id, f.names[id], alive[id]))
			}
			if b.Length > 0 && live < vi.Replicas {
				rows = append(rows, fmt.Sprintf("  %s rank %d offset %d key %s listed on %s; held now by stores %v",
					b.Object, b.Rank, b.Offset, b.Key.Short(), strings.Join(where, ", "), f.holders(t, b.Key)))
			}
		}
		if len(rows) == 0 {
			rows = append(rows, "  (every row lists enough alive stores: they do not all hold the block)")
		}
		t.Logf("%s version %d (step %s), committed %s after the chaos began, %d rows below target:\n%s",
			job, v, vi.Meta["step"], vi.Committed.Sub(f.start).Round(time.Millisecond), len(rows), strings.Join(rows, "\n"))
	}
}

// holders returns the indices of the running stores that hold key; a
// store that does not answer is left out.
func (f *clusterFleet) holders(t *testing.T, key storage.Hash) []int {
	var out []int
	for i, p := range f.c.Stores {
		st, err := remote.Dial(t.Context(), p.Addr, f.c.Token, remote.Options{})
		if err != nil {
			continue
		}
		has, err := st.Has(t.Context(), []storage.Hash{key})
		st.Close()
		if err == nil && has[0] {
			out = append(out, i)
		}
	}
	return out
}

// SafeToWipe asks the manager for the health of every job: no version
// lost, so every block has a copy on a store that answered. A store that
// is down does not answer (dead, or killed and not yet seen dead), so
// wiping it then loses no block.
func (f *clusterFleet) SafeToWipe(ctx context.Context) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	mc := f.c.Client()
	jobs, err := mc.Jobs(ctx)
	if err != nil {
		return false, err
	}
	for _, j := range jobs {
		h, err := mc.Health(ctx, j.Name, 0)
		if errors.Is(err, catalog.ErrNoVersions) || errors.Is(err, catalog.ErrUnknownJob) {
			continue
		}
		if err != nil {
			return false, err
		}
		for _, v := range h.Versions {
			if v.LostBlocks > 0 {
				var away []string
				for _, st := range h.Stores {
					if st.Error != "" {
						away = append(away, st.ID+" (no answer)")
					}
				}
				for _, st := range h.Skipped {
					away = append(away, st.ID+" (dead)")
				}
				return false, fmt.Errorf("%s version %d has %d blocks with no copy on the stores that answer; away: %s",
					j.Name, v.Version, v.LostBlocks, strings.Join(away, ", "))
			}
		}
	}
	return true, nil
}

// waitAllAlive waits until the manager lists every running store (by its
// address) alive.
func (f *clusterFleet) waitAllAlive(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		list, err := f.c.Client().Stores(t.Context())
		alive := map[string]bool{}
		for _, s := range list {
			if s.Alive {
				alive[s.Addr] = true
			}
		}
		var missing []string
		for i, p := range f.c.Stores {
			if !alive[p.Addr] {
				missing = append(missing, fmt.Sprintf("store %d (%s)", i, p.Addr))
			}
		}
		sort.Strings(missing)
		if err == nil && len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the chaos, not alive within 30s: %v (err %v)", missing, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
