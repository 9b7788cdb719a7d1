package main

import (
	"github.com/ckptio/ckptio/storage/disk"
	"github.com/ckptio/ckptio/storage/metrics"
	"github.com/ckptio/ckptio/storage/store"
)

// storeMetrics is the store's --metrics-listen: nil when it is off, so
// the store and its disk observe nothing.
type storeMetrics struct {
	ep *metrics.Endpoint
	m  *metrics.Store
}

func newStoreMetrics(addr string) *storeMetrics {
	ep := metrics.NewEndpoint(addr)
	if ep == nil {
		return nil
	}
	return &storeMetrics{ep: ep, m: metrics.NewStore(ep.Registry())}
}

// The observers are nil interfaces, not nil pointers, when metrics are off.

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

// endpoint registers the usage of bs and returns the endpoint to serve
// (nil when metrics are off).
func (o *storeMetrics) endpoint(bs *disk.Store) *metrics.Endpoint {
	if o == nil {
		return nil
	}
	metrics.RegisterUsage(o.ep.Registry(), bs.Stat)
	return o.ep
}
