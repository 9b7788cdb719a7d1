// Command ckpt-store is the daemon a desktop owner runs to donate disk space
// to a ckptio cluster. It keeps checkpoint blocks by content hash in --dir,
// never beyond --quota, serves them over the ckptio wire protocol, and
// heartbeats its free space to the manager.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/ckptio/ckptio/cmd/internal/cli"
	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/disk"
	"github.com/ckptio/ckptio/storage/store"
	"github.com/ckptio/ckptio/storage/token"
)

const usage = `usage: ckpt-store --manager HOST:PORT --dir DIR --quota SIZE [flags]

Donates up to SIZE bytes of DIR to a ckptio cluster. Prints
"listening on HOST:PORT" once it serves (--listen port 0 picks a free port)
and stops cleanly on SIGTERM or SIGINT.

The cluster token comes from --token-file, CKPT_TOKEN or CKPT_TOKEN_FILE.

--label, --max-bandwidth, --quiet-hours and --pause-when-busy give the
desktop's owner a say in what the store takes (docs/stores.md).

With --tls-cert and --tls-key it serves TLS only; with --tls-ca it speaks
HTTPS to the manager, verified with that CA (docs/security.md).

With --metrics-listen HOST:PORT it also serves Prometheus metrics at
http://HOST:PORT/metrics (plain HTTP, no token: bind it to a monitoring
network) and prints "metrics on HOST:PORT" (docs/metrics.md).

flags:
`

func main() {
	fs := flag.NewFlagSet("ckpt-store", flag.ExitOnError)
	fs.Usage = func() { fmt.Fprint(os.Stderr, usage); fs.PrintDefaults() }
	listen := fs.String("listen", "127.0.0.1:0", "address to serve on (port 0 picks a free one)")
	advertise := fs.String("advertise", "", "address clients should dial (default: the listen address)")
	mgr := fs.String("manager", os.Getenv("CKPT_MANAGER"), "manager address HOST:PORT (default $CKPT_MANAGER)")
	dir := fs.String("dir", "", "directory to keep blocks in (created if missing)")
	quota := fs.String("quota", "", "space donated, like 10GiB or 500MiB")
	tokenFile := fs.String("token-file", "", "file holding the cluster token")
	beat := fs.Duration("heartbeat", 2*time.Second, "interval between heartbeats to the manager")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile (go tool pprof) to this file until the store stops")
	var tf tlsFiles
	fs.StringVar(&tf.cert, "tls-cert", "", "serve TLS with this PEM certificate (and --tls-key)")
	fs.StringVar(&tf.key, "tls-key", "", "PEM private key of --tls-cert")
	var own ownerFlags
	own.register(fs)
	fs.StringVar(&tf.ca, "tls-ca", os.Getenv("CKPT_TLS_CA"), "PEM CA to verify the manager with, for a manager run with --tls-cert ('system': the system's roots; default $CKPT_TLS_CA)")
	metricsListen := fs.String("metrics-listen", "", "serve Prometheus metrics at http://HOST:PORT/metrics, unauthenticated (port 0 picks a free one; default off; docs/metrics.md)")
	showVersion := fs.Bool("version", false, "print the version, commit and Go version, and exit")
	fs.Parse(os.Args[1:])
	if *showVersion {
		fmt.Println(cli.VersionLine("ckpt-store"))
		return
	}
	if fs.NArg() > 0 {
		cli.Exit("ckpt-store", cli.Usagef("unexpected argument %q (see --help)", fs.Arg(0)))
	}
	stopProfile := func() {}
	if *cpuprofile != "" {
		var err error
		if stopProfile, err = cli.StartCPUProfile(*cpuprofile); err != nil {
			cli.Exit("ckpt-store", fmt.Errorf("--cpuprofile: %w", err))
		}
	}
	err := run(*listen, *advertise, *mgr, *dir, *quota, *tokenFile, *beat, *level, tf, *metricsListen, own)
	stopProfile()
	cli.Exit("ckpt-store", err)
}

// tlsFiles are the TLS flags.
type tlsFiles struct{ cert, key, ca string }

func run(listen, advertise, mgr, dir, quotaStr, tokenFile string, beat time.Duration, level string, tf tlsFiles, metricsListen string, own ownerFlags) error {
	switch {
	case mgr == "":
		return cli.Usagef("--manager is required (or set CKPT_MANAGER)")
	case dir == "":
		return cli.Usagef("--dir is required: the directory whose space this store donates")
	case quotaStr == "":
		return cli.Usagef("--quota is required, like --quota 10GiB")
	}
	quota, err := storage.ParseSize(quotaStr)
	if err != nil {
		return cli.Usagef("--quota: %w", err)
	}
	ow, err := own.parse()
	if err != nil {
		return err
	}
	tok, err := token.Resolve(tokenFile)
	if err != nil {
		return err
	}
	serverTLS, err := cli.ServerTLS(tf.cert, tf.key)
	if err != nil {
		return err
	}
	managerTLS, err := cli.ClientTLS(tf.ca)
	if err != nil {
		return fmt.Errorf("--tls-ca: %w", err)
	}
	log, err := cli.Logger(level)
	if err != nil {
		return err
	}
	defer log.Sync()
	ctx, stop := cli.SignalContext()
	defer stop()

	om := newStoreMetrics(metricsListen)
	bs, err := disk.Open(dir, disk.Options{Quota: quota, Logger: log, Observer: om.disk()})
	if err != nil {
		return err
	}
	defer bs.Close()
	ep := om.endpoint(bs)
	if err := ep.Serve(log); err != nil {
		return err
	}
	defer ep.Close()
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", listen, err)
	}
	addr := ln.Addr().String()
	if advertise != "" {
		addr = advertise
	} else if tcp, ok := ln.Addr().(*net.TCPAddr); ok && tcp.IP.IsUnspecified() {
		host, herr := os.Hostname()
		if herr != nil {
			return fmt.Errorf("listening on all interfaces needs --advertise HOST:PORT (hostname: %v)", herr)
		}
		addr = net.JoinHostPort(host, fmt.Sprint(tcp.Port))
	}
	identity, err := loadIdentity(dir)
	if err != nil {
		return err
	}
	records, err := store.OpenRecords(filepath.Join(dir, "records"))
	if err != nil {
		return err
	}
	srv := store.NewServer(bs, tok, store.Options{Logger: log, TLS: serverTLS, Observer: om.store(), MaxBandwidth: ow.bandwidth, Records: records})
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ctx, ln) }()

	st, _ := bs.Stat(ctx)
	log.Info("store ready", zap.String("id", st.ID), zap.String("addr", addr), zap.String("dir", dir),
		zap.String("quota", storage.FormatSize(quota)), zap.String("used", storage.FormatSize(st.Used)),
		zap.Bool("tls", serverTLS != nil), zap.String("label", ow.label), zap.Int64("max_bandwidth", ow.bandwidth))
	fmt.Printf("listening on %s\n", addr)
	ep.Announce(os.Stdout)

	go ow.scrub(ctx, bs, log)

	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		rep := &reporter{o: ow, srv: srv, bs: bs, log: log}
		heartbeat(ctx, log, catalog.NewClient(mgr, tok, catalog.ClientOptions{TLS: managerTLS}), bs, addr, beat, func(hb *catalog.Heartbeat) {
			rep.fill(hb)
			catalog.SignHeartbeat(hb, identity)
		})
	}()

	err = <-serveErr
	stop()
	<-hbDone
	log.Info("store stopped", zap.String("addr", addr))
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// heartbeat tells the manager this store's address and space until ctx ends.
// It logs when the manager becomes unreachable and when it is back, not on
// every failed beat.
func heartbeat(ctx context.Context, log *zap.Logger, mc *catalog.Client, bs storage.BlockStore, addr string, every time.Duration, fill func(*catalog.Heartbeat)) {
	t := time.NewTicker(every)
	defer t.Stop()
	failing := false
	for {
		st, err := bs.Stat(ctx)
		if err == nil {
			hctx, cancel := context.WithTimeout(ctx, every+3*time.Second)
			hb := catalog.Heartbeat{ID: st.ID, Addr: addr, Usage: st.Usage}
			fill(&hb)
			err = mc.Heartbeat(hctx, hb)
			cancel()
		}
		switch {
		case ctx.Err() != nil:
			return
		case err != nil && !failing:
			log.Warn("heartbeat failed; retrying", zap.Error(err))
			failing = true
		case err == nil && failing:
			log.Info("heartbeat reaches the manager again")
			failing = false
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
