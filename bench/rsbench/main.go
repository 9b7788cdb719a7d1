// Command rsbench measures what Reed-Solomon redundancy costs against
// replicas, in one run on one cluster: it starts a manager and --stores
// real stores, then for --rounds rounds puts a fresh file of --size bytes
// with --replicas copies and again with --scheme, and reads each back with
// 'ckpt get'. It prints MB/s of each, the bytes the stores took per byte
// put, and the ratios of the scheme to the replicas (absolute figures are
// noisy on a shared machine; the ratios measured side by side are what the
// docs quote). Then it kills one store and reads both versions back
// degraded, and kills a second and reads the erasure-coded one, which
// survives what two replicas cannot.
//
//	make bench-redundancy                         # 128 MiB, rs:4+2 against 2 replicas, 6 stores
//	bin/rsbench --bin bin --size 256MiB --scheme rs:4+2 --replicas 2 --stores 6 --block-size 1MiB
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/ckptio/ckptio/bench/internal/daemon"
	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/erasure"
	"github.com/ckptio/ckptio/storage/remote"
	"github.com/ckptio/ckptio/storage/token"
)

func main() {
	o := opts{}
	flag.StringVar(&o.bin, "bin", "bin", "directory holding ckpt, ckpt-manager and ckpt-store (make build-static)")
	flag.StringVar(&o.sizeS, "size", "128MiB", "bytes of each file put")
	flag.StringVar(&o.schemeS, "scheme", "rs:4+2", "the Reed-Solomon scheme measured")
	flag.IntVar(&o.replicas, "replicas", 2, "the replica count it is measured against")
	flag.IntVar(&o.stores, "stores", 0, "stores started (default K+M of the scheme)")
	flag.IntVar(&o.rounds, "rounds", 2, "put+get rounds of each (the figures are the best round)")
	flag.StringVar(&o.blockSize, "block-size", "", "block size of the puts (default ckpt's, 64KiB)")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "rsbench:", err)
		os.Exit(1)
	}
}

type opts struct {
	bin, sizeS, schemeS      string
	blockSize                string
	replicas, stores, rounds int
}

type cluster struct {
	bin, dir, tokFile string
	tok               []byte
	mgr               string
	stores            []*exec.Cmd
	addrs             []string
}

func (c *cluster) ckpt(args ...string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(c.bin, "ckpt"), args...)
	cmd.Dir = c.dir // 'ckpt put' takes paths relative to it
	cmd.Env = append(os.Environ(), "CKPT_MANAGER="+c.mgr, "CKPT_TOKEN_FILE="+c.tokFile)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("ckpt %v: %w\n%s", args, err, errb.String())
	}
	return out.Bytes(), nil
}

// used is the bytes the running stores hold.
func (c *cluster) used(ctx context.Context) (int64, error) {
	var total int64
	for i, a := range c.addrs {
		if c.stores[i] == nil {
			continue
		}
		s, err := remote.Dial(ctx, a, c.tok, remote.Options{})
		if err != nil {
			return 0, err
		}
		st, err := s.Stat(ctx)
		s.Close()
		if err != nil {
			return 0, err
		}
		total += st.Used
	}
	return total, nil
}

// waitAlive waits until the manager counts n stores alive.
func (c *cluster) waitAlive(n int) error {
	deadline := time.Now().Add(time.Minute)
	for {
		out, err := c.ckpt("stores", "--json")
		if err == nil {
			var l catalog.StoreList
			if json.Unmarshal(out, &l) == nil {
				alive := 0
				for _, s := range l.Stores {
					if s.Alive {
						alive++
					}
				}
				if alive == n {
					return nil
				}
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the manager did not count %d stores alive within a minute", n)
		}
		time.Sleep(100 * time.Millisecond) // polling another process; a benchmark, not a test
	}
}

func (c *cluster) kill(i int) {
	c.stores[i].Process.Kill()
	c.stores[i] = nil
}

func run(o opts) error {
	bin, err := filepath.Abs(o.bin)
	if err != nil {
		return err
	}
	o.bin = bin
	size, err := storage.ParseSize(o.sizeS)
	if err != nil {
		return fmt.Errorf("--size: %w", err)
	}
	scheme, err := erasure.Parse(o.schemeS)
	if err != nil {
		return fmt.Errorf("--scheme: %w", err)
	}
	if o.stores == 0 {
		o.stores = scheme.Shards()
	}
	if o.stores < scheme.Shards() || o.stores < o.replicas {
		return fmt.Errorf("--stores %d: %s needs %d", o.stores, scheme, scheme.Shards())
	}
	dir, err := os.MkdirTemp("", "rsbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	c := &cluster{bin: o.bin, dir: dir, tokFile: filepath.Join(dir, "token")}
	if c.tok, err = token.Ensure(c.tokFile); err != nil {
		return err
	}
	var procs []*exec.Cmd
	defer func() {
		for _, p := range procs {
			p.Process.Kill()
		}
	}()
	start := func(name string, args ...string) (*exec.Cmd, string, error) {
		cmd := exec.Command(filepath.Join(o.bin, name), args...)
		addr, err := daemon.StartListening(cmd)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w (built? run 'make build-static')", name, err)
		}
		procs = append(procs, cmd)
		return cmd, addr, nil
	}
	if _, c.mgr, err = start("ckpt-manager", "--listen", "127.0.0.1:0", "--data", filepath.Join(dir, "manager"),
		"--token-file", c.tokFile, "--log-level", "warn", "--dead-after", "2s", "--repair-every", "0", "--gc-every", "0"); err != nil {
		return err
	}
	quota := storage.FormatSize(int64(o.rounds+1)*size*int64(o.replicas+2)/int64(o.stores) + (256 << 20))
	for i := range o.stores {
		p, a, err := start("ckpt-store", "--listen", "127.0.0.1:0", "--manager", c.mgr, "--dir", filepath.Join(dir, fmt.Sprintf("store-%d", i)),
			"--quota", quota, "--token-file", c.tokFile, "--log-level", "warn", "--heartbeat", "200ms")
		if err != nil {
			return err
		}
		c.stores, c.addrs = append(c.stores, p), append(c.addrs, a)
	}
	if err := c.waitAlive(o.stores); err != nil {
		return err
	}
	ctx := context.Background()
	file := filepath.Join(dir, "state.bin")
	data := make([]byte, size)
	type mode struct {
		name, job string
		flags     []string
		put, get  float64 // best MB/s
		stored    float64 // store bytes per byte put
	}
	modes := []*mode{
		{name: fmt.Sprintf("%d replicas", o.replicas), job: "replicas", flags: []string{"--replicas", fmt.Sprint(o.replicas)}},
		{name: scheme.String(), job: "rs", flags: []string{"--redundancy", scheme.String()}},
	}
	fmt.Printf("rsbench: %s per put, %d stores, %d rounds; %s (overhead %.2fx, survives %d lost stores) against %d replicas (survives %d)\n",
		storage.FormatSize(size), o.stores, o.rounds, scheme, scheme.Overhead(), scheme.Parity, o.replicas, o.replicas-1)
	rng := rand.New(rand.NewSource(1))
	for r := range o.rounds {
		for _, m := range modes {
			rng.Read(data) // fresh bytes: nothing is deduplicated
			if err := os.WriteFile(file, data, 0o644); err != nil {
				return err
			}
			before, err := c.used(ctx)
			if err != nil {
				return err
			}
			t0 := time.Now()
			args := append([]string{"put", m.job, filepath.Base(file), "--no-compress", "--quiet"}, m.flags...)
			if o.blockSize != "" {
				args = append(args, "--block-size", o.blockSize)
			}
			if _, err := c.ckpt(args...); err != nil {
				return err
			}
			put := float64(size) / time.Since(t0).Seconds() / 1e6
			after, err := c.used(ctx)
			if err != nil {
				return err
			}
			out := filepath.Join(dir, fmt.Sprintf("get-%s-%d", m.job, r))
			t0 = time.Now()
			if _, err := c.ckpt("get", m.job, "--to", out, "--quiet"); err != nil {
				return err
			}
			get := float64(size) / time.Since(t0).Seconds() / 1e6
			if err := sameFile(filepath.Join(out, "state.bin"), data); err != nil {
				return err
			}
			os.RemoveAll(out)
			m.put, m.get = max(m.put, put), max(m.get, get)
			m.stored = float64(after-before) / float64(size)
			fmt.Printf("  round %d %-12s put %7.1f MB/s  get %7.1f MB/s  stored %.2f bytes per byte\n", r+1, m.name, put, get, m.stored)
		}
	}
	rep, rs := modes[0], modes[1]
	fmt.Printf("\n%-14s %10s %10s %16s\n", "", "put MB/s", "get MB/s", "stored / put")
	for _, m := range modes {
		fmt.Printf("%-14s %10.1f %10.1f %16.2f\n", m.name, m.put, m.get, m.stored)
	}
	fmt.Printf("%s / %d replicas: put %.2f  get %.2f  stored %.2f\n", scheme, o.replicas, rs.put/rep.put, rs.get/rep.get, rs.stored/rep.stored)

	// Degraded reads: one store gone, then two.
	degraded := func(job string, want []byte) (float64, error) {
		out := filepath.Join(dir, "degraded-"+job)
		defer os.RemoveAll(out)
		t0 := time.Now()
		if _, err := c.ckpt("get", job, "--to", out, "--quiet"); err != nil {
			return 0, err
		}
		mbs := float64(size) / time.Since(t0).Seconds() / 1e6
		return mbs, sameFile(filepath.Join(out, "state.bin"), want)
	}
	// The last round's bytes are the rs version's; the replicas version's
	// were the round's first.
	rng = rand.New(rand.NewSource(1))
	last := make([][]byte, 2)
	for r := range o.rounds {
		for i := range modes {
			rng.Read(data)
			if r == o.rounds-1 {
				last[i] = append([]byte(nil), data...)
			}
		}
	}
	c.kill(0)
	if err := c.waitAlive(o.stores - 1); err != nil {
		return err
	}
	repD, err := degraded(rep.job, last[0])
	if err != nil {
		return fmt.Errorf("%d replicas, one store down: %w", o.replicas, err)
	}
	rsD1, err := degraded(rs.job, last[1])
	if err != nil {
		return fmt.Errorf("%s, one store down: %w", scheme, err)
	}
	fmt.Printf("\none store down: %d replicas get %.1f MB/s, %s get %.1f MB/s (ratio %.2f)\n", o.replicas, repD, scheme, rsD1, rsD1/repD)
	if scheme.Parity >= 2 {
		c.kill(1)
		if err := c.waitAlive(o.stores - 2); err != nil {
			return err
		}
		rsD2, err := degraded(rs.job, last[1])
		if err != nil {
			return fmt.Errorf("%s, two stores down: %w", scheme, err)
		}
		fmt.Printf("two stores down: %s get %.1f MB/s (%.2f of its healthy get)\n", scheme, rsD2, rsD2/rs.get)
		if _, err := degraded(rep.job, last[0]); err != nil {
			fmt.Printf("two stores down: the %d-replica version is unreadable (blocks whose copies were both on them)\n", o.replicas)
		} else {
			fmt.Printf("two stores down: the %d-replica version still read (no block had both copies on them)\n", o.replicas)
		}
	}
	return nil
}

func sameFile(path string, want []byte) error {
	got, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("%s: the bytes read back differ from those put", path)
	}
	return nil
}
