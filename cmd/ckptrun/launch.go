package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/ckptio/ckptio/cmd/internal/cli"
)

// interrupts catches SIGINT and SIGTERM for the life of ckptrun. The first
// one stops relaunching (and calls onStop); every one is forwarded to the
// running mpirun, which aborts the job.
type interrupts struct {
	ch   chan os.Signal
	done chan struct{}
	wg   sync.WaitGroup

	mu struct {
		sync.Mutex
		got    os.Signal   // the first signal; nil = none yet
		proc   *os.Process // the running mpirun; nil between attempts
		onStop func()      // called once, on the first signal
	}
}

func catchInterrupts(onStop func()) *interrupts {
	in := &interrupts{ch: make(chan os.Signal, 4), done: make(chan struct{})}
	in.mu.onStop = onStop
	signal.Notify(in.ch, os.Interrupt, syscall.SIGTERM)
	in.wg.Add(1)
	go func() {
		defer in.wg.Done()
		for {
			select {
			case sig := <-in.ch:
				in.deliver(sig)
			case <-in.done:
				return
			}
		}
	}()
	return in
}

func (in *interrupts) deliver(sig os.Signal) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.mu.got == nil {
		in.mu.got = sig
		if in.mu.onStop != nil {
			in.mu.onStop()
		}
	}
	if in.mu.proc != nil {
		in.mu.proc.Signal(sig) // it may have exited already: nothing to do then
	}
}

// stop restores the default signal handling and waits for the forwarder.
func (in *interrupts) stop() {
	signal.Stop(in.ch)
	close(in.done)
	in.wg.Wait()
}

// signal returns the first signal received, or nil.
func (in *interrupts) signal() os.Signal {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.mu.got
}

// start starts cmd unless a signal came first, and forwards later signals
// to it until done is called. Starting under the lock means no signal falls
// between the start and the forwarding.
func (in *interrupts) start(cmd *exec.Cmd) (done func(), err error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.mu.got != nil {
		return nil, fmt.Errorf("interrupted by %v", in.mu.got)
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	in.mu.proc = cmd.Process
	return func() {
		in.mu.Lock()
		in.mu.proc = nil
		in.mu.Unlock()
	}, nil
}

// launcher runs the attempts of one job.
type launcher struct {
	mpirun  string   // path of mpirun
	display string   // how mpirun is shown in the log lines
	opts    options  // the command line
	mach    machine  // where it runs
	base    []string // environment shared by all attempts
	job     string
	stderr  io.Writer // ckptrun's own lines
	in      *interrupts
	// latest returns the job's newest committed version; nil when the
	// manager cannot be asked. With --restart-version V, a relaunch keeps
	// restoring V until the run has committed a version of its own.
	latest func() (int64, error)
	// quick: a failure this soon after the start is quick; two quick
	// failures in a row with the same status are not relaunched again.
	quick time.Duration
	// restartCluster, set when ckptrun started (or reused) the local
	// cluster, starts whatever part of it is down and updates base;
	// clusterHealthy says whether that is needed, and why.
	restartCluster func() error
	clusterHealthy func() (ok bool, why string)
}

// first is the CKPT_RESTART_VERSION of the first launch: V from
// --restart-version, "none" with --fresh (mpiio restores nothing), or "".
func (l *launcher) first() string {
	if l.opts.fresh {
		return "none"
	}
	return l.opts.restartVersion
}

// restartFor returns the CKPT_RESTART_VERSION of attempt n: V on the first
// attempt; on a relaunch V again if nothing was committed since the first
// launch (base is the latest version then), else "" (the latest).
func (l *launcher) restartFor(n int, base int64, baseErr error) string {
	v := l.first()
	if n == 0 || v == "" {
		return v
	}
	what := "restores version " + v
	if v == "none" {
		what, v = "starts fresh", "a fresh start"
	}
	if l.latest == nil || baseErr != nil {
		fmt.Fprintf(l.stderr, "ckptrun: warning: cannot ask the manager whether attempt %d committed anything; relaunching from the latest version, not %s\n", n, v)
		return ""
	}
	now, err := l.latest()
	if err != nil {
		fmt.Fprintf(l.stderr, "ckptrun: warning: %v; relaunching from the latest version, not %s\n", err, v)
		return ""
	}
	if now == base {
		// The failed attempts committed nothing: V is still the way back.
		fmt.Fprintf(l.stderr, "ckptrun: nothing was committed since the first launch; the relaunch %s again\n", what)
		return l.first()
	}
	return ""
}

// run launches the job until it succeeds, restarts run out or a signal
// arrives, and returns ckptrun's exit status: the last attempt's.
func (l *launcher) run() int {
	start := time.Now()
	attempts := l.opts.maxRestarts + 1
	status, launched := 0, 0
	var base int64
	var baseErr error = errNoLatest
	if l.latest != nil && l.first() != "" {
		base, baseErr = l.latest()
	}
	var prev attempt // the attempt before, for the quick-failure rule
	for n := 0; n < attempts; n++ {
		if n > 0 && !l.ensureCluster() {
			break
		}
		env := attemptEnv(l.base, l.job, l.restartFor(n, base, baseErr), n)
		args := mpirunArgs(l.opts, l.mach, env)
		cmd := exec.Command(l.mpirun, args...)
		cmd.Env = env
		watch := &refusalWatch{w: os.Stderr}
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, watch
		if sig := l.in.signal(); sig != nil {
			// Interrupted between attempts: the last status stands.
			fmt.Fprintf(l.stderr, "ckptrun: %s received; not relaunching\n", sigName(sig))
			if launched == 0 {
				status = signalStatus(sig)
			}
			break
		}
		fmt.Fprintf(l.stderr, "ckptrun: attempt %d/%d: %s (job %s)\n", n+1, attempts, shellQuote(append([]string{l.display}, args...)), l.job)
		t0 := time.Now()
		done, err := l.in.start(cmd)
		if err != nil {
			if sig := l.in.signal(); sig != nil {
				fmt.Fprintf(l.stderr, "ckptrun: %s received; not relaunching\n", sigName(sig))
				if launched == 0 {
					status = signalStatus(sig)
				}
				break
			}
			// mpirun itself could not run: relaunching will not help.
			fmt.Fprintf(l.stderr, "ckptrun: starting %s: %v\n", l.mpirun, err)
			status, launched = 1, n+1
			break
		}
		launched = n + 1
		err = cmd.Wait()
		done()
		took := round(time.Since(t0))
		var why string
		status, why = exitStatus(cmd, err)
		if status == 0 {
			break
		}
		if sig := l.in.signal(); sig != nil {
			fmt.Fprintf(l.stderr, "ckptrun: attempt %d stopped after %s: %s; %s was forwarded to mpirun, not relaunching\n",
				n+1, took, why, sigName(sig))
			break
		}
		if n+1 == attempts {
			fmt.Fprintf(l.stderr, "ckptrun: attempt %d failed after %s: %s; no restarts left (--max-restarts %d)\n",
				n+1, took, why, l.opts.maxRestarts)
			break
		}
		cur := attempt{status: status, quick: time.Since(t0) < l.quick}
		if reason := l.hopeless(watch, cur, prev); reason != "" {
			fmt.Fprintf(l.stderr, "ckptrun: attempt %d failed after %s: %s; not relaunching: %s\n", n+1, took, why, reason)
			break
		}
		prev = cur
		fmt.Fprintf(l.stderr, "ckptrun: attempt %d failed after %s: %s; restarting\n",
			n+1, took, why)
	}
	outcome := "finished"
	if status != 0 {
		outcome = "failed"
	}
	if sig := l.in.signal(); sig != nil {
		outcome = "stopped by " + sigName(sig)
	}
	fmt.Fprintf(l.stderr, "ckptrun: job %s %s after %s (%s) in %s, exit status %d\n",
		l.job, outcome, plural(launched, "attempt"), plural(max(launched-1, 0), "restart"), round(time.Since(start)), status)
	return status
}

var errNoLatest = errors.New("no manager to ask")

// attempt is how one attempt ended, for the quick-failure rule.
type attempt struct {
	status int  // exit status; 0 = none yet
	quick  bool // it failed sooner than launcher.quick after its start
}

// hopeless returns why relaunching after the attempt cur (the one before
// it: prev) would fail the same way, or "".
func (l *launcher) hopeless(watch *refusalWatch, cur, prev attempt) string {
	switch {
	case watch.refused():
		return "the program's restore was refused (the version's shape differs from what the program protects now: its number of ranks, regions or files), and a relaunch would restore the same version; run with the -np and inputs of that checkpoint, pick another with --restart-version V, or start over with --fresh"
	case cur.status == cli.ExitUsage:
		return "exit status 2 is a usage error (bad flags or arguments), which a relaunch repeats; fix the command line"
	case cur.quick && prev.quick && cur.status == prev.status:
		return fmt.Sprintf("it and the attempt before both failed within %s of their start with exit status %d, so the failure is not one a relaunch gets past; see the program's output above", l.quick, cur.status)
	}
	return ""
}

// ensureCluster restarts the local cluster ckptrun owns when a daemon of
// it died, before a relaunch. It reports false (and says why) when that
// fails, so the job is not relaunched against a dead cluster.
func (l *launcher) ensureCluster() bool {
	if l.restartCluster == nil {
		return true
	}
	ok, why := l.clusterHealthy()
	if ok {
		return true
	}
	fmt.Fprintf(l.stderr, "ckptrun: the local cluster is not healthy (%s); restarting it before the relaunch\n", why)
	if err := l.restartCluster(); err != nil {
		fmt.Fprintf(l.stderr, "ckptrun: restarting the local cluster: %v; not relaunching\n", err)
		return false
	}
	return true
}

// RefusedMarker is what a refused restore prints: mpiio's error for a
// version whose shape differs from what the ranks protect contains it
// ("restore of JOB refused, nothing touched: ..."). ckptrun watches the
// job's stderr for it and does not relaunch (docs/ckptrun.md).
const RefusedMarker = "refused, nothing touched"

// refusalWatch copies the job's stderr to w and notes a line holding
// RefusedMarker. exec.Cmd calls Write from one goroutine and Wait returns
// after the last Write; refused is read after Wait.
type refusalWatch struct {
	w    io.Writer
	tail []byte // the end of the last Write, for a marker split across two
	mu   struct {
		sync.Mutex
		seen bool
	}
}

func (r *refusalWatch) Write(p []byte) (int, error) {
	joined := append(r.tail, p...)
	if bytes.Contains(joined, []byte(RefusedMarker)) {
		r.mu.Lock()
		r.mu.seen = true
		r.mu.Unlock()
	}
	r.tail = append(r.tail[:0], joined[max(0, len(joined)-len(RefusedMarker)):]...)
	return r.w.Write(p)
}

func (r *refusalWatch) refused() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mu.seen
}

// exitStatus turns the end of mpirun into an exit status (128+signal when
// a signal killed it) and a short description.
func exitStatus(cmd *exec.Cmd, err error) (int, string) {
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return 1, err.Error()
	}
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok {
		return cmd.ProcessState.ExitCode(), cmd.ProcessState.String()
	}
	if ws.Signaled() {
		return 128 + int(ws.Signal()), fmt.Sprintf("killed by %s (status %d)", sigName(ws.Signal()), 128+int(ws.Signal()))
	}
	return ws.ExitStatus(), fmt.Sprintf("exit status %d", ws.ExitStatus())
}

// signalStatus is the exit status of a process killed by sig: 128+sig.
func signalStatus(sig os.Signal) int {
	if n, ok := sig.(syscall.Signal); ok {
		return 128 + int(n)
	}
	return 1
}

// sigName names a signal the way a shell user writes it: SIGTERM.
func sigName(s os.Signal) string {
	switch s {
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGKILL:
		return "SIGKILL"
	case syscall.SIGSEGV:
		return "SIGSEGV"
	case syscall.SIGABRT:
		return "SIGABRT"
	case syscall.SIGHUP:
		return "SIGHUP"
	case syscall.SIGBUS:
		return "SIGBUS"
	}
	if n, ok := s.(syscall.Signal); ok {
		return fmt.Sprintf("signal %d", int(n))
	}
	return s.String()
}

func round(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(100 * time.Millisecond)
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
