package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ckptio/ckptio/storage/cluster"
	"github.com/ckptio/ckptio/storage/cluster/clustertest"
)

// The tests in this file build ckptrun and run it as a process, against a
// fake mpirun (a shell script) and, when installed, the real one.

var built struct {
	once sync.Once
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// goTool returns the go command that runs these tests.
func goTool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not found; cannot build ckptrun")
	}
	return p
}

// buildCkptrun builds ckptrun once per test run and returns its path.
func buildCkptrun(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		built.dir, built.err = os.MkdirTemp("", "ckptrun-test")
		if built.err != nil {
			return
		}
		out, err := exec.Command(goTool(t), "build", "-o", built.dir, ".").CombinedOutput()
		if err != nil {
			built.err = errors.New("go build: " + err.Error() + "\n" + string(out))
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return filepath.Join(built.dir, "ckptrun")
}

// fakeMpirun is a stand-in for mpirun: call n (from 1) records its
// arguments in argv.n and its CKPT_ variables in env.n, then fails with
// FAKE_EXIT while n <= FAKE_FAILS and succeeds after, printing FAKE_STDERR
// to stderr first. With FAKE_SLEEP it
// waits for a signal instead, records it in sig.n and exits 5.
const fakeMpirun = `#!/bin/sh
dir=$(dirname "$0")
n=$(( $(cat "$dir/count" 2>/dev/null || echo 0) + 1 ))
echo $n > "$dir/count"
printf '%s\n' "$@" > "$dir/argv.$n"
env | grep '^CKPT_' | sort > "$dir/env.$n"
[ -n "$FAKE_STDERR" ] && echo "$FAKE_STDERR" >&2
if [ -n "$FAKE_SLEEP" ]; then
	trap 'echo TERM > "$dir/sig.$n"; kill $child; exit 5' TERM
	trap 'echo INT > "$dir/sig.$n"; kill $child; exit 5' INT
	echo ready > "$dir/ready.$n"
	sleep 30 & child=$!
	wait $child
	exit 6
fi
if [ "$n" -le "${FAKE_FAILS:-0}" ]; then
	[ "$FAKE_EXIT" = kill ] && kill -9 $$
	exit "${FAKE_EXIT:-1}"
fi
exit 0
`

type fake struct {
	dir  string
	path string
}

func newFake(t *testing.T) *fake {
	dir := t.TempDir()
	p := filepath.Join(dir, "mpirun")
	if err := os.WriteFile(p, []byte(fakeMpirun), 0o755); err != nil {
		t.Fatal(err)
	}
	return &fake{dir: dir, path: p}
}

func (f *fake) calls(t *testing.T) int {
	b, err := os.ReadFile(filepath.Join(f.dir, "count"))
	if err != nil {
		return 0
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("fake mpirun count: %v", err)
	}
	return n
}

func (f *fake) lines(t *testing.T, name string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(f.dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimRight(string(b), "\n"), "\n")
}

// env returns call n's CKPT_ variables.
func (f *fake) env(t *testing.T, n int) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, kv := range f.lines(t, "env."+strconv.Itoa(n)) {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// cleanEnv is the test's environment without CKPT_, MPIRUN and FAKE_
// variables, plus extra.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CKPT_") && !strings.HasPrefix(kv, "MPIRUN=") && !strings.HasPrefix(kv, "FAKE_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// noManagerEnv is a clean environment naming a manager that is not there,
// for tests that end before ckptrun looks at the cluster.
func noManagerEnv(extra ...string) []string {
	return cleanEnv(append([]string{"CKPT_MANAGER=127.0.0.1:1", "CKPT_TOKEN=0123456789abcdef0123456789abcdef"}, extra...)...)
}

// manager is a real ckpt-manager (with one store) for ckptrun to check
// before it launches.
type manager struct {
	c     *clustertest.Cluster
	addr  string
	token string
}

func newManager(t *testing.T) *manager {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a manager")
	}
	c := clustertest.NewCluster(t, clustertest.Options{Stores: 1, Extra: []string{"examples/heat"}})
	return &manager{c: c, addr: c.Manager.Addr, token: strings.TrimSpace(string(c.Token))}
}

// env is a clean environment for ckptrun using m.
func (m *manager) env(extra ...string) []string {
	return cleanEnv(append([]string{"CKPT_MANAGER=" + m.addr, "CKPT_TOKEN=" + m.token}, extra...)...)
}

// put commits a version of job holding one small file.
func (m *manager) put(t *testing.T, job string) {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "f"), []byte("data"), 0o644)
	if _, errOut, code := m.c.Run(t, dir, nil, "ckpt", "put", job, "f"); code != 0 {
		t.Fatalf("ckpt put %s: %s", job, errOut)
	}
}

func runCkptrun(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(buildCkptrun(t), args...)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("running ckptrun: %v", err)
	}
	return cmd.ProcessState.ExitCode(), stderr.String()
}

func TestRelaunchAfterFailure(t *testing.T) {
	f := newFake(t)
	m := newManager(t)
	m.put(t, "heat")
	code, out := runCkptrun(t, m.env("MPIRUN="+f.path, "FAKE_FAILS=1", "FAKE_EXIT=1", "CKPT_RANKS_PER_LEADER=2"),
		"-np", "2", "--restart-version", "1", "--mca", "btl", "self", "-x", "OMP_NUM_THREADS", "bin/heat", "--n", "1024")
	if code != 0 {
		t.Fatalf("exit status %d, want 0; output:\n%s", code, out)
	}
	if n := f.calls(t); n != 2 {
		t.Fatalf("mpirun ran %d times, want 2; output:\n%s", n, out)
	}
	for _, want := range []string{
		"ckptrun: attempt 1/4: ",
		"ckptrun: attempt 1 failed after ",
		"exit status 1; restarting",
		"ckptrun: attempt 2/4: ",
		"ckptrun: job heat finished after 2 attempts (1 restart) in ",
		", exit status 0",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	env0, env1 := f.env(t, 1), f.env(t, 2)
	if env0["CKPT_ATTEMPT"] != "0" || env1["CKPT_ATTEMPT"] != "1" {
		t.Errorf("CKPT_ATTEMPT = %q then %q, want 0 then 1", env0["CKPT_ATTEMPT"], env1["CKPT_ATTEMPT"])
	}
	if env0["CKPT_RESTART_VERSION"] != "1" {
		t.Errorf("attempt 0: CKPT_RESTART_VERSION = %q, want 1", env0["CKPT_RESTART_VERSION"])
	}
	// The failed attempt committed nothing, so the relaunch restores the
	// asked-for version again.
	if v := env1["CKPT_RESTART_VERSION"]; v != "1" {
		t.Errorf("attempt 1: CKPT_RESTART_VERSION = %q, want 1 again (nothing committed)", v)
	}
	for _, env := range []map[string]string{env0, env1} {
		for k, v := range map[string]string{"CKPT_JOB": "heat", "CKPT_MANAGER": m.addr, "CKPT_RANKS_PER_LEADER": "2",
			"CKPT_TOKEN": m.token} {
			if env[k] != v {
				t.Errorf("%s = %q, want %q", k, env[k], v)
			}
		}
	}

	argv0 := strings.Join(f.lines(t, "argv.1"), " ")
	argv1 := strings.Join(f.lines(t, "argv.2"), " ")
	for _, want := range []string{"-np 2 --mca btl self -x OMP_NUM_THREADS", "-x CKPT_ATTEMPT", "-x CKPT_JOB",
		"-x CKPT_MANAGER", "-x CKPT_RANKS_PER_LEADER", "-x CKPT_TOKEN", "bin/heat --n 1024"} {
		if !strings.Contains(argv0, want) || !strings.Contains(argv1, want) {
			t.Errorf("mpirun arguments lack %q:\n%s\n%s", want, argv0, argv1)
		}
	}
	if !strings.Contains(argv0, "-x CKPT_RESTART_VERSION") || !strings.Contains(argv1, "-x CKPT_RESTART_VERSION") {
		t.Errorf("-x CKPT_RESTART_VERSION should be on both attempts:\n%s\n%s", argv0, argv1)
	}
	if !strings.HasSuffix(argv0, "bin/heat --n 1024") {
		t.Errorf("program and its arguments should come last: %s", argv0)
	}
	if root := os.Geteuid() == 0; root != strings.HasPrefix(argv0, "--allow-run-as-root") {
		t.Errorf("--allow-run-as-root should be added exactly when root (root=%v): %s", root, argv0)
	}
}

func TestExitStatusPassThrough(t *testing.T) {
	f := newFake(t)
	m := newManager(t)
	code, out := runCkptrun(t, m.env("MPIRUN="+f.path, "FAKE_FAILS=99", "FAKE_EXIT=3"),
		"--max-restarts", "1", "-np", "1", "--job", "solver", "--", "./solver")
	if code != 3 {
		t.Errorf("exit status %d, want 3; output:\n%s", code, out)
	}
	if n := f.calls(t); n != 2 {
		t.Errorf("mpirun ran %d times, want 2", n)
	}
	for _, want := range []string{"attempt 2/2", "no restarts left (--max-restarts 1)",
		"job solver failed after 2 attempts (1 restart)", "exit status 3"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestKilledBySignal(t *testing.T) {
	f := newFake(t)
	m := newManager(t)
	code, out := runCkptrun(t, m.env("MPIRUN="+f.path, "FAKE_FAILS=99", "FAKE_EXIT=kill"),
		"--max-restarts", "0", "prog")
	if code != 128+9 {
		t.Errorf("exit status %d, want 137; output:\n%s", code, out)
	}
	if !strings.Contains(out, "killed by SIGKILL") {
		t.Errorf("output does not name the signal:\n%s", out)
	}
}

func TestSignalForwardedAndNoRelaunch(t *testing.T) {
	f := newFake(t)
	m := newManager(t)
	cmd := exec.Command(buildCkptrun(t), "-np", "2", "prog")
	cmd.Env = m.env("MPIRUN="+f.path, "FAKE_SLEEP=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(f.dir, "ready.1")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("fake mpirun did not start; output:\n%s", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	if code := cmd.ProcessState.ExitCode(); code != 5 {
		t.Errorf("exit status %d, want 5 (the job's); output:\n%s", code, out.String())
	}
	if got := f.lines(t, "sig.1"); got[0] != "TERM" {
		t.Errorf("mpirun got %q, want TERM", got)
	}
	if n := f.calls(t); n != 1 {
		t.Errorf("mpirun ran %d times after SIGTERM, want 1", n)
	}
	if !strings.Contains(out.String(), "stopped by SIGTERM after 1 attempt") {
		t.Errorf("output:\n%s", out.String())
	}
}

func TestMissingMpirun(t *testing.T) {
	code, out := runCkptrun(t, noManagerEnv("PATH="+t.TempDir()), "-np", "2", "prog")
	if code != 1 || !strings.Contains(out, "apt-get install openmpi-bin libopenmpi-dev") {
		t.Errorf("exit status %d, output:\n%s", code, out)
	}
	code, out = runCkptrun(t, noManagerEnv("MPIRUN=/nonexistent/mpirun"), "prog")
	if code != 1 || !strings.Contains(out, "MPIRUN=/nonexistent/mpirun") {
		t.Errorf("exit status %d, output:\n%s", code, out)
	}
}

func TestUsage(t *testing.T) {
	code, out := runCkptrun(t, noManagerEnv(), "--help")
	if code != 0 || !strings.Contains(out, "usage: ckptrun") || !strings.Contains(out, "CKPT_RESTART_VERSION") {
		t.Errorf("--help: exit status %d, output:\n%s", code, out)
	}
	code, out = runCkptrun(t, noManagerEnv(), "-np", "x", "prog")
	if code != 2 || !strings.Contains(out, "positive number") {
		t.Errorf("bad -np: exit status %d, output:\n%s", code, out)
	}
}

// TestRealMpirun runs two ranks of a shell under the installed mpirun and
// checks that each sees the ckptio environment.
func TestRealMpirun(t *testing.T) {
	mpirun, err := exec.LookPath("mpirun")
	if err != nil {
		t.Skip("mpirun not installed (apt-get install openmpi-bin)")
	}
	if testing.Short() {
		t.Skip("starts mpirun")
	}
	// The ranks are shells, which do not call MPI_Init, so no transport
	// settings (like OMPI_MCA_btl_vader_single_copy_mechanism) matter.
	m := newManager(t)
	env := m.env("MPIRUN="+mpirun, "CKPT_CHUNKING=cdc")
	code, out := runCkptrun(t, env, "-np", "2", "--job", "smoke", "--",
		"/bin/sh", "-c", `echo "rank=$OMPI_COMM_WORLD_RANK job=$CKPT_JOB attempt=$CKPT_ATTEMPT manager=$CKPT_MANAGER chunking=$CKPT_CHUNKING"`)
	if code != 0 {
		t.Fatalf("exit status %d; output:\n%s", code, out)
	}
	for _, rank := range []string{"0", "1"} {
		want := "rank=" + rank + " job=smoke attempt=0 manager=" + m.addr + " chunking=cdc"
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	// A failing job is relaunched, and each attempt sees its number.
	code, out = runCkptrun(t, env, "-np", "2", "--max-restarts", "1", "--",
		"/bin/sh", "-c", `echo "rank=$OMPI_COMM_WORLD_RANK attempt=$CKPT_ATTEMPT"; exit 4`)
	if code == 0 {
		t.Errorf("exit status 0 for a failing job; output:\n%s", out)
	}
	for _, want := range []string{"rank=1 attempt=0", "rank=1 attempt=1", "failed after 2 attempts (1 restart)"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestLocalCluster runs ckptrun with no CKPT_MANAGER: it must start the
// embedded local cluster (ckpt-manager and ckpt-store built next to
// ckptrun) and hand the job its address and token file.
func TestLocalCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the local cluster")
	}
	bin := buildCkptrun(t)
	out, err := exec.Command(goTool(t), "build", "-o", filepath.Dir(bin), "../ckpt-manager", "../ckpt-store").CombinedOutput()
	if err != nil {
		t.Skipf("cannot build the cluster daemons yet: %v\n%s", err, out)
	}
	home := t.TempDir()
	t.Cleanup(func() {
		if err := cluster.Down(home); err != nil {
			t.Errorf("cluster.Down: %v", err)
		}
	})
	f := newFake(t)
	env := cleanEnv()
	// An inherited CKPT_TOKEN would shadow the local cluster's token file.
	env = append(env, "MPIRUN="+f.path, "CKPT_HOME="+home, "CKPT_TOKEN=an-inherited-token-to-drop")

	for run := 1; run <= 2; run++ {
		code, out := runCkptrun(t, env, "-np", "1", "prog")
		if code != 0 {
			t.Fatalf("run %d: exit status %d; output:\n%s", run, code, out)
		}
		if run == 1 && !strings.Contains(out, "starting ckpt-manager") {
			t.Errorf("no progress lines while starting the cluster:\n%s", out)
		}
		if !strings.Contains(out, "using the local cluster under "+home) {
			t.Errorf("output:\n%s", out)
		}
		got := f.env(t, run)
		info, up, err := cluster.Status(t.Context(), home)
		if err != nil || !up {
			t.Fatalf("cluster.Status: up=%v err=%v", up, err)
		}
		if got["CKPT_MANAGER"] != info.Manager || got["CKPT_TOKEN_FILE"] != filepath.Join(home, "token") ||
			got["CKPT_HOME"] != home {
			t.Errorf("run %d: job env %v, want manager %s, token file and home under %s", run, got, info.Manager, home)
		}
		if v, ok := got["CKPT_TOKEN"]; ok {
			t.Errorf("run %d: CKPT_TOKEN=%q reached the job; it would shadow the local cluster's token file", run, v)
		}
	}
}
