// Package metrics exposes the daemons' figures to Prometheus: Store
// observes a ckpt-store (storage/store's requests, storage/disk's syncs,
// its usage), Manager observes a ckpt-manager (commits, GC, repair, HTTP
// requests, stores alive and dead), and Listen serves a registry at
// /metrics. Every metric is listed in docs/metrics.md; a test fails when
// one is missing there.
//
// The lower layers do not import Prometheus: they define small observer
// interfaces (store.Observer, disk.Observer, manager.Observer) that the
// types here implement, so a daemon run without --metrics-listen pays
// nothing. This package does not import storage/manager (a store must not
// link bbolt); it implements manager.Observer by its method set.
package metrics
