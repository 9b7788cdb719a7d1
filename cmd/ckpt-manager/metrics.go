package main

import (
	"github.com/ckptio/ckptio/storage/manager"
	"github.com/ckptio/ckptio/storage/metrics"
)

// managerMetrics is the manager's --metrics-listen: nil when it is off,
// so the manager observes nothing.
type managerMetrics struct {
	ep *metrics.Endpoint
	m  *metrics.Manager
}

func newManagerMetrics(addr string) *managerMetrics {
	ep := metrics.NewEndpoint(addr)
	if ep == nil {
		return nil
	}
	return &managerMetrics{ep: ep, m: metrics.NewManager(ep.Registry())}
}

// observer is a nil interface, not a nil pointer, when metrics are off.
func (o *managerMetrics) observer() manager.Observer {
	if o == nil {
		return nil
	}
	return o.m
}

// endpoint registers the stores of m and returns the endpoint to serve
// (nil when metrics are off).
func (o *managerMetrics) endpoint(m *manager.Manager) *metrics.Endpoint {
	if o == nil {
		return nil
	}
	metrics.RegisterStores(o.ep.Registry(), m.Stores)
	return o.ep
}
