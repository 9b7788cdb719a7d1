package main

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/client"
	"github.com/ckptio/ckptio/storage/remote"
	"github.com/ckptio/ckptio/storage/token"
	"github.com/ckptio/ckptio/storage/version"
)

// PutRun is one version written through the striping client.
type PutRun struct {
	Stores    int   `json:"stores"`
	Window    int   `json:"window"`   // puts outstanding per store
	Replicas  int   `json:"replicas"` // copies of each block, each durable before commit
	BlockSize int   `json:"block_size"`
	Bytes     int64 `json:"bytes"` // handed to the writer
	// MaxBuffered is the writer's bound on bytes handed over and not yet
	// stored (its default, Window blocks per store): what lets the
	// application run ahead of the network.
	MaxBuffered    int64   `json:"max_buffered"`
	AppSeconds     float64 `json:"app_seconds"`     // until the last PutBlock returned
	DurableSeconds float64 `json:"durable_seconds"` // until the commit returned
	AppMBps        float64 `json:"app_mbps"`
	DurableMBps    float64 `json:"durable_mbps"`
	SentBytes      int64   `json:"sent_bytes"` // stored bytes sent, every copy
	// WireMBps is SentBytes over the durable time: the payload rate on the
	// client's link, which carries every copy.
	WireMBps float64 `json:"wire_mbps"`
	Rep      int     `json:"rep"`   // which repetition of this configuration
	Load1    float64 `json:"load1"` // the machine's 1-minute load average as the run began
}

// putCmd writes one version per (replicas, window) pair to the cluster at
// --manager, which must have exactly --stores live stores.
func putCmd(args []string) error {
	fs := flag.NewFlagSet("put", flag.ExitOnError)
	mgr := fs.String("manager", "", "manager address HOST:PORT")
	tokenFile := fs.String("token-file", "", "file holding the cluster token")
	stores := fs.Int("stores", 0, "live stores expected (waits up to --wait for them)")
	windowsS := fs.String("windows", "1,4,16,64", "writer windows to run, comma-separated")
	replicasS := fs.String("replicas", "1,2", "copies per block to run, comma-separated (above --stores: skipped)")
	sizeS := fs.String("size", "512MiB", "bytes per run")
	blockS := fs.String("block", "1MiB", "block size")
	repeat := fs.Int("repeat", 1, "runs of each configuration (all configurations once, then again)")
	out := fs.String("out", "", "JSON Lines file to append each run to")
	wait := fs.Duration("wait", 30*time.Second, "how long to wait for the stores to register")
	timeout := fs.Duration("timeout", 20*time.Minute, "give up after this long")
	fs.Parse(args)
	windows, err := ints(*windowsS)
	if err != nil {
		return fmt.Errorf("--windows %w", err)
	}
	replicas, err := ints(*replicasS)
	if err != nil {
		return fmt.Errorf("--replicas %w", err)
	}
	size, err := storage.ParseSize(*sizeS)
	if err != nil {
		return err
	}
	bs, err := storage.ParseSize(*blockS)
	if err != nil {
		return err
	}
	tok, err := token.ReadFile(*tokenFile)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	mc := catalog.NewClient(*mgr, tok, catalog.ClientOptions{})
	if err := awaitStores(ctx, mc, *stores, *wait); err != nil {
		return err
	}
	pool := make([]byte, 64<<20)
	rand.New(rand.NewSource(1)).Read(pool)
	seed := uint64(time.Now().UnixNano())
	for rep := 1; rep <= *repeat; rep++ {
		for _, r := range replicas {
			if r > *stores {
				continue
			}
			for _, w := range windows {
				seed++
				load := load1()
				run, err := putOnce(ctx, mc, tok, *stores, w, r, int(bs), size, &uniqueReader{pool: pool, bs: int(bs), n: size, seed: seed})
				if err != nil {
					return fmt.Errorf("%d stores, window %d, replicas %d: %w", *stores, w, r, err)
				}
				run.Rep, run.Load1 = rep, load
				fmt.Printf("put %d stores  window %2d  replicas %d  run %d: app %7.1f MB/s  durable %6.1f MB/s  (client link %6.1f MB/s, load %.1f)\n",
					run.Stores, run.Window, run.Replicas, rep, run.AppMBps, run.DurableMBps, run.WireMBps, load)
				if err := appendJSON(*out, run); err != nil {
					return err
				}
				time.Sleep(time.Second) // let the stores' last group commits settle
			}
		}
	}
	return nil
}

// load1 is the 1-minute load average (0 where /proc is missing): the
// machine is shared, and a run beside a busy neighbour is slower.
func load1() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// awaitStores waits until exactly n stores are alive.
func awaitStores(ctx context.Context, mc *catalog.Client, n int, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		infos, err := mc.Stores(ctx)
		alive := 0
		for _, s := range infos {
			if s.Alive {
				alive++
			}
		}
		switch {
		case err == nil && alive == n:
			return nil
		case err == nil && alive > n:
			return fmt.Errorf("%d stores alive at the manager, expected %d", alive, n)
		case time.Now().After(deadline):
			return fmt.Errorf("%d of %d stores alive after %s (last error: %v)", alive, n, wait, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// putOnce writes size bytes as one version of a job of its own, timed from
// Begin, through connections dialed (and warmed) beforehand.
func putOnce(ctx context.Context, mc *catalog.Client, tok []byte, stores, window, replicas, bs int, size int64, data io.Reader) (PutRun, error) {
	p := client.NewPool(mc, func(ctx context.Context, addr string) (storage.BlockStore, error) {
		return remote.Dial(ctx, addr, tok, remote.Options{Window: window, NoVerify: true})
	}, nil)
	defer p.Close()
	targets, _, err := p.Targets(ctx)
	if err != nil {
		return PutRun{}, err
	}
	if len(targets) != stores {
		return PutRun{}, fmt.Errorf("%d targets, expected %d", len(targets), stores)
	}
	job := fmt.Sprintf("netbench-s%d-w%d-r%d-%d", stores, window, replicas, time.Now().UnixNano())
	opts := client.WriterOptions{BlockSize: bs, Window: window, Replicas: replicas}
	start := time.Now()
	var n int64
	var app time.Duration
	j := &version.Job{Name: job, Catalog: mc, Pool: p, Writer: opts}
	m, err := j.Write(ctx, version.Files, nil, func(w *version.Writer) error {
		var err error
		n, err = w.WriteObject(ctx, "data", -1, data)
		app = time.Since(start)
		return err
	})
	if err != nil {
		return PutRun{}, err
	}
	durable := time.Since(start)
	if n != size || m.NewBytes != size {
		return PutRun{}, fmt.Errorf("wrote %d bytes of which %d new, want %d new: the data deduplicated", n, m.NewBytes, size)
	}
	return PutRun{
		Stores: stores, Window: window, Replicas: replicas, BlockSize: bs, Bytes: size,
		MaxBuffered: int64(window) * int64(stores) * int64(bs),
		AppSeconds:  app.Seconds(), DurableSeconds: durable.Seconds(),
		AppMBps: mbps(size, app), DurableMBps: mbps(size, durable),
		SentBytes: m.SentBytes, WireMBps: mbps(m.SentBytes, durable),
	}, nil
}

// uniqueReader yields n bytes of incompressible data in which every block
// differs, within a run (the block index is stamped into it) and across runs
// (so is the seed), so nothing deduplicates on the stores.
type uniqueReader struct {
	pool []byte
	bs   int
	seed uint64
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
	for done := 0; done < len(p); {
		at := int((u.off + int64(done)) % int64(len(u.pool)))
		done += copy(p[done:], u.pool[at:])
	}
	// Stamp seed and block index at each block start inside p (the writer
	// reads whole blocks, so a stamp is never split).
	bs := int64(u.bs)
	for b := (u.off + bs - 1) / bs * bs; b+16 <= u.off+int64(len(p)); b += bs {
		var stamp [16]byte
		binary.LittleEndian.PutUint64(stamp[:8], u.seed)
		binary.LittleEndian.PutUint64(stamp[8:], uint64(b/bs))
		copy(p[b-u.off:], stamp[:])
	}
	u.off += int64(len(p))
	return len(p), nil
}
