package manager

import (
	"net/http"
	"time"

	"github.com/ckptio/ckptio/storage/catalog"
)

// Observer is told of what the manager does, for metrics (storage/metrics
// implements it with Prometheus). Its methods are called from the
// goroutine that did the work (an HTTP handler, the GC or repair loop),
// possibly concurrently; they must be quick and must not block. The
// alive and dead stores are not reported: a collector reads Stores when
// it is scraped.
type Observer interface {
	// Committed reports a commit: the job of the version committed
	// (empty when the commit failed before the job was known) and how
	// long the commit took, manifest checks and catalog write included.
	Committed(job string, took time.Duration, err error)
	// GCDone reports a garbage collection that ran to its end (err nil)
	// or failed; rep is what it did.
	GCDone(rep catalog.GCReport, err error)
	// RepairDone reports a repair pass, for every job (rep.Job empty) or
	// one.
	RepairDone(rep catalog.RepairReport, err error)
	// Request reports an HTTP request: the pattern of the route that
	// served it ("POST /v1/txns/{id}/commit"; "other" for unknown
	// paths), the status code answered and how long it took.
	Request(route string, code int, took time.Duration)
}

type nopObserver struct{}

func (nopObserver) Committed(string, time.Duration, error) {}
func (nopObserver) GCDone(catalog.GCReport, error)         {}
func (nopObserver) RepairDone(catalog.RepairReport, error) {}
func (nopObserver) Request(string, int, time.Duration)     {}

// observer is the Options' Observer, or one that observes nothing.
func (m *Manager) observer() Observer {
	if m.opts.Observer == nil {
		return nopObserver{}
	}
	return m.opts.Observer
}

// observeCommit reports the commit begun at start; deferred by Commit.
func (m *Manager) observeCommit(start time.Time, vi *catalog.VersionInfo, err *error) {
	m.observer().Committed(vi.Job, time.Since(start), *err)
}

// observed wraps the handler of route so that Observer.Request hears of
// each request it serves.
func (m *Manager) observed(route string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		h(sw, r)
		code := sw.code
		if code == 0 {
			code = http.StatusOK // nothing written: net/http answers 200
		}
		m.observer().Request(route, code, time.Since(start))
	}
}

// statusWriter remembers the status code a handler answered.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap gives http.ResponseController the writer underneath.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
