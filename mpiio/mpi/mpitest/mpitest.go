//go:build unix

// Package mpitest runs Go programs under mpirun for tests: it builds a main
// package, launches it with N ranks and the environment MPI needs in
// containers and CI, and returns the combined output and exit status. It
// kills the whole process group when a run times out, so a hung rank never
// outlives the test.
//
// It does not import the binding and works with OpenMPI's mpirun (flags
// --oversubscribe and, as root, --allow-run-as-root) and MPICH's mpiexec.
package mpitest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// DefaultTimeout bounds a run whose Options set no Timeout.
const DefaultTimeout = 2 * time.Minute

// Options describe one mpirun launch.
type Options struct {
	Np         int           // ranks; 0 means 2
	Args       []string      // program arguments
	Env        []string      // KEY=VALUE added last, overriding Env() and the test's environment
	MpirunArgs []string      // extra launcher flags, e.g. "--tag-output"
	Timeout    time.Duration // 0 means DefaultTimeout
	Dir        string        // working directory; "" means the current one
}

// Result is the outcome of a run.
type Result struct {
	Output   []byte // stdout and stderr of mpirun and every rank, interleaved
	ExitCode int    // mpirun's exit status; -1 if it was killed
	TimedOut bool   // the run hit its timeout and the process group was killed
	Command  string // the command line, for messages
}

// OK reports whether mpirun exited with status 0 in time.
func (r Result) OK() bool { return r.ExitCode == 0 && !r.TimedOut }

// String summarizes the result with its output, for test failures.
func (r Result) String() string {
	state := fmt.Sprintf("exit status %d", r.ExitCode)
	if r.TimedOut {
		state = "timed out"
	}
	return fmt.Sprintf("%s: %s\n%s", r.Command, state, r.Output)
}

// Launcher returns the path of mpirun (or mpiexec), or "" if neither is on
// PATH.
func Launcher() string {
	for _, name := range []string{"mpirun", "mpiexec"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// Require skips t when no MPI launcher is installed.
func Require(t testing.TB) {
	t.Helper()
	if Launcher() == "" {
		t.Skip("mpirun not found in PATH: install an MPI (Debian: apt-get install openmpi-bin libopenmpi-dev) to run MPI tests")
	}
}

var flavor = sync.OnceValue(func() string {
	l := Launcher()
	if l == "" {
		return ""
	}
	out, _ := exec.Command(l, "--version").CombinedOutput()
	switch s := string(out); {
	case strings.Contains(s, "Open MPI"), strings.Contains(s, "OpenRTE"):
		return "openmpi"
	case strings.Contains(s, "HYDRA"), strings.Contains(s, "MPICH"):
		return "mpich"
	}
	return "unknown"
})

// Env returns the environment a run adds under the test's own, so that a
// variable already set by the caller wins:
//
//   - OMPI_MCA_rmaps_base_oversubscribe=1: more ranks than cores (CI
//     machines have 2).
//   - OMPI_MCA_btl_vader_single_copy_mechanism=none: shared-memory transfers
//     use copy-in/copy-out instead of CMA (process_vm_readv), which
//     containers without CAP_SYS_PTRACE refuse.
//   - OMPI_ALLOW_RUN_AS_ROOT=1 and OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 when
//     running as root (containers), as --allow-run-as-root does.
//
// MPICH ignores these.
func Env() []string {
	env := []string{
		"OMPI_MCA_rmaps_base_oversubscribe=1",
		"OMPI_MCA_btl_vader_single_copy_mechanism=none",
	}
	if os.Geteuid() == 0 {
		env = append(env, "OMPI_ALLOW_RUN_AS_ROOT=1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1")
	}
	return env
}

// inherited reports whether an entry of the test's environment must not
// reach mpirun because it ties a process to an MPI job it already belongs
// to: a test binary itself started by mpirun, or a C environment that a
// singleton MPI_Init populated. Such variables would make the new ranks
// join that job instead of their own.
func inherited(kv string) bool {
	for _, p := range []string{
		"OMPI_COMM_WORLD_", "OMPI_MCA_ess", "OMPI_MCA_orte_ess_", "OMPI_MCA_orte_hnp_uri",
		"OMPI_MCA_orte_launch", "OMPI_MCA_orte_precondition_transports", "OMPI_MCA_pmix",
		"OMPI_APP_CTX", "OMPI_COMMAND", "OMPI_ARGV", "OMPI_UNIVERSE_SIZE", "OMPI_FIRST_RANKS",
		"OMPI_NUM_APP_CTX", "OMPI_FILE_LOCATION", "ORTE_", "PMIX_", "PMI_",
	} {
		if strings.HasPrefix(kv, p) {
			return true
		}
	}
	return false
}

// Args returns the launcher's arguments for running program with opts.
func Args(program string, opts Options) []string {
	np := opts.Np
	if np <= 0 {
		np = 2
	}
	args := []string{"-np", fmt.Sprint(np)}
	if flavor() == "openmpi" {
		args = append(args, "--oversubscribe")
		if os.Geteuid() == 0 {
			args = append(args, "--allow-run-as-root")
		}
	}
	args = append(args, opts.MpirunArgs...)
	args = append(args, program)
	return append(args, opts.Args...)
}

// Run launches program under mpirun and waits for it. The error is non-nil
// only if mpirun could not be started; a failing or timed-out program is
// reported in the Result. ctx cancellation kills the run like a timeout.
func Run(ctx context.Context, program string, opts Options) (Result, error) {
	launcher := Launcher()
	if launcher == "" {
		return Result{ExitCode: -1}, errors.New("mpitest: mpirun not found in PATH")
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	args := Args(program, opts)
	cmd := exec.CommandContext(ctx, launcher, args...)
	cmd.Dir = opts.Dir
	env := Env()
	for _, kv := range os.Environ() {
		if !inherited(kv) {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, opts.Env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// mpirun and the ranks it forks share a new process group, killed as a
	// whole on timeout.
	cmd.SysProcAttr = procAttr()
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second

	res := Result{Command: launcher + " " + strings.Join(args, " ")}
	err := cmd.Run()
	res.Output = out.Bytes()
	res.TimedOut = ctx.Err() != nil
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr):
		res.ExitCode = exitErr.ExitCode()
	case res.TimedOut || errors.Is(err, exec.ErrWaitDelay):
		res.ExitCode = -1
	default:
		return res, fmt.Errorf("mpitest: %s: %w", res.Command, err)
	}
	if res.TimedOut {
		// Ranks that left the group are beyond reach; the group itself is
		// gone already, this only covers a WaitDelay expiry.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		res.ExitCode = -1
	}
	return res, nil
}

// Build compiles the main package pkg (an import path or a directory
// relative to the test's package) into a temporary directory and returns
// the binary's path. It fails t on a build error.
func Build(t testing.TB, pkg string, buildFlags ...string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), filepath.Base(strings.TrimSuffix(pkg, "/")))
	args := append([]string{"build", "-o", bin}, buildFlags...)
	cmd := exec.Command("go", append(args, pkg)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mpitest: go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// RunMain builds the main package pkg and runs it under mpirun with opts.
// It skips t when mpirun is missing and fails t if mpirun cannot start; the
// caller checks the Result (Result.OK, Result.Output).
func RunMain(t testing.TB, pkg string, opts Options) Result {
	t.Helper()
	Require(t)
	bin := Build(t, pkg)
	res, err := Run(context.Background(), bin, opts)
	if err != nil {
		t.Fatal(err)
	}
	return res
}
