// Package cluster runs the embedded local cluster: a ckpt-manager and a few
// ckpt-store daemons on 127.0.0.1, under one directory (CKPT_HOME, default
// ./.ckpt), so that ckpt and ckptrun work on a single machine with nothing
// configured.
//
// Layout of the home directory:
//
//	token          the cluster token, mode 0600, made on first use
//	cluster.json   addresses and process ids of the running daemons
//	cluster.lock   flock(2)ed while starting or stopping, so two commands do not race
//	run/NAME.pid   each daemon's pid (manager, store-N), written when it starts
//	manager/       the manager's catalog
//	store-N/       store N's blocks
//	logs/          each daemon's output
//
// The daemons are separate processes in their own session, stdin from
// /dev/null and output to logs/: they outlive the command that started them
// (a pipe closed under it, SIGINT to its process group) and keep serving
// until Down (ckpt cluster down). A daemon is known as ours by its command
// line (binary and data directory under the home), so a reused pid is never
// taken for one. Data is kept across Down/Up.
package cluster

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/token"
)

// DefaultHome is where the local cluster lives when CKPT_HOME is unset.
const DefaultHome = ".ckpt"

// Options configures Up. Zero values pick the defaults.
type Options struct {
	Home string // CKPT_HOME; "" = $CKPT_HOME or ./.ckpt
	// Stores is the number of stores to start; 0 = as many as the
	// cluster had (cluster.json, else the store-N directories), else 4.
	// A healthy running cluster is reused whatever its number.
	Stores int
	Quota  string // per store, like "8GiB"; "" = 8GiB
	// BinDir holds ckpt-manager and ckpt-store; "" = the directory of the
	// running executable, then $PATH.
	BinDir string
	// Progress, if set, receives one line per step ("starting store 2 ...").
	Progress func(string)
	// ProfileDir, if set, makes every store write a CPU profile there
	// (store-N.prof) until it stops; for benchmarks.
	ProfileDir string
}

// Info describes a running local cluster.
type Info struct {
	Home      string   `json:"home"`
	Manager   string   `json:"manager"`    // host:port
	TokenFile string   `json:"token_file"` // path of the token
	Pids      []int    `json:"pids"`       // manager first, then stores
	Stores    []string `json:"stores"`     // store addresses
	// ManagerMetrics and StoreMetrics are where the daemons serve their
	// Prometheus metrics (--metrics-listen), in the order of Stores.
	ManagerMetrics string   `json:"manager_metrics,omitempty"`
	StoreMetrics   []string `json:"store_metrics,omitempty"`
}

// HomeDir resolves the cluster home from opts and the environment.
func HomeDir(home string) string {
	if home == "" {
		home = os.Getenv("CKPT_HOME")
	}
	if home == "" {
		home = DefaultHome
	}
	if abs, err := filepath.Abs(home); err == nil {
		home = abs
	}
	return home
}

func (o *Options) fill() {
	o.Home = HomeDir(o.Home)
	if o.Stores <= 0 {
		o.Stores = 4
	}
	if o.Quota == "" {
		o.Quota = "8GiB"
	}
	if o.Progress == nil {
		o.Progress = func(string) {}
	}
}

// ErrNone is returned by Status for a home where no daemon runs and none
// is recorded.
var ErrNone = errors.New("cluster: no local cluster")

// Up returns the running local cluster under opts.Home, starting whatever
// part of it is not running. A healthy cluster is reused whatever its
// number of stores; one that is not healthy, and daemons left behind by a
// command killed while starting it (found by their pid files under run/,
// or in the process table), are stopped and the cluster is started again
// on the same addresses when they are free. It waits until the manager
// sees every store alive.
func Up(ctx context.Context, opts Options) (Info, error) {
	want := opts.Stores
	opts.fill()
	if err := os.MkdirAll(filepath.Join(opts.Home, "logs"), 0o700); err != nil {
		return Info{}, fmt.Errorf("cluster: %w", err)
	}
	unlock, err := lock(opts.Home)
	if err != nil {
		return Info{}, err
	}
	defer unlock()
	tokFile := filepath.Join(opts.Home, "token")
	tok, err := token.Ensure(tokFile)
	if err != nil {
		return Info{}, fmt.Errorf("cluster: %w", err)
	}

	prev, perr := readInfo(opts.Home)
	if perr != nil {
		// cluster.json is missing or unreadable: a whole cluster whose
		// daemons run and answer is adopted as it is.
		if found, ok := discover(opts.Home); ok && healthy(ctx, opts.Home, found, tok) &&
			waitStores(ctx, found, tok, len(found.Stores)) == nil {
			opts.Progress("adopting the local cluster running under " + opts.Home + " (its cluster.json was missing)")
			prev, perr = found, nil
		}
	}
	if perr == nil && healthy(ctx, opts.Home, prev, tok) {
		if want > 0 && want != len(prev.Stores) {
			opts.Progress(fmt.Sprintf("the local cluster under %s runs with %d stores, not %d; 'ckpt cluster down' then 'ckpt cluster up --stores %d' changes that",
				opts.Home, len(prev.Stores), want, want))
		}
		if err := writeInfo(opts.Home, prev); err != nil {
			return Info{}, err
		}
		return prev, nil
	}
	if perr == nil {
		opts.Progress("local cluster under " + opts.Home + " is not healthy; restarting it")
	}
	// Stop what is left, recorded or orphaned: an orphan manager would
	// hold catalog.db's lock. The data directories are kept, so nothing
	// committed is lost.
	if ds := stopAll(opts.Home, prev.Pids); len(ds) > 0 {
		opts.Progress("stopped daemons left running under " + opts.Home + ": " + pidList(ds))
	}
	switch {
	case want > 0:
	case len(prev.Stores) > 0:
		want = len(prev.Stores)
	case storeDirs(opts.Home) > 0:
		want = storeDirs(opts.Home)
	default:
		want = opts.Stores
	}
	opts.Stores = want

	bin, err := findBins(opts.BinDir)
	if err != nil {
		return Info{}, err
	}
	info := Info{Home: opts.Home, TokenFile: tokFile}
	fail := func(err error) (Info, error) {
		stopAll(opts.Home, info.Pids)
		return Info{}, err
	}
	opts.Progress("starting ckpt-manager (data in " + filepath.Join(opts.Home, "manager") + ")")
	pid, addr, maddr, err := startOn(ctx, opts.Home, "manager", prev.Manager, filepath.Join(bin, "ckpt-manager"),
		"--data", filepath.Join(opts.Home, "manager"), "--token-file", tokFile, "--metrics-listen", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	info.Manager, info.ManagerMetrics = addr, maddr
	info.Pids = append(info.Pids, pid)
	for i := 0; i < opts.Stores; i++ {
		dir := filepath.Join(opts.Home, fmt.Sprintf("store-%d", i))
		opts.Progress(fmt.Sprintf("starting ckpt-store %d (quota %s, blocks in %s)", i, opts.Quota, dir))
		args := []string{"--manager", addr, "--dir", dir, "--quota", opts.Quota, "--token-file", tokFile, "--metrics-listen", "127.0.0.1:0"}
		if opts.ProfileDir != "" {
			args = append(args, "--cpuprofile", filepath.Join(opts.ProfileDir, fmt.Sprintf("store-%d.prof", i)))
		}
		old := ""
		if i < len(prev.Stores) {
			old = prev.Stores[i]
		}
		pid, saddr, smaddr, err := startOn(ctx, opts.Home, fmt.Sprintf("store-%d", i), old, filepath.Join(bin, "ckpt-store"), args...)
		if err != nil {
			return fail(err)
		}
		info.Pids = append(info.Pids, pid)
		info.Stores = append(info.Stores, saddr)
		info.StoreMetrics = append(info.StoreMetrics, smaddr)
	}
	if err := waitStores(ctx, info, tok, opts.Stores); err != nil {
		return fail(err)
	}
	if err := writeInfo(opts.Home, info); err != nil {
		return fail(err)
	}
	opts.Progress(fmt.Sprintf("local cluster up: manager %s, %d stores", info.Manager, opts.Stores))
	return info, nil
}

// storeDirs counts the store-0, store-1, ... directories under home.
func storeDirs(home string) int {
	n := 0
	for {
		if st, err := os.Stat(filepath.Join(home, fmt.Sprintf("store-%d", n))); err != nil || !st.IsDir() {
			return n
		}
		n++
	}
}

// Exists reports whether home holds a local cluster: a manager catalog,
// or a daemon running. Read-only commands start a cluster only then.
func Exists(home string) bool {
	home = HomeDir(home)
	if _, err := os.Stat(filepath.Join(home, "manager", "catalog.db")); err == nil {
		return true
	}
	return len(running(home)) > 0
}

// Down stops the local cluster under home, keeping its data: every daemon
// recorded in cluster.json or a pid file, or found in the process table
// serving home's directories, so that it works when cluster.json is gone
// or stale. It is not an error when nothing runs.
func Down(home string) error {
	home = HomeDir(home)
	unlock, err := lock(home)
	if err != nil {
		return err
	}
	defer unlock()
	info, _ := readInfo(home)
	stopAll(home, info.Pids)
	if ds := running(home); len(ds) > 0 {
		return fmt.Errorf("cluster: could not stop %s; kill them by hand", pidList(ds))
	}
	return nil
}

// Status returns the local cluster under home and whether it is healthy:
// every daemon's process runs (pid files and cluster.json are checked
// against the process table, so a reused pid does not count) and the
// manager answers. Without cluster.json it describes the daemons it finds
// running from their pid files and logs. With nothing running or recorded
// it returns ErrNone.
func Status(ctx context.Context, home string) (Info, bool, error) {
	home = HomeDir(home)
	info, err := readInfo(home)
	if err != nil {
		found, ok := discover(home)
		if !ok {
			if errors.Is(err, os.ErrNotExist) {
				err = ErrNone
			}
			return Info{Home: home}, false, err
		}
		info = found
	}
	tok, err := token.ReadFile(info.TokenFile)
	if err != nil {
		return info, false, err
	}
	return info, healthy(ctx, home, info, tok), nil
}

// discover rebuilds the Info of the daemons that run under home without
// cluster.json, from their pid files and the addresses in their logs
// (each log is rewritten when its daemon starts). ok is false when no
// manager runs.
func discover(home string) (Info, bool) {
	info := Info{Home: home, TokenFile: filepath.Join(home, "token")}
	ds := running(home)
	for _, d := range ds {
		if d.name == "manager" {
			info.Manager, info.ManagerMetrics = scanListening(filepath.Join(home, "logs", "manager.log"))
			info.Pids = append(info.Pids, d.pid)
		}
	}
	if info.Manager == "" {
		return Info{}, false
	}
	// Every store-N directory should have its daemon; one that has none
	// is listed with pid 0 (not running), so the cluster is not healthy.
	byName := map[string]int{}
	for _, d := range ds {
		byName[d.name] = d.pid
	}
	for i := 0; i < storeDirs(home); i++ {
		name := fmt.Sprintf("store-%d", i)
		addr, maddr := "", ""
		if byName[name] != 0 {
			addr, maddr = scanListening(filepath.Join(home, "logs", name+".log"))
		}
		info.Pids = append(info.Pids, byName[name])
		info.Stores = append(info.Stores, addr)
		info.StoreMetrics = append(info.StoreMetrics, maddr)
	}
	return info, true
}

func healthy(ctx context.Context, home string, info Info, tok []byte) bool {
	if len(info.Stores) == 0 || len(info.Pids) != len(info.Stores)+1 {
		return false
	}
	for _, pid := range info.Pids {
		if _, ok := ours(home, pid); !ok {
			return false
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	return catalog.NewClient(info.Manager, tok, catalog.ClientOptions{}).Ping(ctx) == nil
}

func waitStores(ctx context.Context, info Info, tok []byte, n int) error {
	mc := catalog.NewClient(info.Manager, tok, catalog.ClientOptions{})
	deadline := time.Now().Add(15 * time.Second)
	for {
		stores, err := mc.Stores(ctx)
		alive := 0
		for _, s := range stores {
			for _, a := range info.Stores {
				if s.Alive && s.Addr == a {
					alive++
				}
			}
		}
		if err == nil && alive >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cluster: only %d of %d stores registered with the manager within 15s (last error: %v); see %s",
				alive, n, err, filepath.Join(info.Home, "logs"))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

var (
	listeningRE = regexp.MustCompile(`listening on (\S+)`)
	metricsRE   = regexp.MustCompile(`metrics on (\S+)`)
)

// startOn starts daemon name with --listen on addr (its address before a
// restart, so that clients that knew it find it again) or, when that is
// "" or taken, on a free port.
func startOn(ctx context.Context, home, name, addr, bin string, args ...string) (int, string, string, error) {
	logPath := filepath.Join(home, "logs", name+".log")
	if addr != "" {
		pid, a, m, err := start(ctx, home, name, bin, logPath, append([]string{"--listen", addr}, args...)...)
		if err == nil || ctx.Err() != nil {
			return pid, a, m, err
		}
	}
	return start(ctx, home, name, bin, logPath, append([]string{"--listen", "127.0.0.1:0"}, args...)...)
}

// start launches a daemon detached from the caller: in its own session
// (so a signal to the caller's process group, a closed pipe or a closed
// terminal does not reach it), stdin from /dev/null, output in logPath.
// Its pid file is written at once, before it listens, so that a caller
// killed now leaves a record. It waits for the "listening on HOST:PORT"
// line, and for "metrics on HOST:PORT" (printed after it) when args have
// --metrics-listen, and returns the pid and both addresses.
func start(ctx context.Context, home, name, bin, logPath string, args ...string) (int, string, string, error) {
	wantMetrics := slices.Contains(args, "--metrics-listen")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, "", "", fmt.Errorf("cluster: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdin = nil // /dev/null
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, "", "", fmt.Errorf("cluster: starting %s: %w", bin, err)
	}
	pid := cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	if err := writePid(home, name, pid); err != nil {
		syscall.Kill(pid, syscall.SIGKILL)
		<-exited
		return 0, "", "", err
	}
	deadline := time.After(15 * time.Second)
	for {
		if addr, maddr := scanListening(logPath); addr != "" && (maddr != "" || !wantMetrics) {
			return pid, addr, maddr, nil
		}
		select {
		case err := <-exited:
			os.Remove(pidPath(home, name))
			return 0, "", "", fmt.Errorf("cluster: %s exited before listening (%v): %s", filepath.Base(bin), err, lastLine(logPath))
		case <-deadline:
			syscall.Kill(pid, syscall.SIGKILL)
			return 0, "", "", fmt.Errorf("cluster: %s did not print its address within 15s; see %s", filepath.Base(bin), logPath)
		case <-ctx.Done():
			syscall.Kill(pid, syscall.SIGKILL)
			return 0, "", "", ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// scanListening returns the addresses of the "listening on" and "metrics
// on" lines in the log at path, "" for a line not there yet.
func scanListening(path string) (addr, metrics string) {
	f, err := os.Open(path)
	if err != nil {
		return "", ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := listeningRE.FindStringSubmatch(sc.Text()); m != nil && addr == "" {
			addr = m[1]
		}
		if m := metricsRE.FindStringSubmatch(sc.Text()); m != nil && metrics == "" {
			metrics = m[1]
		}
	}
	return addr, metrics
}

func lastLine(path string) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

func findBins(dir string) (string, error) {
	var tried []string
	if dir != "" {
		tried = append(tried, dir)
	} else {
		if exe, err := os.Executable(); err == nil {
			tried = append(tried, filepath.Dir(exe))
		}
		if p, err := exec.LookPath("ckpt-store"); err == nil {
			tried = append(tried, filepath.Dir(p))
		}
	}
	for _, d := range tried {
		if isExec(filepath.Join(d, "ckpt-store")) && isExec(filepath.Join(d, "ckpt-manager")) {
			return d, nil
		}
	}
	return "", fmt.Errorf("cluster: ckpt-store and ckpt-manager not found (looked in %s and $PATH); run 'make build' and use the binaries in bin/", strings.Join(tried, ", "))
}

func isExec(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

func readInfo(home string) (Info, error) {
	b, err := os.ReadFile(filepath.Join(home, "cluster.json"))
	if err != nil {
		return Info{}, err
	}
	var info Info
	if err := json.Unmarshal(b, &info); err != nil {
		return Info{}, fmt.Errorf("cluster: %s/cluster.json: %w", home, err)
	}
	return info, nil
}

func writeInfo(home string, info Info) error {
	b, _ := json.MarshalIndent(info, "", "  ")
	tmp := filepath.Join(home, "cluster.json.tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	return os.Rename(tmp, filepath.Join(home, "cluster.json"))
}
