package manager

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ckptio/ckptio/storage/catalog"
)

// obsRecorder is an Observer remembering what it heard.
type obsRecorder struct {
	mu        sync.Mutex
	committed []string // job, or "error"
	gc        []catalog.GCReport
	repair    []catalog.RepairReport
	requests  []string // "route code"
}

func (r *obsRecorder) Committed(job string, took time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		job = "error"
	}
	r.committed = append(r.committed, job)
}

func (r *obsRecorder) GCDone(rep catalog.GCReport, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gc = append(r.gc, rep)
}

func (r *obsRecorder) RepairDone(rep catalog.RepairReport, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.repair = append(r.repair, rep)
}

func (r *obsRecorder) Request(route string, code int, took time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests = append(r.requests, route+" "+http.StatusText(code))
}

// heard reports whether the observer heard the request route answered
// code.
func (r *obsRecorder) heard(route string, code int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Contains(r.requests, route+" "+http.StatusText(code))
}

// TestObserverHearsCommitsPassesAndRequests: commits (committed and
// refused), GC and repair passes, and HTTP requests by route pattern and
// status reach Options.Observer.
func TestObserverHearsCommitsPassesAndRequests(t *testing.T) {
	rec := &obsRecorder{}
	m, srv, c := serve(t, Options{Observer: rec, GCEvery: -1, RepairEvery: -1})
	ctx := context.Background()
	txn, err := c.Begin(ctx, "heat")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Commit(ctx, txn.ID, marshal(t, testManifest("heat", 2))); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Commit(ctx, "0123456789abcdef0123456789abcdef", marshal(t, testManifest("heat", 1))); err == nil {
		t.Fatal("commit of an unknown transaction succeeded")
	}
	if _, err := m.GC(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Repair(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if code, _ := raw(t, srv, testToken, time.Now(), "GET", "/v1/no-such-thing", "", nil); code != http.StatusNotFound {
		t.Fatalf("GET of an unknown path answered %d", code)
	}
	if code, _ := raw(t, srv, []byte("wrong token"), time.Now(), "GET", "/v1/stores", "", nil); code != http.StatusUnauthorized {
		t.Fatalf("a wrongly signed request answered %d", code)
	}

	// The dashboard's routes are counted too: its state without a session.
	resp, err := http.Get(srv.URL + "/ui/api/state")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	rec.mu.Lock()
	committed, gc, repair := rec.committed, len(rec.gc), len(rec.repair)
	rec.mu.Unlock()
	if !slices.Equal(committed, []string{"heat", "error"}) {
		t.Errorf("observer heard commits %v, want [heat error]", committed)
	}
	if gc != 1 || repair != 1 {
		t.Errorf("observer heard %d GC and %d repair passes, want 1 and 1", gc, repair)
	}
	// The observer hears a request once its handler returned, which may
	// be just after the client has the reply.
	want := []struct {
		route string
		code  int
	}{
		{"POST /v1/jobs/{job}/txns", http.StatusCreated},
		{"POST /v1/txns/{id}/commit", http.StatusCreated},
		{"POST /v1/txns/{id}/commit", http.StatusNotFound},
		{"other", http.StatusNotFound},
		{"GET /v1/stores", http.StatusUnauthorized},
		{"GET /ui/api/state", http.StatusUnauthorized},
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, w := range want {
		for !rec.heard(w.route, w.code) {
			if time.Now().After(deadline) {
				rec.mu.Lock()
				t.Fatalf("observer never heard %s answered %d; it heard %v", w.route, w.code, rec.requests)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}
