// Command bwbench checks that ckpt-store --max-bandwidth holds its rate:
// in one run it starts a manager and two real stores, one limited to
// --limit and one without a limit (the baseline), pushes --size bytes of
// blocks to each and reads them back, then does both at once, and prints
// the MB/s of each store, the limited one's ratio to the limit and to the
// baseline (absolute figures are noisy on a shared machine; the ratio to
// the limit is what must hold).
//
//	make bench-bandwidth                  # 20MiB/s, 64 MiB each way
//	bin/bwbench --bin bin --limit 5MiB/s --size 16MiB
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/ckptio/ckptio/bench/internal/daemon"
	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/remote"
	"github.com/ckptio/ckptio/storage/token"
)

func main() {
	bin := flag.String("bin", "bin", "directory holding ckpt-manager and ckpt-store (make build-static)")
	limitS := flag.String("limit", "20MiB/s", "the limited store's --max-bandwidth")
	sizeS := flag.String("size", "64MiB", "bytes pushed to each store, and read back")
	blockS := flag.String("block", "1MiB", "block size")
	inflight := flag.Int("inflight", 16, "requests in flight per store")
	flag.Parse()
	if err := run(*bin, *limitS, *sizeS, *blockS, *inflight); err != nil {
		fmt.Fprintln(os.Stderr, "bwbench:", err)
		os.Exit(1)
	}
}

func run(bin, limitS, sizeS, blockS string, inflight int) error {
	limit, err := storage.ParseRate(limitS)
	if err != nil {
		return fmt.Errorf("--limit: %w", err)
	}
	size, err := storage.ParseSize(sizeS)
	if err != nil {
		return fmt.Errorf("--size: %w", err)
	}
	bs, err := storage.ParseSize(blockS)
	if err != nil || bs <= 0 {
		return fmt.Errorf("--block %q: want a size like 1MiB", blockS)
	}
	dir, err := os.MkdirTemp("", "bwbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	tokFile := filepath.Join(dir, "token")
	tok, err := token.Ensure(tokFile)
	if err != nil {
		return err
	}
	var procs []*exec.Cmd
	defer func() {
		for _, p := range procs {
			p.Process.Kill() // StartListening's goroutine reaps it
		}
	}()
	start := func(name string, args ...string) (string, error) {
		cmd := exec.Command(filepath.Join(bin, name), args...)
		addr, err := daemon.StartListening(cmd)
		if err != nil {
			return "", fmt.Errorf("%s: %w (built? run 'make build-static')", name, err)
		}
		procs = append(procs, cmd)
		return addr, nil
	}
	mgr, err := start("ckpt-manager", "--listen", "127.0.0.1:0", "--data", filepath.Join(dir, "manager"),
		"--token-file", tokFile, "--log-level", "warn")
	if err != nil {
		return err
	}
	store := func(name string, extra ...string) (string, error) {
		return start("ckpt-store", append([]string{"--listen", "127.0.0.1:0", "--manager", mgr, "--dir", filepath.Join(dir, name),
			"--quota", storage.FormatSize(4*size + (64 << 20)), "--token-file", tokFile, "--log-level", "warn"}, extra...)...)
	}
	limited, err := store("limited", "--max-bandwidth", limitS, "--label", "limited")
	if err != nil {
		return err
	}
	baseline, err := store("baseline", "--label", "baseline")
	if err != nil {
		return err
	}

	n := int((size + bs - 1) / bs)
	blocks := make([][]byte, 2*n) // the first n for the sequential runs, the others for the mixed one
	rng := rand.New(rand.NewSource(1))
	for i := range blocks {
		blocks[i] = make([]byte, bs)
		rng.Read(blocks[i])
	}
	fmt.Printf("bwbench: %s each way in %s blocks, %d in flight; limit %s (%.1f MB/s)\n",
		storage.FormatSize(int64(n)*bs), storage.FormatSize(bs), inflight, limitS, float64(limit)/1e6)
	type result struct{ put, get, mixed float64 }
	measure := func(addr string) (result, error) {
		ctx := context.Background()
		s, err := remote.Dial(ctx, addr, tok, remote.Options{})
		if err != nil {
			return result{}, err
		}
		defer s.Close()
		var r result
		if r.put, err = pump(ctx, s, blocks[:n], inflight, true); err != nil {
			return r, err
		}
		if r.get, err = pump(ctx, s, blocks[:n], inflight, false); err != nil {
			return r, err
		}
		// Puts of new blocks and gets of the old ones at once: one bucket
		// holds both directions together.
		var g errgroup.Group
		var mu sync.Mutex
		var moved int64
		began := time.Now()
		for _, put := range []bool{true, false} {
			g.Go(func() error {
				set := blocks[:n]
				if put {
					set = blocks[n:]
				}
				_, err := pump(ctx, s, set, inflight/2, put)
				mu.Lock()
				moved += int64(len(set)) * bs
				mu.Unlock()
				return err
			})
		}
		if err := g.Wait(); err != nil {
			return r, err
		}
		r.mixed = float64(moved) / time.Since(began).Seconds() / 1e6
		return r, nil
	}
	lim, err := measure(limited)
	if err != nil {
		return fmt.Errorf("limited store: %w", err)
	}
	base, err := measure(baseline)
	if err != nil {
		return fmt.Errorf("baseline store: %w", err)
	}
	lmb := float64(limit) / 1e6
	fmt.Printf("%-22s %10s %10s %16s\n", "", "put MB/s", "get MB/s", "put+get MB/s")
	fmt.Printf("%-22s %10.1f %10.1f %16.1f\n", "limited ("+limitS+")", lim.put, lim.get, lim.mixed)
	fmt.Printf("%-22s %10.1f %10.1f %16.1f\n", "baseline (no limit)", base.put, base.get, base.mixed)
	fmt.Printf("limited / limit:       put %.2f  get %.2f  put+get %.2f\n", lim.put/lmb, lim.get/lmb, lim.mixed/lmb)
	fmt.Printf("limited / baseline:    put %.2f  get %.2f  put+get %.2f\n", lim.put/base.put, lim.get/base.get, lim.mixed/base.mixed)
	return nil
}

// pump puts (or gets) blocks with inflight requests at once and returns
// the payload rate in MB/s.
func pump(ctx context.Context, s *remote.Store, blocks [][]byte, inflight int, put bool) (float64, error) {
	var g errgroup.Group
	g.SetLimit(max(inflight, 1))
	var total int64
	began := time.Now()
	for _, b := range blocks {
		total += int64(len(b))
		g.Go(func() error {
			h := storage.Sum(b)
			if put {
				_, err := s.Put(ctx, h, b)
				return err
			}
			got, err := s.Get(ctx, h)
			if err == nil && len(got) != len(b) {
				err = fmt.Errorf("get %s: %d bytes, want %d", h.Short(), len(got), len(b))
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	return float64(total) / time.Since(began).Seconds() / 1e6, nil
}
