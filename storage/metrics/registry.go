package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// Path is where Listen serves the metrics.
const Path = "/metrics"

// NewRegistry returns a registry of its own (not Prometheus's global
// one) holding the Go runtime and process collectors; a daemon adds its
// Store or Manager to it.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Handler serves g in the Prometheus text exposition format at Path, and
// answers 404 anywhere else.
func Handler(g prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET "+Path, promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	return mux
}

// Server serves the metrics on its own plain HTTP listener.
type Server struct {
	ln   net.Listener
	srv  *http.Server
	done chan error
}

// Listen serves g at Path on addr (HOST:PORT; port 0 picks a free one),
// over plain HTTP without authentication: the metrics name jobs and
// store addresses but hold no secret, and belong on a monitoring network.
// Serving errors after the start are logged on log (nil: not logged).
func Listen(addr string, g prometheus.Gatherer, log *zap.Logger) (*Server, error) {
	if log == nil {
		log = zap.NewNop()
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-listen %s: %w (pick another HOST:PORT, or port 0 for a free one)", addr, err)
	}
	s := &Server{ln: ln, done: make(chan error, 1),
		srv: &http.Server{Handler: Handler(g), ReadHeaderTimeout: 10 * time.Second}}
	go func() {
		err := s.srv.Serve(ln)
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", zap.Error(err))
		}
		s.done <- err
	}()
	return s, nil
}

// Addr is the address the metrics are served on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops serving, letting requests in progress end within a few
// seconds, and waits for the server to stop.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	<-s.done
	return err
}

// Endpoint is a daemon's --metrics-listen: its registry, and its listener
// once served. NewEndpoint returns nil when the flag is empty, and every
// method of a nil Endpoint does nothing, so a daemon calls them either way.
type Endpoint struct {
	addr string
	reg  *prometheus.Registry
	srv  *Server
}

// NewEndpoint returns the endpoint of --metrics-listen addr, not yet
// served; nil when addr is empty (metrics off).
func NewEndpoint(addr string) *Endpoint {
	if addr == "" {
		return nil
	}
	return &Endpoint{addr: addr, reg: NewRegistry()}
}

// Registry is where the daemon registers its metrics.
func (e *Endpoint) Registry() *prometheus.Registry { return e.reg }

// Serve starts serving the registry on the endpoint's address.
func (e *Endpoint) Serve(log *zap.Logger) error {
	if e == nil {
		return nil
	}
	srv, err := Listen(e.addr, e.reg, log)
	if err != nil {
		return err
	}
	e.srv = srv
	if log != nil {
		log.Info("metrics served", zap.String("addr", srv.Addr()))
	}
	return nil
}

// Announce writes "metrics on HOST:PORT" to w once served: the line
// daemons print after their "listening on" line, which the local cluster
// reads.
func (e *Endpoint) Announce(w io.Writer) {
	if e != nil && e.srv != nil {
		fmt.Fprintf(w, "metrics on %s\n", e.srv.Addr())
	}
}

// Close stops serving.
func (e *Endpoint) Close() {
	if e != nil && e.srv != nil {
		e.srv.Close()
	}
}
