// Command putbench measures the storage layer's write path against this
// machine's own limits, in one run: it puts --size bytes through the
// striping client to a local cluster of --stores ckpt-store daemons and
// reports the rate beside the raw loopback TCP rate and the disk's
// write+fdatasync rate measured just before, as ratios (absolute figures
// are noisy on a shared machine).
//
//	make bench-put            # 1 GiB, 4 stores
//	bin/putbench --size 256MiB --window 4
package main

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"net"
	"os"
	"path/filepath"
	"runtime/pprof"
	"time"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/client"
	"github.com/ckptio/ckptio/storage/cluster"
	"github.com/ckptio/ckptio/storage/remote"
	"github.com/ckptio/ckptio/storage/token"
	"github.com/ckptio/ckptio/storage/version"
)

func main() {
	sizeS := flag.String("size", "1GiB", "bytes to put")
	blockS := flag.String("block", "1MiB", "block size")
	stores := flag.Int("stores", 4, "number of stores")
	window := flag.Int("window", client.DefaultWindow, "puts in flight per store")
	replicas := flag.Int("replicas", 1, "copies of each block (1: compare one copy with one disk write)")
	dir := flag.String("dir", "", "work directory (default: a temporary one on the disk under the current directory)")
	flag.StringVar(&profDir, "cpuprofile", "", "write CPU profiles of the put (putbench.prof) and of each store (store-N.prof) into this directory")
	flag.Parse()
	if err := run(*sizeS, *blockS, *stores, *window, *replicas, *dir); err != nil {
		fmt.Fprintln(os.Stderr, "putbench:", err)
		os.Exit(1)
	}
}

// profDir is --cpuprofile.
var profDir string

func run(sizeS, blockS string, stores, window, replicas int, dir string) error {
	size, err := storage.ParseSize(sizeS)
	if err != nil {
		return err
	}
	bs, err := storage.ParseSize(blockS)
	if err != nil {
		return err
	}
	if dir == "" {
		if dir, err = os.MkdirTemp(".", ".putbench-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	}
	dir, _ = filepath.Abs(dir)
	pool := make([]byte, 64<<20)
	rand.New(rand.NewSource(1)).Read(pool)

	tcp, err := loopback(size)
	if err != nil {
		return err
	}
	disk, err := diskRate(filepath.Join(dir, "disk.bin"), size, pool)
	if err != nil {
		return err
	}
	put, err := putRate(dir, size, int(bs), stores, window, replicas, pool)
	if err != nil {
		return err
	}
	fmt.Printf("putbench: %s in %s blocks, %d stores, window %d, %d copies\n", storage.FormatSize(size), storage.FormatSize(bs), stores, window, replicas)
	fmt.Printf("%-34s %10s %10s\n", "", "MB/s", "ratio")
	fmt.Printf("%-34s %10.0f %10s\n", "loopback TCP (1 stream)", tcp, "1.00")
	fmt.Printf("%-34s %10.0f %10.2f\n", "disk write + fdatasync", disk, disk/tcp)
	fmt.Printf("%-34s %10.0f %10.2f\n", "ckpt put to stores (durable)", put, put/tcp)
	if replicas > 1 {
		fmt.Printf("(each byte is written %d times: %d copies)\n", replicas, replicas)
	}
	fmt.Printf("put / disk = %.2f, put / loopback = %.2f\n", put/disk, put/tcp)
	return nil
}

// uniqueReader yields n bytes of incompressible data in which every block
// differs (the block index is stamped into each), so nothing deduplicates.
type uniqueReader struct {
	pool []byte
	bs   int
	off  int64
	n    int64
}

func (u *uniqueReader) Read(p []byte) (int, error) {
	if u.off >= u.n {
		return 0, io.EOF
	}
	if rem := u.n - u.off; int64(len(p)) > rem {
		p = p[:rem]
	}
	// Copy in runs: a byte-by-byte loop here was slower than the put
	// it feeds.
	for i := 0; i < len(p); {
		at := (u.off + int64(i)) % int64(len(u.pool))
		i += copy(p[i:], u.pool[at:])
	}
	// Stamp the block index at each block start inside p.
	for b := (u.off + int64(u.bs) - 1) / int64(u.bs) * int64(u.bs); b < u.off+int64(len(p)); b += int64(u.bs) {
		var stamp [8]byte
		binary.LittleEndian.PutUint64(stamp[:], uint64(b/int64(u.bs)))
		copy(p[b-u.off:], stamp[:])
	}
	u.off += int64(len(p))
	return len(p), nil
}

func loopback(size int64) (float64, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		_, err = io.Copy(io.Discard, c)
		c.Close()
		done <- err
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return 0, err
	}
	buf := make([]byte, 1<<20)
	start := time.Now()
	for sent := int64(0); sent < size; sent += int64(len(buf)) {
		if _, err := c.Write(buf); err != nil {
			return 0, err
		}
	}
	c.Close()
	if err := <-done; err != nil {
		return 0, err
	}
	return mbps(size, time.Since(start)), nil
}

func diskRate(path string, size int64, pool []byte) (float64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer os.Remove(path)
	defer f.Close()
	start := time.Now()
	for w := int64(0); w < size; w += int64(len(pool)) {
		chunk := pool[:min(int64(len(pool)), size-w)]
		if _, err := f.Write(chunk); err != nil {
			return 0, err
		}
	}
	if err := f.Sync(); err != nil {
		return 0, err
	}
	return mbps(size, time.Since(start)), nil
}

func putRate(dir string, size int64, bs, stores, window, replicas int, pool []byte) (float64, error) {
	ctx := context.Background()
	home := filepath.Join(dir, "cluster")
	info, err := cluster.Up(ctx, cluster.Options{Home: home, Stores: stores, Quota: "64GiB", ProfileDir: profDir})
	if err != nil {
		return 0, err
	}
	defer cluster.Down(home)
	tok, err := token.ReadFile(info.TokenFile)
	if err != nil {
		return 0, err
	}
	mc := catalog.NewClient(info.Manager, tok, catalog.ClientOptions{})
	p := client.NewPool(mc, func(ctx context.Context, addr string) (storage.BlockStore, error) {
		return remote.Dial(ctx, addr, tok, remote.Options{Window: window, NoVerify: true})
	}, nil)
	defer p.Close()
	// Warm the connections so dialing is not timed.
	if _, _, err := p.Targets(ctx); err != nil {
		return 0, err
	}
	if profDir != "" {
		f, err := os.Create(filepath.Join(profDir, "putbench.prof"))
		if err != nil {
			return 0, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return 0, err
		}
		defer pprof.StopCPUProfile()
	}
	start := time.Now()
	j := &version.Job{Name: "putbench", Catalog: mc, Pool: p, Writer: client.WriterOptions{BlockSize: bs, Window: window, Replicas: replicas}}
	m, err := j.Write(ctx, version.Files, nil, func(w *version.Writer) error {
		_, err := w.WriteObject(ctx, "data", -1, &uniqueReader{pool: pool, bs: bs, n: size})
		return err
	})
	if err != nil {
		return 0, err
	}
	took := time.Since(start)
	if m.NewBytes != size {
		return 0, fmt.Errorf("only %d of %d bytes were new: the data deduplicated", m.NewBytes, size)
	}
	return mbps(size, took), nil
}

func mbps(n int64, d time.Duration) float64 { return float64(n) / 1e6 / d.Seconds() }
