package metrics

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/wire"
)

// TestStoreCounts: a request's figures land on its op, an error on its
// kind too.
func TestStoreCounts(t *testing.T) {
	s := NewStore(prometheus.NewRegistry())
	s.Request(wire.OpPutBlock, wire.StatusOK, 1000, 1, time.Millisecond)
	s.Request(wire.OpPutBlock, wire.StatusQuotaExceeded, 500, 20, time.Millisecond)
	s.Request(wire.OpGetBlock, wire.StatusOK, 32, 700, time.Millisecond)
	for _, c := range []struct {
		name string
		got  float64
		want float64
	}{
		{"put requests", testutil.ToFloat64(s.requests.WithLabelValues("put")), 2},
		{"get requests", testutil.ToFloat64(s.requests.WithLabelValues("get")), 1},
		{"put bytes in", testutil.ToFloat64(s.in.WithLabelValues("put")), 1500},
		{"get bytes out", testutil.ToFloat64(s.out.WithLabelValues("get")), 700},
		{"quota errors", testutil.ToFloat64(s.errors.WithLabelValues("put", "quota_exceeded")), 1},
		{"error series", float64(testutil.CollectAndCount(s.errors)), 1},
	} {
		if c.got != c.want {
			t.Errorf("%s: %v, want %v", c.name, c.got, c.want)
		}
	}
}

// TestManagerGauges: only a full repair pass that succeeded sets the
// below-target gauges; failed passes and GCs are counted by result.
func TestManagerGauges(t *testing.T) {
	m := NewManager(prometheus.NewRegistry())
	m.RepairDone(catalog.RepairReport{Unrepaired: 2, Lost: 1, CopiedBytes: 10, Copies: 1}, nil)
	m.RepairDone(catalog.RepairReport{Job: "heat", Unrepaired: 9}, nil)
	m.RepairDone(catalog.RepairReport{Lost: 7}, errors.New("catalog closed"))
	m.GCDone(catalog.GCReport{FreedBytes: 100}, nil)
	m.GCDone(catalog.GCReport{}, errors.New("interrupted"))
	if got := testutil.ToFloat64(m.belowTarget); got != 3 {
		t.Errorf("blocks below target %v, want 3 (unrepaired plus lost of the full pass)", got)
	}
	if got := testutil.ToFloat64(m.lost); got != 1 {
		t.Errorf("blocks lost %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.repairRuns.WithLabelValues("error")); got != 1 {
		t.Errorf("failed repair runs %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.gcRuns.WithLabelValues("ok")); got != 1 {
		t.Errorf("GC runs ok %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.gcFreed); got != 100 {
		t.Errorf("GC freed %v, want 100", got)
	}
}

// TestListen: /metrics answers in the text format, any other path 404,
// and a busy address is an error that names the flag.
func TestListen(t *testing.T) {
	reg := NewRegistry()
	NewStore(reg).Request(wire.OpPing, wire.StatusOK, 0, 0, time.Microsecond)
	srv, err := Listen("127.0.0.1:0", reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + srv.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, `ckpt_store_requests_total{op="ping"} 1`) || !strings.Contains(body, "go_goroutines") {
		t.Errorf("GET /metrics: %d\n%s", code, body)
	}
	if code, _ := get("/"); code != http.StatusNotFound {
		t.Errorf("GET /: %d, want 404: only /metrics is served", code)
	}
	_, err = Listen(srv.Addr(), reg, nil)
	if err == nil || !strings.Contains(err.Error(), "--metrics-listen") {
		t.Errorf("listening on a busy address: %v; want an error naming --metrics-listen", err)
	}
}

// BenchmarkStoreRequest is the cost a store pays per request for its
// metrics (docs/metrics.md, "Cost").
func BenchmarkStoreRequest(b *testing.B) {
	s := NewStore(prometheus.NewRegistry())
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.Request(wire.OpPutBlock, wire.StatusOK, 65568, 1, 100*time.Microsecond)
		}
	})
}

// TestStoreGauges: the manager's per-store gauges follow the catalog, and
// a dead store is never reported busy.
func TestStoreGauges(t *testing.T) {
	reg := prometheus.NewRegistry()
	stores := []catalog.StoreInfo{
		{Heartbeat: catalog.Heartbeat{ID: "a", Addr: "h:1", Busy: true}, Alive: true},
		{Heartbeat: catalog.Heartbeat{ID: "b", Addr: "h:2", Busy: true}, Alive: false, Draining: true},
		{Heartbeat: catalog.Heartbeat{ID: "c", Addr: "h:3"}, Alive: true},
	}
	RegisterStores(reg, func() []catalog.StoreInfo { return stores })
	want := `
# HELP ckpt_manager_store_busy 1 while the store reports its desktop busy (quiet hours or the owner's load): repair and GC leave it alone.
# TYPE ckpt_manager_store_busy gauge
ckpt_manager_store_busy{addr="h:1",id="a"} 1
ckpt_manager_store_busy{addr="h:2",id="b"} 0
ckpt_manager_store_busy{addr="h:3",id="c"} 0
# HELP ckpt_manager_store_draining 1 while the store is being drained ('ckpt stores drain'): no new blocks go there.
# TYPE ckpt_manager_store_draining gauge
ckpt_manager_store_draining{addr="h:1",id="a"} 0
ckpt_manager_store_draining{addr="h:2",id="b"} 1
ckpt_manager_store_draining{addr="h:3",id="c"} 0
# HELP ckpt_manager_stores Stores the catalog knows, by state (alive: heartbeated within --dead-after; dead).
# TYPE ckpt_manager_stores gauge
ckpt_manager_stores{state="alive"} 2
ckpt_manager_stores{state="dead"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "ckpt_manager_store_busy", "ckpt_manager_store_draining", "ckpt_manager_stores"); err != nil {
		t.Error(err)
	}
}

// TestEndpoint: an empty --metrics-listen is a nil endpoint that does
// nothing; a served one announces the address it serves on.
func TestEndpoint(t *testing.T) {
	var off *Endpoint = NewEndpoint("")
	if off != nil {
		t.Fatalf("NewEndpoint(\"\") = %v, want nil", off)
	}
	var out strings.Builder
	if err := off.Serve(nil); err != nil {
		t.Fatal(err)
	}
	off.Announce(&out)
	off.Close()
	if out.Len() != 0 {
		t.Errorf("a nil endpoint announced %q", out.String())
	}
	ep := NewEndpoint("127.0.0.1:0")
	if err := ep.Serve(nil); err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	ep.Announce(&out)
	addr, ok := strings.CutPrefix(strings.TrimSpace(out.String()), "metrics on ")
	if !ok {
		t.Fatalf("announced %q", out.String())
	}
	resp, err := http.Get("http://" + addr + Path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET %s: %d", Path, resp.StatusCode)
	}
}
