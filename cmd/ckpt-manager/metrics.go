package main

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/ckptio/ckptio/storage/manager"
	"github.com/ckptio/ckptio/storage/metrics"
)

// managerMetrics is the manager's --metrics-listen: nil when it is off,
// so the manager observes nothing.
type managerMetrics struct {
	reg *prometheus.Registry
	m   *metrics.Manager
	srv *metrics.Server
}

func newManagerMetrics(addr string) *managerMetrics {
	if addr == "" {
		return nil
	}
	reg := metrics.NewRegistry()
	return &managerMetrics{reg: reg, m: metrics.NewManager(reg)}
}

func (o *managerMetrics) observer() manager.Observer {
	if o == nil {
		return nil
	}
	return o.m
}

// listen registers the stores of m and serves the metrics on addr;
// announce says where.
func (o *managerMetrics) listen(addr string, m *manager.Manager, log *zap.Logger) error {
	if o == nil {
		return nil
	}
	metrics.RegisterStores(o.reg, m.Stores)
	srv, err := metrics.Listen(addr, o.reg, log)
	if err != nil {
		return err
	}
	o.srv = srv
	log.Info("metrics served", zap.String("addr", srv.Addr()))
	return nil
}

// announce prints "metrics on HOST:PORT", after the daemon's "listening
// on" line.
func (o *managerMetrics) announce() {
	if o != nil && o.srv != nil {
		fmt.Printf("metrics on %s\n", o.srv.Addr())
	}
}

func (o *managerMetrics) close() {
	if o != nil && o.srv != nil {
		o.srv.Close()
	}
}
