package manager

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ckptio/ckptio/storage/catalog"
)

func TestAPIRetentionPinDelete(t *testing.T) {
	ctx := context.Background()
	_, srv, c := serve(t, Options{})
	r, err := c.Retention(ctx, "heat")
	wantErr(t, err, catalog.ErrUnknownJob, "heat")
	deleted, err := c.SetRetention(ctx, "heat", catalog.Retention{KeepLast: 2, KeepWithin: catalog.Duration(time.Nanosecond)})
	if err != nil || len(deleted) != 0 {
		t.Fatalf("set: %v, %v", deleted, err)
	}
	if r, err = c.Retention(ctx, "heat"); err != nil || r.KeepLast != 2 || r.KeepWithin != catalog.Duration(time.Nanosecond) {
		t.Fatalf("get: %+v, %v", r, err)
	}
	for i := range 4 {
		txn, err := c.Begin(ctx, "heat")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Commit(ctx, txn.ID, marshal(t, testManifest("heat", i+1))); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if vi, err := c.Pin(ctx, "heat", 1); err != nil || !vi.Pinned || vi.Version != 1 {
				t.Fatalf("pin: %+v, %v", vi, err)
			}
		}
	}
	vs, err := c.Versions(ctx, "heat")
	if err != nil || len(vs) != 3 || vs[0].Version != 1 || !vs[0].Pinned || vs[1].Version != 3 || vs[1].Pinned {
		t.Fatalf("versions %+v, %v", vs, err)
	}
	_, err = c.DeleteVersion(ctx, "heat", 1)
	wantErr(t, err, catalog.ErrPinned, "unpin it first")
	if vi, err := c.Unpin(ctx, "heat", 1); err != nil || vi.Pinned {
		t.Fatalf("unpin: %+v, %v", vi, err)
	}
	deleted, err = c.SetRetention(ctx, "heat", catalog.Retention{KeepLast: 1})
	if err != nil || !slices.Equal(deleted, []int64{1, 3}) {
		t.Fatalf("keep last 1: deleted %v, %v", deleted, err)
	}
	if vi, err := c.DeleteVersion(ctx, "heat", 4); err != nil || vi.Version != 4 {
		t.Fatalf("delete: %+v, %v", vi, err)
	}
	_, err = c.Version(ctx, "heat", 0)
	wantErr(t, err, catalog.ErrNoVersions, "")
	_, err = c.DeleteVersion(ctx, "heat", 4)
	wantErr(t, err, catalog.ErrNoVersions, "")
	_, err = c.DeleteVersion(ctx, "heat", 0)
	wantErr(t, err, catalog.ErrInvalid, "positive")
	_, err = c.Pin(ctx, "nojob", 1)
	wantErr(t, err, catalog.ErrUnknownJob, "nojob")
	_, err = c.SetRetention(ctx, "heat", catalog.Retention{KeepEvery: -2})
	wantErr(t, err, catalog.ErrInvalid, "negative")

	now := time.Now()
	for _, tt := range []struct {
		method, path, body string
		status             int
		msg                string
	}{
		{"DELETE", "/v1/jobs/heat/versions/latest", "", 400, "positive version number"},
		{"DELETE", "/v1/jobs/heat/versions/-1", "", 400, "positive version number"},
		{"PUT", "/v1/jobs/heat/retention", `{"keep_within":"forever"}`, 400, "duration"},
		{"PUT", "/v1/jobs/heat/retention", `{"keep_last":1,"extra":2}`, 400, "unknown field"},
		{"POST", "/v1/jobs/heat/versions/1/pin", `{}`, 400, "no body"},
		{"POST", "/v1/gc", `{"dry_run":true,"extra":1}`, 400, "unknown field"},
	} {
		status, eb := raw(t, srv, testToken, now, tt.method, tt.path, "application/json", []byte(tt.body))
		if status != tt.status || !strings.Contains(eb.Error, tt.msg) {
			t.Fatalf("%s %s: HTTP %d %+v, want %d containing %q", tt.method, tt.path, status, eb, tt.status, tt.msg)
		}
	}
}

func TestAPIGC(t *testing.T) {
	ctx := context.Background()
	// One clock for the manager and the store, near the real one (requests
	// are signed with the real one).
	clock := &fakeClock{t: time.Now()}
	s := newFakeStore(clock.Now)
	gate := make(chan struct{})
	_, srv, c := serve(t, Options{Now: clock.Now, GCClockSkew: -1, GCEvery: -1, DialStore: func(ctx context.Context, id, addr string) (GCStore, error) {
		return s, nil
	}})
	if err := c.Heartbeat(ctx, catalog.Heartbeat{ID: "s1", Addr: "127.0.0.1:9"}); err != nil {
		t.Fatal(err)
	}
	s.put("live", "orphan")
	txn, _ := c.Begin(ctx, "j")
	if _, err := c.Commit(ctx, txn.ID, marshal(t, keysManifest("j", "live"))); err != nil {
		t.Fatal(err)
	}
	clock.Add(2 * gcDriftMargin) // the orphan is older than the horizon on the store's clock
	st, err := c.GCStatus(ctx)
	if err != nil || st.Running || st.Last != nil {
		t.Fatalf("status before: %+v, %v", st, err)
	}
	s.mu.Lock()
	s.mu.gate = gate
	s.mu.Unlock()
	done := make(chan catalog.GCReport, 1)
	go func() {
		rep, err := c.GC(ctx)
		if err != nil {
			t.Error(err)
		}
		done <- rep
	}()
	for {
		if st, _ := c.GCStatus(ctx); st.Running {
			break
		}
		time.Sleep(time.Millisecond)
	}
	_, err = c.GC(ctx)
	wantErr(t, err, catalog.ErrGCRunning, "already running")
	if status, eb := raw(t, srv, testToken, time.Now(), "POST", "/v1/gc", "", nil); status != http.StatusConflict || eb.Code != catalog.CodeGCRunning {
		t.Fatalf("second GC: HTTP %d %+v", status, eb)
	}
	clock.Add(time.Millisecond) // the collection takes that long
	close(gate)
	rep := <-done
	if len(rep.Stores) != 1 || rep.Stores[0].Listed != 2 || rep.FreedBytes != fakeBlockSize || rep.Unreferenced != 1 || rep.Took <= 0 {
		t.Fatalf("report %+v", rep)
	}
	if !s.holds("live") || s.holds("orphan") {
		t.Fatal("wrong blocks collected")
	}
	if st, err := c.GCStatus(ctx); err != nil || st.Running || st.Last == nil || st.Last.FreedBytes != fakeBlockSize {
		t.Fatalf("status after: %+v, %v", st, err)
	}
}
