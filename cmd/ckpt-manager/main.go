// Command ckpt-manager is the catalog daemon of a ckptio cluster: it knows
// the stores (alive or dead by heartbeat), the jobs and their committed
// versions, and keeps each version's manifest. Its HTTP/JSON API is
// described in docs/manager-api.md.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/ckptio/ckptio/cmd/internal/cli"
	"github.com/ckptio/ckptio/storage/manager"
	"github.com/ckptio/ckptio/storage/remote"
	"github.com/ckptio/ckptio/storage/token"
)

const usage = `usage: ckpt-manager --data DIR [flags]

Serves the ckptio catalog (stores, jobs, versions) over HTTP. Prints
"listening on HOST:PORT" once it serves (--listen port 0 picks a free port)
and stops cleanly on SIGTERM or SIGINT.

The cluster token comes from --token-file, CKPT_TOKEN or CKPT_TOKEN_FILE.

A web dashboard for operators is at http(s)://ADDR/ui/: log in by pasting
the cluster token into its form (docs/dashboard.md).

Every --gc-every it collects garbage: the blocks on the alive stores that
no committed version references and that no store touched since the
oldest checkpoint in flight began, on each store's own clock (read at
the sweep; a store too old to tell its clock gets --gc-clock-skew, the
most its clock may lag this machine's). 'ckpt gc' runs one at once.

Every --repair-every it looks for blocks with fewer copies on alive stores
than their version's replication target (a store died, or came back
without them) and copies them from a live holder to other alive stores;
it does the full check only when a version was committed, the alive
stores changed, or 10 minutes passed. 'ckpt repair' runs one at once.

With --tls-cert and --tls-key it serves HTTPS only; with --tls-ca it
speaks TLS to the stores (for garbage collection and repair), verified with that CA
(docs/security.md).

With --metrics-listen HOST:PORT it also serves Prometheus metrics at
http://HOST:PORT/metrics (plain HTTP, no token: bind it to a monitoring
network) and prints "metrics on HOST:PORT" (docs/metrics.md).

After each commit, delete, pin and retention change it keeps catalog
records on the stores. With --recover --recover-from HOST:PORT,... it
rebuilds a lost catalog from them into --data, which must be new or empty,
says on stderr what it recovered and what it could not, then serves
(docs/availability.md, "Recovering the catalog").

flags:
`

// config is the command line.
type config struct {
	listen, data, tokenFile, level string
	deadAfter, txnTimeout          time.Duration
	gcEvery, gcClockSkew           time.Duration
	repairEvery                    time.Duration
	spotChecks                     int
	tlsCert, tlsKey, tlsCA         string
	metricsListen                  string
	recover                        bool   // rebuild the catalog from the stores (recover.go)
	recoverFrom                    string // the stores to rebuild it from
}

func main() {
	var c config
	fs := flag.NewFlagSet("ckpt-manager", flag.ExitOnError)
	fs.Usage = func() { fmt.Fprint(os.Stderr, usage); fs.PrintDefaults() }
	fs.StringVar(&c.listen, "listen", "127.0.0.1:0", "address to serve on (port 0 picks a free one)")
	fs.StringVar(&c.data, "data", "", "directory for the catalog (created if missing)")
	fs.StringVar(&c.tokenFile, "token-file", "", "file holding the cluster token")
	fs.DurationVar(&c.deadAfter, "dead-after", 15*time.Second, "a store with no heartbeat for this long is dead")
	fs.DurationVar(&c.txnTimeout, "txn-timeout", 10*time.Minute, "an unfinished version not renewed for this long is discarded")
	fs.DurationVar(&c.gcEvery, "gc-every", manager.DefaultGCEvery, "collect garbage this often (0 = only when asked, by 'ckpt gc')")
	fs.DurationVar(&c.gcClockSkew, "gc-clock-skew", manager.DefaultGCClockSkew, "for stores too old to report their clock: how far it may lag this one's; garbage collection spares their blocks touched that much before the oldest checkpoint in flight (0 = same clock)")
	fs.DurationVar(&c.repairEvery, "repair-every", manager.DefaultRepairEvery, "look this often for blocks below their replication target and copy them to other alive stores (0 = only when asked, by 'ckpt repair')")
	fs.IntVar(&c.spotChecks, "spot-checks", manager.DefaultSpotChecks, "copies of each store every health check and repair pass reads back, to catch a store that claims blocks it does not hold (0 = none)")
	fs.StringVar(&c.level, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "serve HTTPS with this PEM certificate (and --tls-key)")
	fs.StringVar(&c.tlsKey, "tls-key", "", "PEM private key of --tls-cert")
	fs.StringVar(&c.tlsCA, "tls-ca", os.Getenv("CKPT_TLS_CA"), "PEM CA to verify the stores with, for stores run with --tls-cert ('system': the system's roots; default $CKPT_TLS_CA)")
	fs.StringVar(&c.metricsListen, "metrics-listen", "", "serve Prometheus metrics at http://HOST:PORT/metrics, unauthenticated (port 0 picks a free one; default off; docs/metrics.md)")
	fs.BoolVar(&c.recover, "recover", false, "rebuild a lost catalog into the new, empty --data from the catalog records on the stores of --recover-from, then serve (docs/availability.md)")
	fs.StringVar(&c.recoverFrom, "recover-from", "", "with --recover: the stores' addresses, HOST:PORT,HOST:PORT,...")
	showVersion := fs.Bool("version", false, "print the version, commit and Go version, and exit")
	fs.Parse(os.Args[1:])
	if *showVersion {
		fmt.Println(cli.VersionLine("ckpt-manager"))
		return
	}
	if fs.NArg() > 0 {
		cli.Exit("ckpt-manager", cli.Usagef("unexpected argument %q (see --help)", fs.Arg(0)))
	}
	cli.Exit("ckpt-manager", run(c))
}

// orNever maps a flag's 0 ("never", "none") to the Options' negative.
func orNever(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}

// orNone maps a count flag's 0 (none) to the Options' negative.
func orNone(n int) int {
	if n <= 0 {
		return -1
	}
	return n
}

func run(c config) error {
	if c.data == "" {
		return cli.Usagef("--data is required: the directory for the catalog")
	}
	tok, err := token.Resolve(c.tokenFile)
	if err != nil {
		return err
	}
	serverTLS, err := cli.ServerTLS(c.tlsCert, c.tlsKey)
	if err != nil {
		return err
	}
	storeTLS, err := cli.ClientTLS(c.tlsCA)
	if err != nil {
		return fmt.Errorf("--tls-ca: %w", err)
	}
	log, err := cli.Logger(c.level)
	if err != nil {
		return err
	}
	defer log.Sync()
	ctx, stop := cli.SignalContext()
	defer stop()

	om := newManagerMetrics(c.metricsListen)
	opts := manager.Options{Token: tok, DeadAfter: c.deadAfter, TxnTimeout: c.txnTimeout, Logger: log,
		GCEvery: orNever(c.gcEvery), GCClockSkew: orNever(c.gcClockSkew), RepairEvery: orNever(c.repairEvery),
		SpotChecks: orNone(c.spotChecks), DialStore: dialStore(tok, storeTLS, log), Observer: om.observer()}
	var m *manager.Manager
	if c.recover || c.recoverFrom != "" {
		m, err = recoverCatalog(ctx, c, opts)
	} else {
		m, err = manager.Open(c.data, opts)
	}
	if err != nil {
		return err
	}
	defer m.Close()
	ep := om.endpoint(m)
	if err := ep.Serve(log); err != nil {
		return err
	}
	defer ep.Close()
	ln, err := net.Listen("tcp", c.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", c.listen, err)
	}
	// A body that stalls is dropped after ReadTimeout (long enough for a
	// 256 MiB manifest at 1 MB/s), an idle keep-alive after IdleTimeout.
	srv := &http.Server{Handler: m.Handler(), ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: 5 * time.Minute, IdleTimeout: 2 * time.Minute, TLSConfig: serverTLS}
	serveErr := make(chan error, 1)
	go func() {
		if serverTLS != nil {
			serveErr <- srv.ServeTLS(ln, "", "")
		} else {
			serveErr <- srv.Serve(ln)
		}
	}()
	log.Info("manager ready", zap.String("addr", ln.Addr().String()), zap.String("data", c.data),
		zap.Duration("gc_every", c.gcEvery), zap.Duration("gc_clock_skew", c.gcClockSkew), zap.Duration("repair_every", c.repairEvery),
		zap.Bool("tls", serverTLS != nil), zap.Bool("stores_tls", storeTLS != nil))
	fmt.Printf("listening on %s\n", ln.Addr())
	ep.Announce(os.Stdout)

	select {
	case err = <-serveErr:
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = srv.Shutdown(sctx)
		cancel()
	}
	log.Info("manager stopped")
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// dialStore returns how the manager connects to stores (garbage
// collection, health checks, repair): over TLS when cfg is not nil, else
// nil for the manager's default.
func dialStore(tok []byte, cfg *tls.Config, log *zap.Logger) func(ctx context.Context, id, addr string) (manager.GCStore, error) {
	if cfg == nil {
		return nil
	}
	return func(ctx context.Context, id, addr string) (manager.GCStore, error) {
		s, err := remote.Dial(ctx, addr, tok, remote.Options{Logger: log, TLS: cfg})
		if err != nil {
			return nil, fmt.Errorf("store %s: %w", id, err)
		}
		return s, nil
	}
}
