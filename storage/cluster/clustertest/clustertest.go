// Package clustertest starts the real ckptio daemons as separate processes
// for integration tests: it builds the commands once per test binary, starts
// ckpt-manager and ckpt-store on port 0, reads their "listening on" line,
// and stops them when the test ends.
package clustertest

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/remote"
	"github.com/ckptio/ckptio/storage/tlsconf"
	"github.com/ckptio/ckptio/storage/tlsconf/tlsconftest"
	"github.com/ckptio/ckptio/storage/token"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// moduleRoot finds the directory holding go.mod above this file.
func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Dir(file)
	for dir != "/" {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		dir = filepath.Dir(dir)
	}
	return ""
}

// Build compiles ckpt-store, ckpt-manager, ckpt and ckptrun (CGO_ENABLED=0)
// into a directory shared by the test binary's tests, and returns it. Extra
// main packages (paths relative to the module root) are built too, with
// cgo, on the first call only.
func Build(t testing.TB, extra ...string) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "ckptio-bin-")
		if buildErr != nil {
			return
		}
		root := moduleRoot()
		cmd := exec.Command("go", "build", "-o", buildDir+"/", "./cmd/ckpt-store", "./cmd/ckpt-manager", "./cmd/ckpt", "./cmd/ckptrun")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("building the commands: %v\n%s", err, out)
			return
		}
		for _, p := range extra {
			cmd := exec.Command("go", "build", "-o", buildDir+"/", "./"+p)
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("building %s: %v\n%s", p, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildDir
}

// Proc is a running daemon.
type Proc struct {
	Addr string
	Cmd  *exec.Cmd
	Log  *strings.Builder
	mu   *sync.Mutex
	done chan struct{}
	// metrics gets the address of the "metrics on" line (MetricsAddr).
	metrics chan string
}

// Output returns what the daemon printed so far.
func (p *Proc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.Log.String()
}

// Kill stops the daemon with SIGKILL and waits for it.
func (p *Proc) Kill() {
	p.Cmd.Process.Kill()
	<-p.done
}

// Stop sends SIGTERM and waits for a clean exit, failing the test if it
// does not come within 10 s.
func (p *Proc) Stop(t testing.TB) {
	t.Helper()
	p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.Cmd.Process.Kill()
		t.Fatalf("%s did not stop within 10s of SIGTERM", p.Cmd.Path)
	}
}

var listening = regexp.MustCompile(`listening on (\S+)`)

// Start runs bin with args and waits for its "listening on" line. The
// process is killed when the test ends.
func Start(t testing.TB, bin string, args ...string) *Proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &Proc{Cmd: cmd, Log: &strings.Builder{}, mu: &sync.Mutex{}, done: make(chan struct{}), metrics: make(chan string, 1)}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.Log.WriteString(line + "\n")
			p.mu.Unlock()
			if m := listening.FindStringSubmatch(line); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
			if m := metricsLine.FindStringSubmatch(line); m != nil {
				select {
				case p.metrics <- m[1]:
				default:
				}
			}
		}
	}()
	go func() {
		cmd.Wait()
		pw.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
	})
	select {
	case p.Addr = <-addr:
		return p
	case <-p.done:
		t.Fatalf("%s exited before listening:\n%s", filepath.Base(bin), p.Output())
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not print its address within 20s:\n%s", filepath.Base(bin), p.Output())
	}
	return nil
}

// Cluster is a manager and stores started by hand with a token file.
type Cluster struct {
	Bin       string
	Dir       string
	TokenFile string
	Token     []byte
	Manager   *Proc
	Stores    []*Proc
	// TLS is the daemons' TLS material with Options.TLS, nil otherwise.
	TLS    *tlsconftest.Certs
	labels bool // Options.Labels
	// storeExtra: Options.StoreArgs, by the index of the store.
	storeExtra map[int][]string
}

// Options for NewCluster.
type Options struct {
	Stores int    // default 4
	Quota  string // default 1GiB
	Extra  []string
	// TLS runs the manager and the stores with --tls-cert, --tls-key and
	// --tls-ca of a throwaway CA; Client and Env then use TLS too.
	TLS bool
	// Labels starts each store with --label and its name (store-0, ...).
	Labels bool
	// ManagerArgs are more ckpt-manager flags, after the default ones
	// (a later flag wins: "--repair-every", "0" turns background repair
	// off).
	ManagerArgs []string
	// StoreArgs are more ckpt-store flags for the store of that index.
	StoreArgs map[int][]string
}

// NewCluster builds the commands and starts a manager and the stores, and
// waits until the manager sees every store alive.
func NewCluster(t testing.TB, o Options) *Cluster {
	t.Helper()
	if o.Stores == 0 {
		o.Stores = 4
	}
	if o.Quota == "" {
		o.Quota = "1GiB"
	}
	c := &Cluster{Bin: Build(t, o.Extra...), Dir: t.TempDir(), labels: o.Labels, storeExtra: o.StoreArgs}
	c.TokenFile = filepath.Join(c.Dir, "token")
	var err error
	if c.Token, err = token.Ensure(c.TokenFile); err != nil {
		t.Fatal(err)
	}
	if o.TLS {
		c.TLS = tlsconftest.New(t)
	}
	c.Manager = Start(t, filepath.Join(c.Bin, "ckpt-manager"), append([]string{"--listen", "127.0.0.1:0",
		"--data", filepath.Join(c.Dir, "manager"), "--token-file", c.TokenFile, "--dead-after", "3s"}, append(c.tlsArgs(), o.ManagerArgs...)...)...)
	for i := 0; i < o.Stores; i++ {
		c.AddStore(t, fmt.Sprintf("store-%d", i), o.Quota)
	}
	c.WaitAlive(t, o.Stores)
	return c
}

// AddStore starts one more store keeping its blocks in Dir/name.
func (c *Cluster) AddStore(t testing.TB, name, quota string) *Proc {
	t.Helper()
	p := Start(t, filepath.Join(c.Bin, "ckpt-store"), append([]string{"--listen", "127.0.0.1:0", "--manager", c.Manager.Addr,
		"--dir", filepath.Join(c.Dir, name), "--quota", quota, "--token-file", c.TokenFile, "--heartbeat", "200ms"},
		append(c.storeArgs(name), c.storeExtra[len(c.Stores)]...)...)...)
	c.Stores = append(c.Stores, p)
	return p
}

// storeArgs are the flags of store name beyond its address, directory and
// quota: TLS, and its label with Options.Labels.
func (c *Cluster) storeArgs(name string) []string {
	args := c.tlsArgs()
	if c.labels {
		args = append(args, "--label", name)
	}
	return args
}

// tlsArgs are the daemons' TLS flags, none without Options.TLS.
func (c *Cluster) tlsArgs() []string {
	if c.TLS == nil {
		return nil
	}
	return []string{"--tls-cert", c.TLS.CertFile, "--tls-key", c.TLS.KeyFile, "--tls-ca", c.TLS.CAFile}
}

// ClientTLS returns the TLS configuration of the cluster's clients: nil
// without Options.TLS.
func (c *Cluster) ClientTLS() *tls.Config {
	if c.TLS == nil {
		return nil
	}
	cfg, err := tlsconf.Client(c.TLS.CAFile, "")
	if err != nil {
		panic(err) // written by tlsconftest.New
	}
	return cfg
}

// Client returns a manager client for the cluster.
func (c *Cluster) Client() *catalog.Client {
	return catalog.NewClient(c.Manager.Addr, c.Token, catalog.ClientOptions{TLS: c.ClientTLS()})
}

// WaitAlive waits until the manager sees at least n stores alive.
func (c *Cluster) WaitAlive(t testing.TB, n int) {
	t.Helper()
	var alive int
	var err error
	Eventually(t, 20*time.Second, func() bool {
		var list []catalog.StoreInfo
		list, err = c.Client().Stores(context.Background())
		alive = 0
		for _, s := range list {
			if s.Alive {
				alive++
			}
		}
		return err == nil && alive >= n
	}, func() string { return fmt.Sprintf("only %d of %d stores alive after 20s (err %v)", alive, n, err) })
}

// Eventually polls cond until it holds, and fails the test with why()
// when it still does not after d. It is for conditions set by other
// processes (heartbeats, a daemon's exit, a file another process
// writes), which a test cannot be told of; it never sleeps once cond
// holds.
func Eventually(t testing.TB, d time.Duration, cond func() bool, why func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(why())
		}
		time.Sleep(pollEvery)
	}
}

// pollEvery is how often Eventually looks again.
const pollEvery = 20 * time.Millisecond

// Env returns the environment a client command needs to use the cluster.
func (c *Cluster) Env() []string {
	env := []string{"CKPT_MANAGER=" + c.Manager.Addr, "CKPT_TOKEN_FILE=" + c.TokenFile}
	if c.TLS != nil {
		env = append(env, "CKPT_TLS_CA="+c.TLS.CAFile)
	}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CKPT_") {
			env = append(env, kv)
		}
	}
	return env
}

// Run runs one of the built commands with the cluster's environment plus
// env, in dir, and returns its stdout, stderr and exit code.
func (c *Cluster) Run(t testing.TB, dir string, env []string, name string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(filepath.Join(c.Bin, name), args...)
	cmd.Dir = dir
	cmd.Env = append(c.Env(), env...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// StoreStats asks every running store of the cluster for its usage
// directly (not through the manager, whose figures are a heartbeat old),
// in the order they were started. A store that was killed is skipped.
func (c *Cluster) StoreStats(t testing.TB) []storage.Stat {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []storage.Stat
	for _, p := range c.Stores {
		select {
		case <-p.done:
			continue // exited
		default:
		}
		s, err := remote.Dial(ctx, p.Addr, c.Token, remote.Options{TLS: c.ClientTLS()})
		if err != nil {
			t.Fatalf("dialing store %s: %v", p.Addr, err)
		}
		st, err := s.Stat(ctx)
		s.Close()
		if err != nil {
			t.Fatalf("stat of store %s: %v", p.Addr, err)
		}
		out = append(out, st)
	}
	return out
}

// WaitStoreClocks waits until every running store's clock (Stat.Now, the
// clock its block touch times are on) is past t0: then a block last
// touched before t0 is older than a horizon taken after it.
func (c *Cluster) WaitStoreClocks(t testing.TB, t0 time.Time) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		past := true
		for _, st := range c.StoreStats(t) {
			past = past && st.Now.After(t0)
		}
		if past {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("store clocks not past %s after a minute", t0)
		}
		time.Sleep(time.Until(t0) + time.Millisecond)
	}
}
