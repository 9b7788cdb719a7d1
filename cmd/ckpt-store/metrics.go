package main

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/ckptio/ckptio/storage/disk"
	"github.com/ckptio/ckptio/storage/metrics"
	"github.com/ckptio/ckptio/storage/store"
)

// storeMetrics is the store's --metrics-listen: nil when it is off, so
// the store and its disk observe nothing.
type storeMetrics struct {
	reg *prometheus.Registry
	m   *metrics.Store
	srv *metrics.Server
}

func newStoreMetrics(addr string) *storeMetrics {
	if addr == "" {
		return nil
	}
	reg := metrics.NewRegistry()
	return &storeMetrics{reg: reg, m: metrics.NewStore(reg)}
}

func (o *storeMetrics) disk() disk.Observer {
	if o == nil {
		return nil
	}
	return o.m
}

func (o *storeMetrics) store() store.Observer {
	if o == nil {
		return nil
	}
	return o.m
}

// listen registers the usage of bs and serves the metrics on addr;
// announce says where.
func (o *storeMetrics) listen(addr string, bs *disk.Store, log *zap.Logger) error {
	if o == nil {
		return nil
	}
	metrics.RegisterUsage(o.reg, bs.Stat)
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
func (o *storeMetrics) announce() {
	if o != nil && o.srv != nil {
		fmt.Printf("metrics on %s\n", o.srv.Addr())
	}
}

func (o *storeMetrics) close() {
	if o != nil && o.srv != nil {
		o.srv.Close()
	}
}
