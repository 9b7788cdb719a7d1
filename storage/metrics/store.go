package metrics

import (
	"context"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/wire"
)

// latencyBuckets are the bounds, in seconds, of the latency histograms:
// 100µs (a get from the page cache) to 10s (a sync on a busy disk).
var latencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// Store is the metrics of one ckpt-store. It implements store.Observer
// (requests) and disk.Observer (syncs); its methods are safe for
// concurrent use.
type Store struct {
	requests *prometheus.CounterVec
	errors   *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	in, out  *prometheus.CounterVec
	syncs    *prometheus.HistogramVec
	syncErrs *prometheus.CounterVec
	conns    *prometheus.CounterVec
}

// NewStore registers a store's request and sync metrics on reg;
// RegisterUsage adds its usage.
func NewStore(reg prometheus.Registerer) *Store {
	s := &Store{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ckpt_store_requests_total",
			Help: "Requests answered, by op (put, get, has, delete, list, stat, ping), failed ones included."}, []string{"op"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ckpt_store_errors_total",
			Help: "Requests answered with an error, by op and kind (the wire status: quota_exceeded, not_found, ...)."}, []string{"op", "kind"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ckpt_store_request_duration_seconds",
			Help: "Time from a request read in full to its reply ready, by op.", Buckets: latencyBuckets}, []string{"op"}),
		in: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ckpt_store_received_bytes_total",
			Help: "Payload bytes of the requests answered, by op (a put's block is most of it)."}, []string{"op"}),
		out: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ckpt_store_sent_bytes_total",
			Help: "Payload bytes of the replies, by op (a get's block is most of it)."}, []string{"op"}),
		syncs: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ckpt_store_sync_duration_seconds",
			Help: "Time of each sync: kind data is an fdatasync of a pack or block file, dir an fsync of a directory.", Buckets: latencyBuckets}, []string{"kind"}),
		syncErrs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ckpt_store_sync_errors_total",
			Help: "Syncs that failed, by kind (data, dir)."}, []string{"kind"}),
		conns: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ckpt_store_connections_total",
			Help: "Connections begun, by outcome: accepted, unauthorized (wrong cluster token), busy (refused at the connection limit), failed (other handshake failures)."}, []string{"outcome"}),
	}
	reg.MustRegister(s.requests, s.errors, s.latency, s.in, s.out, s.syncs, s.syncErrs, s.conns)
	return s
}

// Request implements store.Observer.
func (s *Store) Request(op wire.Op, st wire.Status, in, out int, took time.Duration) {
	name := op.String()
	s.requests.WithLabelValues(name).Inc()
	if st != wire.StatusOK {
		s.errors.WithLabelValues(name, kind(st)).Inc()
	}
	s.latency.WithLabelValues(name).Observe(took.Seconds())
	s.in.WithLabelValues(name).Add(float64(in))
	s.out.WithLabelValues(name).Add(float64(out))
}

// Connection implements store.Observer.
func (s *Store) Connection(outcome string) { s.conns.WithLabelValues(outcome).Inc() }

// Synced implements disk.Observer.
func (s *Store) Synced(kind string, took time.Duration, err error) {
	s.syncs.WithLabelValues(kind).Observe(took.Seconds())
	if err != nil {
		s.syncErrs.WithLabelValues(kind).Inc()
	}
}

// kind names a status as a label value: "quota exceeded" is
// quota_exceeded.
func kind(st wire.Status) string { return strings.ReplaceAll(st.String(), " ", "_") }

var (
	usedDesc  = prometheus.NewDesc("ckpt_store_used_bytes", "Bytes of blocks the store holds.", []string{"id"}, nil)
	quotaDesc = prometheus.NewDesc("ckpt_store_quota_bytes", "Bytes the store may hold (--quota).", []string{"id"}, nil)
	blockDesc = prometheus.NewDesc("ckpt_store_blocks", "Blocks the store holds.", []string{"id"}, nil)
	freeDesc  = prometheus.NewDesc("ckpt_store_disk_free_bytes", "Free bytes of the file system under the store's directory.", []string{"id"}, nil)
)

// RegisterUsage registers on reg the gauges of a store's usage (used,
// quota, blocks, disk free, labelled with the store's ID), which stat
// gives at each scrape. A failed stat fails the scrape of those gauges
// only.
func RegisterUsage(reg prometheus.Registerer, stat func(context.Context) (storage.Stat, error)) {
	reg.MustRegister(usageCollector{stat})
}

// usageCollector reads the store's usage once per scrape.
type usageCollector struct {
	stat func(context.Context) (storage.Stat, error)
}

func (c usageCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- usedDesc
	ch <- quotaDesc
	ch <- blockDesc
	ch <- freeDesc
}

func (c usageCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := c.stat(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(usedDesc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(usedDesc, prometheus.GaugeValue, float64(st.Used), st.ID)
	ch <- prometheus.MustNewConstMetric(quotaDesc, prometheus.GaugeValue, float64(st.Quota), st.ID)
	ch <- prometheus.MustNewConstMetric(blockDesc, prometheus.GaugeValue, float64(st.Blocks), st.ID)
	ch <- prometheus.MustNewConstMetric(freeDesc, prometheus.GaugeValue, float64(st.DiskFree), st.ID)
}
