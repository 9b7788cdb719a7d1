// Package cluster runs the embedded local cluster: a ckpt-manager and a few
// ckpt-store daemons on 127.0.0.1, under one directory (CKPT_HOME, default
// ./.ckpt), so that ckpt and ckptrun work on a single machine with nothing
// configured.
//
// Layout of the home directory:
//
//	token          the cluster token, mode 0600, made on first use
//	cluster.json   addresses and process ids of the running daemons
//	cluster.lock   held while starting or stopping, so two commands do not race
//	manager/       the manager's catalog
//	store-N/       store N's blocks
//	logs/          each daemon's output
//
// The daemons are separate processes in their own session: they outlive the
// command that started them and keep serving until Down (ckpt cluster down).
// Data is kept across Down/Up.
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
	"strconv"
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
	Home   string // CKPT_HOME; "" = $CKPT_HOME or ./.ckpt
	Stores int    // number of stores; 0 = 4
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

// Up returns the running local cluster under opts.Home, starting whatever
// part of it is not running. It waits until the manager sees every store
// alive.
func Up(ctx context.Context, opts Options) (Info, error) {
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

	if info, err := readInfo(opts.Home); err == nil && len(info.Pids) == opts.Stores+1 {
		if healthy(ctx, info, tok) {
			return info, nil
		}
		// Part of it died: stop what is left and start afresh (the data
		// directories are kept, so nothing committed is lost).
		opts.Progress("local cluster under " + opts.Home + " is not healthy; restarting it")
		stopPids(info.Pids)
	}

	bin, err := findBins(opts.BinDir)
	if err != nil {
		return Info{}, err
	}
	info := Info{Home: opts.Home, TokenFile: tokFile}
	fail := func(err error) (Info, error) {
		stopPids(info.Pids)
		os.Remove(filepath.Join(opts.Home, "cluster.json"))
		return Info{}, err
	}
	opts.Progress("starting ckpt-manager (data in " + filepath.Join(opts.Home, "manager") + ")")
	pid, addr, maddr, err := start(ctx, filepath.Join(bin, "ckpt-manager"), filepath.Join(opts.Home, "logs", "manager.log"),
		"--listen", "127.0.0.1:0", "--data", filepath.Join(opts.Home, "manager"), "--token-file", tokFile, "--metrics-listen", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	info.Manager, info.ManagerMetrics = addr, maddr
	info.Pids = append(info.Pids, pid)
	for i := 0; i < opts.Stores; i++ {
		dir := filepath.Join(opts.Home, fmt.Sprintf("store-%d", i))
		opts.Progress(fmt.Sprintf("starting ckpt-store %d (quota %s, blocks in %s)", i, opts.Quota, dir))
		args := []string{"--listen", "127.0.0.1:0", "--manager", addr, "--dir", dir, "--quota", opts.Quota, "--token-file", tokFile, "--metrics-listen", "127.0.0.1:0"}
		if opts.ProfileDir != "" {
			args = append(args, "--cpuprofile", filepath.Join(opts.ProfileDir, fmt.Sprintf("store-%d.prof", i)))
		}
		pid, saddr, smaddr, err := start(ctx, filepath.Join(bin, "ckpt-store"), filepath.Join(opts.Home, "logs", fmt.Sprintf("store-%d.log", i)), args...)
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

// Down stops the local cluster under home, keeping its data. It is not an
// error when nothing runs.
func Down(home string) error {
	home = HomeDir(home)
	unlock, err := lock(home)
	if err != nil {
		return err
	}
	defer unlock()
	info, err := readInfo(home)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	stopPids(info.Pids)
	return os.Remove(filepath.Join(home, "cluster.json"))
}

// Status returns the recorded cluster and whether it answers.
func Status(ctx context.Context, home string) (Info, bool, error) {
	home = HomeDir(home)
	info, err := readInfo(home)
	if err != nil {
		return Info{Home: home}, false, err
	}
	tok, err := token.ReadFile(info.TokenFile)
	if err != nil {
		return info, false, err
	}
	return info, healthy(ctx, info, tok), nil
}

func healthy(ctx context.Context, info Info, tok []byte) bool {
	for _, pid := range info.Pids {
		if !alive(pid) {
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

// start launches a daemon in its own session with its output in logPath and
// waits for its "listening on HOST:PORT" line, and for its "metrics on
// HOST:PORT" line (printed after it) when args have --metrics-listen. It
// returns the pid and both addresses.
func start(ctx context.Context, bin, logPath string, args ...string) (int, string, string, error) {
	wantMetrics := slices.Contains(args, "--metrics-listen")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, "", "", fmt.Errorf("cluster: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, "", "", fmt.Errorf("cluster: starting %s: %w", bin, err)
	}
	pid := cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.After(15 * time.Second)
	for {
		if addr, maddr := scanListening(logPath); addr != "" && (maddr != "" || !wantMetrics) {
			cmd.Process.Release()
			return pid, addr, maddr, nil
		}
		select {
		case err := <-exited:
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

func alive(pid int) bool {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return false
	}
	// A zombie or a reused pid is not our daemon.
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	if i := strings.LastIndexByte(string(b), ')'); i > 0 && len(b) > i+2 && b[i+2] == 'Z' {
		return false
	}
	cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return strings.Contains(string(cmdline), "ckpt-")
}

func stopPids(pids []int) {
	for _, pid := range pids {
		if alive(pid) {
			syscall.Kill(pid, syscall.SIGTERM)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range pids {
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if alive(pid) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

func lock(home string) (func(), error) {
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(home, "cluster.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("cluster: locking %s: %w", home, err)
	}
	return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
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
