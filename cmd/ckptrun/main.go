// Command ckptrun launches an MPI program under mpirun with what ckptio
// needs in every rank's environment, and relaunches it when it fails, so
// that the program restores its latest committed checkpoint and carries
// on. See docs/ckptrun.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/ckptio/ckptio/cmd/internal/cli"
	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/cluster"
	"github.com/ckptio/ckptio/storage/token"
)

const usage = `usage: ckptrun [-np N] [--job NAME] [--manager HOST:PORT] [--token-file FILE]
               [--max-restarts K] [--restart-version V | --fresh]
               [MPIRUN-OPTIONS...] [--] PROGRAM [ARGS...]

Runs PROGRAM under mpirun with the ckptio environment exported to every
rank, and relaunches it when it fails: each relaunch restores the latest
committed checkpoint of the job.

ckptrun's own options (one or two dashes; --name=value works too; these
are read by ckptrun and not passed to mpirun):
  -np N, -n N, -c N       number of ranks (passed to mpirun as -np N)
  --job NAME              job name the checkpoints are kept under
                          (default: $CKPT_JOB, else the base name of PROGRAM)
  --manager HOST:PORT     the cluster's manager (default $CKPT_MANAGER;
                          neither: the local cluster under CKPT_HOME)
  --token-file FILE       the cluster token, for --manager/CKPT_MANAGER
                          (default $CKPT_TOKEN, $CKPT_TOKEN_FILE)
  --max-restarts K        relaunch a failed job at most K times (default 3;
                          0 = never)
  --restart-version V     the first launch restores version V instead of the
                          latest; it must exist (checked before launching)
  --fresh                 the first launch restores nothing: the job starts
                          from step 0; its old versions are kept
  -h, --help              this help
  --version               ckptrun's version

Before launching, ckptrun checks that the manager answers and that V
exists. It does not relaunch a failure that a relaunch would repeat, and
says why: a refused restore (the job's stderr holds "refused, nothing
touched"), exit status 2 (a usage error), or two failures in a row with the
same exit status, each within 1s of its start ($CKPTRUN_QUICK_EXIT).

Every other option before PROGRAM goes to mpirun unchanged, with its values
(--host a,b  -H a,b  -x VAR  --mca KEY VALUE  --bind-to none  --map-by ...).
"--" or the first word that is not an option starts PROGRAM ARGS; from
there on nothing is read by ckptrun, so PROGRAM's own flags are safe
(ckptrun -np 4 bin/heat --n 1024). An mpirun option ckptrun does not know is
passed as a switch: if it takes a value, write it as --option=value.

Cluster:
  With CKPT_MANAGER unset, ckptrun starts (or reuses) the embedded local
  cluster under CKPT_HOME (default ./.ckpt) and gives the job its address
  and token file; before each relaunch it restarts the daemons of that
  cluster that died. It listens on 127.0.0.1, so it serves ranks on this host
  only; for several hosts run ckpt-manager and ckpt-store yourself and set
  CKPT_MANAGER and CKPT_TOKEN or CKPT_TOKEN_FILE.

Environment of the job (each exported with mpirun -x):
  CKPT_MANAGER            the manager's host:port
  CKPT_TOKEN_FILE         the token file (local cluster, or as inherited)
  CKPT_TOKEN              the token itself, if set (not with the local cluster)
  CKPT_HOME               if set (made absolute)
  CKPT_JOB                the job name
  CKPT_ATTEMPT            0 on the first launch, 1, 2, ... on relaunches
  CKPT_RESTART_VERSION    V from --restart-version, or none with --fresh, on
                          attempt 0 (and on relaunches while nothing new
                          was committed)
  CKPT_*                  any other CKPT_ variable ckptrun was given

mpirun is $MPIRUN if set, else found on $PATH. ckptrun adds
--allow-run-as-root when run as root and --oversubscribe when N exceeds
this machine's cores (unless given, or ranks are placed with --host,
--hostfile or a rankfile).

Exit status: the last attempt's (128+signal if a signal killed mpirun).
SIGINT and SIGTERM are forwarded to mpirun and stop any relaunch. 1 when
ckptrun itself fails (no mpirun), 2 on a bad command line, 3 when V does
not exist, and when the cluster does not answer or the local cluster does
not start the status ckpt would exit with (4 unreachable, 5 out of space,
...; README.md, "Scripting").
--version prints the version, commit and Go version.

Examples:
  ckptrun -np 4 bin/heat --n 1024
  ckptrun -np 8 --host node1:4,node2:4 -x OMP_NUM_THREADS --job heat bin/heat
  ckptrun -np 4 --restart-version 12 --max-restarts 5 -- bin/heat --steps 1000
  ckptrun -np 4 --fresh bin/heat
  ckptrun --manager mgr:7070 --token-file ~/.ckpt-token -np 2 ./solver
  CKPT_MANAGER=mgr:7070 CKPT_TOKEN_FILE=~/.ckpt-token ckptrun -np 2 ./solver
`

func main() {
	os.Exit(run(os.Args[1:], os.Environ(), os.Stderr))
}

// run is ckptrun with its command line and environment; it returns the
// exit status.
func run(argv, environ []string, stderr io.Writer) int {
	opts, err := parseArgs(argv)
	if errors.Is(err, errHelp) {
		fmt.Print(usage)
		return 0
	}
	if errors.Is(err, errVersion) {
		fmt.Println(cli.VersionLine("ckptrun"))
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "ckptrun: %v\n", err)
		return cli.ExitUsage
	}
	mpirun, display, err := findMpirun(lookupEnv(environ, "MPIRUN"))
	if err != nil {
		fmt.Fprintf(stderr, "ckptrun: %v\n", err)
		return 1
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	in := catchInterrupts(cancel)
	defer in.stop()

	if opts.manager != "" {
		environ = setEnv(environ, "CKPT_MANAGER", opts.manager)
	}
	if opts.tokenFile != "" {
		if lookupEnv(environ, "CKPT_MANAGER") == "" {
			fmt.Fprintf(stderr, "ckptrun: warning: ignoring --token-file %s: it is for a cluster given with --manager or CKPT_MANAGER; the local cluster uses its own token file\n", opts.tokenFile)
		} else if _, err := token.ReadFile(opts.tokenFile); err != nil {
			fmt.Fprintf(stderr, "ckptrun: --token-file: %v\n", err)
			return cli.ExitUsage
		} else {
			environ = unsetEnv(setEnv(environ, "CKPT_TOKEN_FILE", opts.tokenFile), "CKPT_TOKEN")
		}
	}

	var ce clusterEnv
	var restartCluster func() (clusterEnv, error)
	if lookupEnv(environ, "CKPT_MANAGER") == "" {
		if opts.onHosts() {
			fmt.Fprintln(stderr, "ckptrun: warning: CKPT_MANAGER is unset, so the job uses the local cluster on 127.0.0.1, which ranks on other hosts cannot reach")
		}
		up := func() (clusterEnv, error) {
			info, err := cluster.Up(ctx, cluster.Options{
				Home:     lookupEnv(environ, "CKPT_HOME"),
				Progress: func(msg string) { fmt.Fprintf(stderr, "ckptrun: %s\n", msg) },
			})
			return clusterEnv{manager: info.Manager, tokenFile: info.TokenFile, home: info.Home}, err
		}
		var err error
		ce, err = up()
		if sig := in.signal(); sig != nil {
			fmt.Fprintf(stderr, "ckptrun: %s received while starting the local cluster\n", sigName(sig))
			return signalStatus(sig)
		}
		if err != nil {
			fmt.Fprintf(stderr, "ckptrun: local cluster: %v\n", err)
			return cli.Code(err)
		}
		fmt.Fprintf(stderr, "ckptrun: using the local cluster under %s (manager %s)\n", ce.home, ce.manager)
		restartCluster = up
	} else if err := checkToken(environ); err != nil {
		// The job may not checkpoint at all; say it, but launch.
		fmt.Fprintf(stderr, "ckptrun: warning: %v\n", err)
	}

	if v := lookupEnv(environ, "CKPT_RESTART_VERSION"); v != "" && opts.restartVersion == "" {
		fmt.Fprintf(stderr, "ckptrun: warning: ignoring CKPT_RESTART_VERSION=%s from the environment; use --restart-version %s\n", v, v)
	}
	base := baseEnv(environ, ce, filepath.Abs)
	l := &launcher{
		mpirun:  mpirun,
		display: display,
		opts:    opts,
		mach:    machine{root: os.Geteuid() == 0, cpus: runtime.NumCPU()},
		base:    base,
		job:     opts.jobName(base),
		stderr:  stderr,
		in:      in,
		quick:   quickExit(environ, stderr),
	}
	mc := managerClient(environ, ce)
	if mc != nil {
		l.latest = func() (int64, error) { return latestVersion(ctx, mc, l.job) }
		if err := preflight(ctx, mc, l.job, opts.restartVersion); err != nil {
			fmt.Fprintf(stderr, "ckptrun: %v; nothing launched\n", err)
			return cli.Code(err)
		}
	}
	if restartCluster != nil {
		l.restartCluster = func() error {
			c, err := restartCluster()
			if err != nil {
				return err
			}
			l.base = baseEnv(l.base, c, filepath.Abs)
			mc = managerClient(environ, c)
			return nil
		}
		l.clusterHealthy = func() (bool, string) {
			info, ok, err := cluster.Status(ctx, ce.home)
			switch {
			case err != nil:
				return false, err.Error()
			case !ok:
				return false, fmt.Sprintf("a daemon of manager %s is gone or it does not answer", info.Manager)
			}
			return true, ""
		}
	}
	return l.run()
}

// preflight checks, before anything is launched, that the manager answers
// and, when restartVersion is set, that the job has that version.
func preflight(ctx context.Context, mc *catalog.Client, job, restartVersion string) error {
	c, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := mc.Ping(c); err != nil {
		return fmt.Errorf("the checkpoint cluster does not answer: %w (start it, or fix --manager/CKPT_MANAGER; unset, ckptrun uses the local cluster)", err)
	}
	if restartVersion == "" {
		return nil
	}
	want, _ := strconv.ParseInt(restartVersion, 10, 64)
	vs, err := mc.Versions(c, job)
	if err != nil && !errors.Is(err, catalog.ErrUnknownJob) && !errors.Is(err, catalog.ErrNoVersions) {
		return fmt.Errorf("--restart-version %s: %w", restartVersion, err)
	}
	var latest int64
	for _, v := range vs {
		if v.Version == want {
			return nil
		}
		latest = max(latest, v.Version)
	}
	if latest == 0 {
		return cli.WithCode(cli.ExitNotFound, fmt.Errorf("--restart-version %s: job %s has no committed version (a first run needs no --restart-version)", restartVersion, job))
	}
	return cli.WithCode(cli.ExitNotFound, fmt.Errorf("--restart-version %s: job %s has no version %s; its latest is %d ('ckpt versions %s' lists them)", restartVersion, job, restartVersion, latest, job))
}

// quickExitDefault is how soon after its start an attempt's failure counts
// as quick: two quick failures in a row with the same exit status are not
// relaunched again.
const quickExitDefault = time.Second

// quickExit reads CKPTRUN_QUICK_EXIT (a duration), else the default.
func quickExit(environ []string, stderr io.Writer) time.Duration {
	v := lookupEnv(environ, "CKPTRUN_QUICK_EXIT")
	if v == "" {
		return quickExitDefault
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		fmt.Fprintf(stderr, "ckptrun: warning: ignoring CKPTRUN_QUICK_EXIT=%s: want a duration like 1s; using %s\n", v, quickExitDefault)
		return quickExitDefault
	}
	return d
}

// findMpirun returns the path of mpirun ($MPIRUN if set, else from $PATH)
// and the name to show for it.
func findMpirun(fromEnv string) (path, display string, err error) {
	name := "mpirun"
	if fromEnv != "" {
		name = fromEnv
	}
	path, err = exec.LookPath(name)
	if err != nil {
		if fromEnv != "" {
			return "", "", fmt.Errorf("MPIRUN=%s: %w", fromEnv, err)
		}
		return "", "", errors.New("mpirun not found on $PATH: install Open MPI (apt-get install openmpi-bin libopenmpi-dev) or set MPIRUN to its path")
	}
	return path, name, nil
}

// checkToken reports a token the job will not be able to use, looking
// where the ranks will: CKPT_TOKEN first, then CKPT_TOKEN_FILE.
func checkToken(environ []string) error {
	if t := strings.TrimSpace(lookupEnv(environ, "CKPT_TOKEN")); t != "" {
		if len(t) < token.MinLength {
			return fmt.Errorf("CKPT_TOKEN is %d bytes, want at least %d; the job's checkpoints will fail", len(t), token.MinLength)
		}
		return nil
	}
	if f := lookupEnv(environ, "CKPT_TOKEN_FILE"); f != "" {
		if _, err := token.ReadFile(f); err != nil {
			return fmt.Errorf("%w; the job's checkpoints will fail", err)
		}
		return nil
	}
	return fmt.Errorf("%w; the job's checkpoints will fail", token.ErrNoToken)
}

// managerClient returns a client of the job's manager, or nil when no
// manager or usable token is known.
func managerClient(environ []string, ce clusterEnv) *catalog.Client {
	addr, tokFile := ce.manager, ce.tokenFile
	if addr == "" {
		addr = lookupEnv(environ, "CKPT_MANAGER")
	}
	var tok []byte
	var err error
	switch {
	case tokFile != "":
		tok, err = token.ReadFile(tokFile)
	case lookupEnv(environ, "CKPT_TOKEN") != "":
		tok = []byte(strings.TrimSpace(lookupEnv(environ, "CKPT_TOKEN")))
	case lookupEnv(environ, "CKPT_TOKEN_FILE") != "":
		tok, err = token.ReadFile(lookupEnv(environ, "CKPT_TOKEN_FILE"))
	}
	if addr == "" || len(tok) < token.MinLength || err != nil {
		return nil
	}
	return catalog.NewClient(addr, tok, catalog.ClientOptions{})
}

// latestVersion asks the manager for the job's newest committed version
// (0 when none).
func latestVersion(ctx context.Context, mc *catalog.Client, job string) (int64, error) {
	c, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	vs, err := mc.Versions(c, job)
	if errors.Is(err, catalog.ErrUnknownJob) || errors.Is(err, catalog.ErrNoVersions) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var latest int64
	for _, v := range vs {
		latest = max(latest, v.Version)
	}
	return latest, nil
}
