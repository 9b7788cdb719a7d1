package metrics

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ckptio/ckptio/storage/catalog"
)

// Manager is the metrics of a ckpt-manager. It implements
// manager.Observer; its methods are safe for concurrent use.
type Manager struct {
	committed    *prometheus.CounterVec
	commitErrs   prometheus.Counter
	commitTime   prometheus.Histogram
	gcRuns       *prometheus.CounterVec
	gcFreed      prometheus.Counter
	gcTime       prometheus.Histogram
	repairRuns   *prometheus.CounterVec
	repairBytes  prometheus.Counter
	repairCopies prometheus.Counter
	repairTime   prometheus.Histogram
	belowTarget  prometheus.Gauge
	lost         prometheus.Gauge
	requests     *prometheus.CounterVec
	reqTime      *prometheus.HistogramVec
}

// passBuckets are the bounds, in seconds, of the GC and repair pass
// histograms: 10ms to 30 minutes.
var passBuckets = []float64{.01, .05, .1, .5, 1, 5, 10, 30, 60, 300, 600, 1800}

// NewManager registers a manager's metrics on reg; RegisterStores adds
// the stores'.
func NewManager(reg prometheus.Registerer) *Manager {
	m := &Manager{
		committed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ckpt_manager_versions_committed_total",
			Help: "Versions committed, by job."}, []string{"job"}),
		commitErrs: prometheus.NewCounter(prometheus.CounterOpts{Name: "ckpt_manager_commit_errors_total",
			Help: "Commits refused or failed (unknown or expired transaction, invalid manifest, catalog error)."}),
		commitTime: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ckpt_manager_commit_duration_seconds",
			Help: "Time of a successful commit in the manager: manifest checks, catalog write, retention.", Buckets: latencyBuckets}),
		gcRuns: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ckpt_manager_gc_runs_total",
			Help: "Garbage collections run, by result (ok, error)."}, []string{"result"}),
		gcFreed: prometheus.NewCounter(prometheus.CounterOpts{Name: "ckpt_manager_gc_freed_bytes_total",
			Help: "Bytes the stores freed for garbage collections."}),
		gcTime: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ckpt_manager_gc_duration_seconds",
			Help: "Time of a garbage collection.", Buckets: passBuckets}),
		repairRuns: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ckpt_manager_repair_runs_total",
			Help: "Repair passes run, by result (ok, error)."}, []string{"result"}),
		repairBytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "ckpt_manager_repair_copied_bytes_total",
			Help: "Stored bytes the repair copied to other stores."}),
		repairCopies: prometheus.NewCounter(prometheus.CounterOpts{Name: "ckpt_manager_repair_copies_total",
			Help: "Block copies the repair made."}),
		repairTime: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ckpt_manager_repair_duration_seconds",
			Help: "Time of a repair pass.", Buckets: passBuckets}),
		belowTarget: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ckpt_manager_blocks_below_target",
			Help: "Blocks with fewer live copies than their target after the last full repair pass (unrepaired plus lost); 0 before the first."}),
		lost: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ckpt_manager_blocks_lost",
			Help: "Blocks with no copy on an alive store at the last full repair pass; 0 before the first."}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ckpt_manager_http_requests_total",
			Help: "HTTP API requests, by route pattern and status code."}, []string{"route", "code"}),
		reqTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ckpt_manager_http_request_duration_seconds",
			Help: "Time to serve an HTTP API request, by route pattern.", Buckets: latencyBuckets}, []string{"route"}),
	}
	reg.MustRegister(m.committed, m.commitErrs, m.commitTime, m.gcRuns, m.gcFreed, m.gcTime,
		m.repairRuns, m.repairBytes, m.repairCopies, m.repairTime, m.belowTarget, m.lost, m.requests, m.reqTime)
	return m
}

func result(err error) string {
	if err != nil {
		return "error"
	}
	return "ok"
}

// Committed implements manager.Observer.
func (m *Manager) Committed(job string, took time.Duration, err error) {
	if err != nil {
		m.commitErrs.Inc()
		return
	}
	m.committed.WithLabelValues(job).Inc()
	m.commitTime.Observe(took.Seconds())
}

// GCDone implements manager.Observer.
func (m *Manager) GCDone(rep catalog.GCReport, err error) {
	m.gcRuns.WithLabelValues(result(err)).Inc()
	m.gcFreed.Add(float64(rep.FreedBytes))
	if err == nil {
		m.gcTime.Observe(time.Duration(rep.Took).Seconds())
	}
}

// RepairDone implements manager.Observer. A full pass without error (no
// job named) sets the below-target and lost gauges.
func (m *Manager) RepairDone(rep catalog.RepairReport, err error) {
	m.repairRuns.WithLabelValues(result(err)).Inc()
	m.repairBytes.Add(float64(rep.CopiedBytes))
	m.repairCopies.Add(float64(rep.Copies))
	if err != nil {
		return
	}
	m.repairTime.Observe(time.Duration(rep.Took).Seconds())
	if rep.Job == "" {
		m.belowTarget.Set(float64(rep.Unrepaired + rep.Lost))
		m.lost.Set(float64(rep.Lost))
	}
}

// Request implements manager.Observer.
func (m *Manager) Request(route string, code int, took time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(code)).Inc()
	m.reqTime.WithLabelValues(route).Observe(took.Seconds())
}

var (
	storesDesc     = prometheus.NewDesc("ckpt_manager_stores", "Stores the catalog knows, by state (alive: heartbeated within --dead-after; dead).", []string{"state"}, nil)
	storeUpDesc    = prometheus.NewDesc("ckpt_manager_store_up", "1 when the store is alive, 0 when dead.", []string{"id", "addr"}, nil)
	storeUsedDesc  = prometheus.NewDesc("ckpt_manager_store_used_bytes", "Bytes of blocks the store held at its last heartbeat.", []string{"id", "addr"}, nil)
	storeQuotDesc  = prometheus.NewDesc("ckpt_manager_store_quota_bytes", "Bytes the store may hold, as of its last heartbeat.", []string{"id", "addr"}, nil)
	storeSeenDesc  = prometheus.NewDesc("ckpt_manager_store_last_seen_timestamp_seconds", "When the store last heartbeated (Unix time).", []string{"id", "addr"}, nil)
	storeBusyDesc  = prometheus.NewDesc("ckpt_manager_store_busy", "1 while the store reports its desktop busy (quiet hours or the owner's load): repair and GC leave it alone.", []string{"id", "addr"}, nil)
	storeDrainDesc = prometheus.NewDesc("ckpt_manager_store_draining", "1 while the store is being drained ('ckpt stores drain'): no new blocks go there.", []string{"id", "addr"}, nil)
)

// RegisterStores registers on reg the gauges of the stores the catalog
// knows (alive and dead counts; per store up, used, quota, last seen),
// which stores (Manager.Stores) gives at each scrape.
func RegisterStores(reg prometheus.Registerer, stores func() []catalog.StoreInfo) {
	reg.MustRegister(storesCollector{stores})
}

// storesCollector reads the stores once per scrape.
type storesCollector struct {
	stores func() []catalog.StoreInfo
}

func (c storesCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- storesDesc
	ch <- storeUpDesc
	ch <- storeUsedDesc
	ch <- storeQuotDesc
	ch <- storeSeenDesc
	ch <- storeBusyDesc
	ch <- storeDrainDesc
}

func flag(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (c storesCollector) Collect(ch chan<- prometheus.Metric) {
	alive, dead := 0, 0
	for _, s := range c.stores() {
		up := 0.0
		if s.Alive {
			alive++
			up = 1
		} else {
			dead++
		}
		ch <- prometheus.MustNewConstMetric(storeUpDesc, prometheus.GaugeValue, up, s.ID, s.Addr)
		ch <- prometheus.MustNewConstMetric(storeUsedDesc, prometheus.GaugeValue, float64(s.Used), s.ID, s.Addr)
		ch <- prometheus.MustNewConstMetric(storeQuotDesc, prometheus.GaugeValue, float64(s.Quota), s.ID, s.Addr)
		ch <- prometheus.MustNewConstMetric(storeSeenDesc, prometheus.GaugeValue, float64(s.LastSeen.UnixNano())/1e9, s.ID, s.Addr)
		ch <- prometheus.MustNewConstMetric(storeBusyDesc, prometheus.GaugeValue, flag(s.Alive && s.Busy), s.ID, s.Addr)
		ch <- prometheus.MustNewConstMetric(storeDrainDesc, prometheus.GaugeValue, flag(s.Draining), s.ID, s.Addr)
	}
	ch <- prometheus.MustNewConstMetric(storesDesc, prometheus.GaugeValue, float64(alive), "alive")
	ch <- prometheus.MustNewConstMetric(storesDesc, prometheus.GaugeValue, float64(dead), "dead")
}
