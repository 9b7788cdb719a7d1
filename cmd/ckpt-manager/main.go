// Command ckpt-manager is the catalog daemon of a ckptio cluster: it knows
// the stores (alive or dead by heartbeat), the jobs and their committed
// versions, and keeps each version's manifest. Its HTTP/JSON API is
// described in docs/manager-api.md.
package main

import (
	"context"
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
	"github.com/ckptio/ckptio/storage/token"
)

const usage = `usage: ckpt-manager --data DIR [flags]

Serves the ckptio catalog (stores, jobs, versions) over HTTP. Prints
"listening on HOST:PORT" once it serves (--listen port 0 picks a free port)
and stops cleanly on SIGTERM or SIGINT.

The cluster token comes from --token-file, CKPT_TOKEN or CKPT_TOKEN_FILE.

flags:
`

func main() {
	fs := flag.NewFlagSet("ckpt-manager", flag.ExitOnError)
	fs.Usage = func() { fmt.Fprint(os.Stderr, usage); fs.PrintDefaults() }
	listen := fs.String("listen", "127.0.0.1:0", "address to serve on (port 0 picks a free one)")
	data := fs.String("data", "", "directory for the catalog (created if missing)")
	tokenFile := fs.String("token-file", "", "file holding the cluster token")
	deadAfter := fs.Duration("dead-after", 15*time.Second, "a store with no heartbeat for this long is dead")
	txnTimeout := fs.Duration("txn-timeout", 10*time.Minute, "an unfinished version not renewed for this long is discarded")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	fs.Parse(os.Args[1:])
	if fs.NArg() > 0 {
		cli.Exit("ckpt-manager", fmt.Errorf("unexpected argument %q (see --help)", fs.Arg(0)))
	}
	cli.Exit("ckpt-manager", run(*listen, *data, *tokenFile, *deadAfter, *txnTimeout, *level))
}

func run(listen, data, tokenFile string, deadAfter, txnTimeout time.Duration, level string) error {
	if data == "" {
		return errors.New("--data is required: the directory for the catalog")
	}
	tok, err := token.Resolve(tokenFile)
	if err != nil {
		return err
	}
	log, err := cli.Logger(level)
	if err != nil {
		return err
	}
	defer log.Sync()
	ctx, stop := cli.SignalContext()
	defer stop()

	m, err := manager.Open(data, manager.Options{Token: tok, DeadAfter: deadAfter, TxnTimeout: txnTimeout, Logger: log})
	if err != nil {
		return err
	}
	defer m.Close()
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", listen, err)
	}
	srv := &http.Server{Handler: m.Handler(), ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("manager ready", zap.String("addr", ln.Addr().String()), zap.String("data", data))
	fmt.Printf("listening on %s\n", ln.Addr())

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
