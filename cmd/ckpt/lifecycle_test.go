package main_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ckptio/ckptio/cmd/internal/cli"
	"github.com/ckptio/ckptio/storage/cluster"
	"github.com/ckptio/ckptio/storage/cluster/clustertest"
)

// localCkpt runs the real ckpt against the embedded local cluster under
// home (CKPT_MANAGER unset) and stops that cluster when the test ends.
func localCkpt(t *testing.T, home string) func(args ...string) (string, string, int) {
	t.Helper()
	bin := clustertest.Build(t)
	t.Cleanup(func() {
		if err := cluster.Down(home); err != nil {
			t.Errorf("cluster.Down: %v", err)
		}
	})
	return func(args ...string) (string, string, int) {
		t.Helper()
		return runIn(t, exec.Command(filepath.Join(bin, "ckpt"), args...), home)
	}
}

func localEnv(home string) []string {
	env := []string{"CKPT_HOME=" + home}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CKPT_") {
			env = append(env, kv)
		}
	}
	return env
}

func runIn(t *testing.T, cmd *exec.Cmd, home string) (string, string, int) {
	t.Helper()
	cmd.Env = localEnv(home)
	cmd.Dir = t.TempDir()
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return out.String(), errb.String(), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), 0
}

func recordedPids(t *testing.T, home string) []int {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(home, "cluster.json"))
	if err != nil {
		t.Fatal(err)
	}
	var info struct{ Pids []int }
	if err := json.Unmarshal(raw, &info); err != nil {
		t.Fatalf("cluster.json: %v: %s", err, raw)
	}
	return info.Pids
}

// waitFile polls for path to exist, failing the test after 30s.
func waitFile(t *testing.T, path string) {
	t.Helper()
	clustertest.Eventually(t, 30*time.Second, func() bool {
		_, err := os.Stat(path)
		return err == nil
	}, func() string { return fmt.Sprintf("%s did not appear within 30s", path) })
}

// TestReadOnlyCommandsStartNoCluster: in an empty CKPT_HOME, commands that
// only read say there is no local cluster and exit 4, and start nothing.
func TestReadOnlyCommandsStartNoCluster(t *testing.T) {
	home := filepath.Join(t.TempDir(), "home")
	ckpt := localCkpt(t, home)
	for _, args := range [][]string{
		{"versions", "j"}, {"ls", "j"}, {"stores"}, {"jobs"}, {"diff", "j", "1", "2"},
		{"verify", "j"}, {"export", "j", "--manifest", filepath.Join(t.TempDir(), "m.arrow")},
		{"get", "j", "--to", t.TempDir()},
	} {
		_, errOut, code := ckpt(args...)
		if code != cli.ExitUnreachable || !strings.Contains(errOut, "no local cluster under "+home+": 'ckpt cluster up' starts one, or set CKPT_MANAGER") {
			t.Errorf("ckpt %v: exit %d, stderr %q; want %d and 'no local cluster'", args, code, errOut, cli.ExitUnreachable)
		}
	}
	out, errOut, code := ckpt("cluster", "status")
	if code != cli.ExitUnreachable || !strings.Contains(out, "not running") || !strings.Contains(errOut, "no local cluster under "+home) {
		t.Errorf("cluster status: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(home, "manager")); !os.IsNotExist(err) {
		t.Errorf("a read-only command made %s/manager (err %v)", home, err)
	}
	if _, _, err := cluster.Status(t.Context(), home); err != cluster.ErrNone {
		t.Errorf("cluster.Status after read-only commands: %v, want ErrNone", err)
	}
	// A command that writes still starts the cluster on demand.
	work := t.TempDir()
	writeRandom(t, filepath.Join(work, "f"), 1000, 1)
	put := exec.Command(filepath.Join(clustertest.Build(t), "ckpt"), "put", "j", "f")
	put.Env, put.Dir = localEnv(home), work
	if out, err := put.CombinedOutput(); err != nil || !strings.Contains(string(out), "starting ckpt-manager") {
		t.Fatalf("put in an empty home: %v: %s", err, out)
	}
	if _, errOut, code := ckpt("versions", "j"); code != 0 {
		t.Fatalf("versions after put: exit %d: %s", code, errOut)
	}
}

// TestLocalClusterLifecycle drives the local cluster's daemons (real
// processes started by the real ckpt) through the ways they go wrong: a
// cluster of 2 stores is reused by commands that default to 4; a closed
// pipe kills ckpt but not the daemons; SIGKILLed daemons with their pid
// files and lock left behind are reported down and recovered; a cluster
// without cluster.json is adopted; cluster down without it stops them; an orphan manager holding catalog.db's
// lock, with no record at all, is found and replaced.
func TestLocalClusterLifecycle(t *testing.T) {
	home := filepath.Join(t.TempDir(), "home")
	ckpt := localCkpt(t, home)
	work := t.TempDir()
	data := writeRandom(t, filepath.Join(work, "f"), 300<<10, 7)
	put := func() {
		t.Helper()
		cmd := exec.Command(filepath.Join(clustertest.Build(t), "ckpt"), "put", "j", "f")
		cmd.Env, cmd.Dir = localEnv(home), work
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("put: %v: %s", err, out)
		}
	}
	getSame := func() {
		t.Helper()
		to := t.TempDir()
		if _, errOut, code := ckpt("get", "j", "--to", to); code != 0 {
			t.Fatalf("get: exit %d: %s", code, errOut)
		}
		if got, err := os.ReadFile(filepath.Join(to, "f")); err != nil || string(got) != string(data) {
			t.Fatalf("get returned other bytes (err %v)", err)
		}
	}
	if _, errOut, code := ckpt("cluster", "up", "--stores", "2", "--quota", "64MiB"); code != 0 {
		t.Fatalf("cluster up: %s", errOut)
	}
	pids := recordedPids(t, home)
	if len(pids) != 3 {
		t.Fatalf("cluster.json pids %v, want a manager and 2 stores", pids)
	}

	// The next command, which would start 4 stores, reuses the 2.
	put()
	if got := recordedPids(t, home); !equalInts(got, pids) {
		t.Fatalf("put replaced the cluster: pids %v, then %v", pids, got)
	}
	if _, errOut, code := ckpt("cluster", "status"); code != 0 {
		t.Fatalf("status after put: exit %d: %s", code, errOut)
	}

	// ckpt killed by SIGPIPE (a reader that went away, as in
	// 'ckpt versions j | head -1') leaves the daemons serving.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	cmd := exec.Command(filepath.Join(clustertest.Build(t), "ckpt"), "versions", "j")
	cmd.Env, cmd.Stdout, cmd.Stderr = localEnv(home), w, w
	err = cmd.Run()
	w.Close()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGPIPE {
		t.Fatalf("ckpt versions into a closed pipe: %v, want killed by SIGPIPE", err)
	}
	for _, pid := range pids {
		if !cluster.Alive(home, pid) {
			t.Fatalf("daemon %d died with a ckpt killed by SIGPIPE", pid)
		}
	}

	// SIGKILL every daemon: pid files, cluster.json and the lock file stay.
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	waitGone(t, home, pids...)
	if err := os.WriteFile(filepath.Join(home, "cluster.lock"), []byte("999999\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := ckpt("cluster", "status")
	if code != cli.ExitUnreachable || !strings.Contains(out, "not running") {
		t.Fatalf("status with killed daemons: exit %d, %q %q; want %d, not running", code, out, errOut, cli.ExitUnreachable)
	}
	if _, errOut, code := ckpt("cluster", "up"); code != 0 {
		t.Fatalf("cluster up after SIGKILL: exit %d: %s", code, errOut)
	}
	pids = recordedPids(t, home)
	if len(pids) != 3 {
		t.Fatalf("recovered cluster has pids %v, want its 2 stores back", pids)
	}
	getSame()

	// A whole cluster whose cluster.json is gone is adopted, not restarted.
	if err := os.Remove(filepath.Join(home, "cluster.json")); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := ckpt("cluster", "status"); code != 0 {
		t.Fatalf("status of a running cluster without cluster.json: exit %d: %s", code, errOut)
	}
	if _, errOut, code := ckpt("cluster", "up"); code != 0 || !strings.Contains(errOut, "adopting") {
		t.Fatalf("cluster up without cluster.json: exit %d: %s", code, errOut)
	}
	if got := recordedPids(t, home); !equalInts(got, pids) {
		t.Fatalf("cluster up without cluster.json replaced the daemons: %v, then %v", pids, got)
	}

	// cluster down with cluster.json gone stops every daemon.
	if err := os.Remove(filepath.Join(home, "cluster.json")); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := ckpt("cluster", "down"); code != 0 {
		t.Fatalf("cluster down without cluster.json: exit %d: %s", code, errOut)
	}
	for _, pid := range pids {
		if cluster.Alive(home, pid) {
			t.Fatalf("daemon %d survived cluster down without cluster.json", pid)
		}
	}

	// An orphan manager, recorded nowhere, holds catalog.db's lock:
	// cluster up finds it in the process table and replaces it.
	if _, errOut, code := ckpt("cluster", "up"); code != 0 {
		t.Fatalf("cluster up: %s", errOut)
	}
	pids = recordedPids(t, home)
	os.Remove(filepath.Join(home, "cluster.json"))
	os.RemoveAll(filepath.Join(home, "run"))
	syscall.Kill(pids[2], syscall.SIGKILL) // a store dies too: the orphan is not whole
	waitGone(t, home, pids[2])
	out, _, code = ckpt("cluster", "status")
	if code == 0 {
		t.Fatalf("status with a store dead and no cluster.json: exit 0: %s", out)
	}
	if _, errOut, code := ckpt("cluster", "up"); code != 0 {
		t.Fatalf("cluster up with an orphan manager: exit %d: %s", code, errOut)
	}
	if cluster.Alive(home, pids[0]) {
		t.Errorf("orphan manager %d still runs", pids[0])
	}
	getSame()
}

// TestKilledWhileStarting: ckpt killed while it starts the cluster (SIGINT
// to its process group, then SIGKILL) leaves no daemon that wedges the next
// 'cluster up'.
func TestKilledWhileStarting(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			home := filepath.Join(t.TempDir(), "home")
			ckpt := localCkpt(t, home)
			cmd := exec.Command(filepath.Join(clustertest.Build(t), "ckpt"), "cluster", "up", "--stores", "2")
			cmd.Env = localEnv(home)
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			waitFile(t, filepath.Join(home, "run", "manager.pid"))
			syscall.Kill(-cmd.Process.Pid, sig)
			cmd.Wait()
			if _, errOut, code := ckpt("cluster", "up", "--stores", "2"); code != 0 {
				t.Fatalf("cluster up after ckpt got %v while starting: exit %d: %s", sig, code, errOut)
			}
			if _, errOut, code := ckpt("cluster", "status"); code != 0 {
				t.Fatalf("status: exit %d: %s", code, errOut)
			}
		})
	}
}

// TestClosedPipeWhileStarting: a writing command whose output goes to a
// closed pipe (ckpt put ... 2>&1 | head -0) dies of SIGPIPE while it
// starts the cluster; the next 'cluster up' starts it cleanly.
func TestClosedPipeWhileStarting(t *testing.T) {
	home := filepath.Join(t.TempDir(), "home")
	ckpt := localCkpt(t, home)
	work := t.TempDir()
	writeRandom(t, filepath.Join(work, "f"), 1000, 1)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	cmd := exec.Command(filepath.Join(clustertest.Build(t), "ckpt"), "put", "j", "f")
	cmd.Env, cmd.Dir, cmd.Stdout, cmd.Stderr = localEnv(home), work, w, w
	err = cmd.Run()
	w.Close()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGPIPE {
		t.Fatalf("ckpt put into a closed pipe: %v, want killed by SIGPIPE", err)
	}
	if _, errOut, code := ckpt("cluster", "up", "--stores", "2"); code != 0 {
		t.Fatalf("cluster up after a ckpt killed by SIGPIPE: exit %d: %s", code, errOut)
	}
	if _, errOut, code := ckpt("cluster", "status"); code != 0 {
		t.Fatalf("status: exit %d: %s", code, errOut)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// waitGone polls until none of pids is a daemon of home, failing after 20s.
func waitGone(t *testing.T, home string, pids ...int) {
	t.Helper()
	for _, pid := range pids {
		clustertest.Eventually(t, 20*time.Second, func() bool { return !cluster.Alive(home, pid) },
			func() string { return fmt.Sprintf("pid %d still alive after SIGKILL", pid) })
	}
}
