package main_test

import (
	"bytes"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ckptio/ckptio/mpiio/mpi/mpitest"
	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/cluster/clustertest"
)

// heatRun is heat under mpirun (not ckptrun, which would relaunch it),
// its output readable while it runs.
type heatRun struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
	code int
}

func (h *heatRun) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.out.Write(p)
}

func (h *heatRun) Output() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.out.String()
}

func (h *heatRun) exited() bool {
	select {
	case <-h.done:
		return true
	default:
		return false
	}
}

// wait waits for heat to exit, at most d, and returns its exit status.
func (h *heatRun) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-h.done:
		return h.code
	case <-time.After(d):
		t.Fatalf("heat did not end within %s:\n%s", d, h.Output())
		return 0
	}
}

// startHeat runs heat on 3 ranks as job with the cluster's environment
// plus env.
func startHeat(t *testing.T, c *clustertest.Cluster, job string, env []string, args ...string) *heatRun {
	t.Helper()
	a := mpitest.Args(filepath.Join(c.Bin, "heat"), mpitest.Options{Np: 3, Args: append([]string{"--job", job}, args...)})
	h := &heatRun{cmd: exec.Command(mpitest.Launcher(), a...), done: make(chan struct{})}
	h.cmd.Dir = t.TempDir()
	h.cmd.Env = append(append(c.Env(), mpitest.Env()...), env...)
	h.cmd.Stdout, h.cmd.Stderr = h, h
	h.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := h.cmd.Wait()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			h.code = ee.ExitCode()
		} else if err != nil {
			h.code = -1
		}
		close(h.done)
	}()
	t.Cleanup(func() {
		syscall.Kill(-h.cmd.Process.Pid, syscall.SIGKILL)
		<-h.done
	})
	return h
}

// poll waits until cond holds, failing t after d.
func poll(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	clustertest.Eventually(t, d, cond, func() string { return fmt.Sprintf("%s: not within %s", what, d) })
}

var failedRE = regexp.MustCompile(`checkpoint step \d+ failed; continuing`)

// TestHeatSurvivesManagerOutages: heat on 3 ranks under mpirun, against a
// manager and stores run as processes, with the manager killed (SIGKILL)
// during the run and started again on its address and data directory.
//
//   - An outage of 20 s, shorter than CKPT_RETRY_FOR: heat waits in its
//     checkpoints, every one of them commits once (none lost, none twice),
//     at least one after the manager came back, and the final checksum is
//     the failure-free run's.
//   - An outage longer than CKPT_RETRY_FOR (1s here): a checkpoint fails.
//     With CKPT_ON_FAILURE=continue (the default) heat says so, goes on,
//     later checkpoints commit and the checksum is the same; with
//     CKPT_ON_FAILURE=abort heat exits non-zero naming the cause.
func TestHeatSurvivesManagerOutages(t *testing.T) {
	mpitest.Require(t)
	c := clustertest.NewCluster(t, clustertest.Options{Stores: 3, Extra: []string{"examples/heat"}})
	const checkpoints = 30
	args := []string{"--n", "128", "--steps", "1200", "--checkpoint-every", "40"}
	ref := startHeat(t, c, "ref", nil, args...)
	if code := ref.wait(t, 3*time.Minute); code != 0 {
		t.Fatalf("heat without failure: exit %d\n%s", code, ref.Output())
	}
	want := final(t, ref.Output())

	parent := t // owns the manager restarted in a subtest, which outlives it
	versions := func(t *testing.T, job string) []catalog.VersionInfo {
		vs, err := c.Client().Versions(t.Context(), job)
		if err != nil && !errors.Is(err, catalog.ErrUnknownJob) && !errors.Is(err, catalog.ErrNoVersions) {
			t.Fatalf("versions of %s: %v", job, err)
		}
		return vs
	}
	// outage starts job, kills the manager once the job has committed a
	// version, and returns the run and how many versions it had then.
	outage := func(t *testing.T, job string, env ...string) (*heatRun, int) {
		h := startHeat(t, c, job, env, args...)
		var n0 int
		poll(t, 2*time.Minute, job+" commits a version", func() bool {
			n0 = len(versions(t, job))
			return n0 > 0 || h.exited()
		})
		c.Manager.Kill()
		if h.exited() {
			t.Fatalf("heat ended before the outage began; make it longer:\n%s", h.Output())
		}
		return h, n0
	}
	// committedAfter counts job's versions committed after t0, and checks
	// that their steps are the checkpoints', each once.
	committedAfter := func(t *testing.T, job string, t0 time.Time) int {
		n, last := 0, int64(0)
		for _, v := range versions(t, job) {
			step := v.Meta[catalog.MetaStep]
			s, err := strconv.ParseInt(step, 10, 64)
			if err != nil || s <= last || s%40 != 0 {
				t.Fatalf("version %d of %s has step %q after step %d: each checkpoint's step once, in order", v.Version, job, step, last)
			}
			last = s
			if v.Committed.After(t0) {
				n++
			}
		}
		return n
	}

	t.Run("20s", func(t *testing.T) {
		h, n0 := outage(t, "outage")
		select {
		case <-time.After(20 * time.Second): // the outage's length, not a wait for an event
		case <-h.done:
			t.Fatalf("heat ended during a 20s outage, within CKPT_RETRY_FOR:\n%s", h.Output())
		}
		c.RestartManager(parent)
		back := time.Now()
		if code := h.wait(t, 3*time.Minute); code != 0 {
			t.Fatalf("heat through a 20s manager outage: exit %d\n%s", code, h.Output())
		}
		out := h.Output()
		if got := final(t, out); got != want {
			t.Fatalf("checksum through the outage %s, without it %s\n%s", got, want, out)
		}
		if !strings.Contains(out, "retrying the manager") || failedRE.MatchString(out) {
			t.Fatalf("want the retry said and no checkpoint failed:\n%s", out)
		}
		if vs := versions(t, "outage"); len(vs) != checkpoints {
			t.Fatalf("%d versions after the outage (%d before it), want every one of the %d checkpoints once", len(vs), n0, checkpoints)
		}
		if n := committedAfter(t, "outage", back); n < 1 {
			t.Fatalf("no version committed after the manager came back")
		}
	})

	t.Run("continue", func(t *testing.T) {
		h, _ := outage(t, "cont", "CKPT_RETRY_FOR=1s")
		poll(t, 2*time.Minute, "heat reports a failed checkpoint", func() bool {
			return failedRE.MatchString(h.Output()) || h.exited()
		})
		c.RestartManager(parent)
		back := time.Now()
		if code := h.wait(t, 3*time.Minute); code != 0 {
			t.Fatalf("heat with CKPT_ON_FAILURE=continue through an outage longer than CKPT_RETRY_FOR: exit %d\n%s", code, h.Output())
		}
		out := h.Output()
		if got := final(t, out); got != want {
			t.Fatalf("checksum %s, without failure %s\n%s", got, want, out)
		}
		if !strings.Contains(out, "CKPT_RETRY_FOR=1s") || !strings.Contains(out, "the next checkpoint tries again") {
			t.Fatalf("want the failure reported with its cause and what happens next:\n%s", out)
		}
		if n := committedAfter(t, "cont", back); n < 1 {
			t.Fatalf("no checkpoint committed after the failed one:\n%s", out)
		}
	})

	t.Run("abort", func(t *testing.T) {
		h, _ := outage(t, "abrt", "CKPT_RETRY_FOR=1s", "CKPT_ON_FAILURE=abort")
		code := h.wait(t, 3*time.Minute)
		c.RestartManager(parent)
		out := h.Output()
		if code == 0 || !strings.Contains(out, "unreachable") || !strings.Contains(out, "CKPT_RETRY_FOR=1s") {
			t.Fatalf("heat with CKPT_ON_FAILURE=abort through a long outage: exit %d, want non-zero naming the cause\n%s", code, out)
		}
		if vs := versions(t, "abrt"); len(vs) == 0 || vs[len(vs)-1].Meta[catalog.MetaStep] == "1200" {
			t.Fatalf("versions %+v after the abort: want the job stopped before its last step", vs)
		}
	})
}
