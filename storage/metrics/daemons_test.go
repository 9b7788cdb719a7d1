package metrics_test

import (
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/ckptio/ckptio/storage/cluster/clustertest"
	"github.com/ckptio/ckptio/storage/token"
)

// scrape GETs http://addr/metrics and parses it with Prometheus's text
// parser.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("scraping %s: %v", addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("scraping %s: %s: %s", addr, resp.Status, b)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("scraping %s: Content-Type %q, want the text format", addr, ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing the metrics of %s: %v", addr, err)
	}
	return fams
}

// value sums the samples of the family name whose labels include want
// (counters, gauges; the sample count for histograms). A missing family
// sums to 0.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	f := fams[name]
	if f == nil {
		return 0
	}
	var sum float64
next:
	for _, m := range f.GetMetric() {
		for k, v := range want {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Histogram != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum
}

// sumOver adds value over the scrapes of several daemons.
func sumOver(scrapes []map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	var s float64
	for _, f := range scrapes {
		s += value(f, name, want)
	}
	return s
}

// metricsCluster starts a real ckpt-manager (--dead-after deadAfter)
// and two real ckpt-stores, all with --metrics-listen on a free port, and
// returns them with the metrics addresses, once both stores are alive.
func metricsCluster(t *testing.T, deadAfter string) (*clustertest.Cluster, string, []string) {
	t.Helper()
	c := &clustertest.Cluster{Bin: clustertest.Build(t), Dir: t.TempDir()}
	c.TokenFile = filepath.Join(c.Dir, "token")
	var err error
	if c.Token, err = token.Ensure(c.TokenFile); err != nil {
		t.Fatal(err)
	}
	c.Manager = clustertest.Start(t, filepath.Join(c.Bin, "ckpt-manager"), "--listen", "127.0.0.1:0",
		"--data", filepath.Join(c.Dir, "manager"), "--token-file", c.TokenFile, "--dead-after", deadAfter,
		"--metrics-listen", "127.0.0.1:0")
	mgrMetrics := c.Manager.MetricsAddr(t)
	var storeMetrics []string
	for i := range 2 {
		p := clustertest.Start(t, filepath.Join(c.Bin, "ckpt-store"), "--listen", "127.0.0.1:0", "--manager", c.Manager.Addr,
			"--dir", filepath.Join(c.Dir, "store", string(rune('a'+i))), "--quota", "1GiB", "--token-file", c.TokenFile,
			"--heartbeat", "200ms", "--metrics-listen", "127.0.0.1:0")
		c.Stores = append(c.Stores, p)
		storeMetrics = append(storeMetrics, p.MetricsAddr(t))
	}
	c.WaitAlive(t, 2)
	return c, mgrMetrics, storeMetrics
}

// TestDaemonsMetricsWhenAStoreDies: with one of two stores killed, the
// manager's metrics count it dead, and a repair pass, which has nowhere to
// put the missing copies, leaves every block of the version below its
// target of 2.
func TestDaemonsMetricsWhenAStoreDies(t *testing.T) {
	if testing.Short() {
		t.Skip("starts daemons")
	}
	c, mgrMetrics, _ := metricsCluster(t, "2s")
	work := t.TempDir()
	data := make([]byte, 1<<20)
	rand.Read(data)
	if err := os.WriteFile(filepath.Join(work, "f.bin"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := c.Run(t, work, nil, "ckpt", "put", "--replicas", "2", "--block-size", "256KiB", "dies", "f.bin"); code != 0 {
		t.Fatalf("ckpt put: exit %d\n%s%s", code, out, errOut)
	}
	c.Stores[1].Kill()
	clustertest.Eventually(t, 30*time.Second, func() bool {
		return value(scrape(t, mgrMetrics), "ckpt_manager_stores", map[string]string{"state": "dead"}) == 1
	}, func() string { return "the manager's metrics never counted the killed store dead" })
	// The repair exits non-zero when blocks stay below target; its
	// figures are what the metrics must show.
	c.Run(t, work, nil, "ckpt", "repair")
	mgr := scrape(t, mgrMetrics)
	if n := value(mgr, "ckpt_manager_blocks_below_target", nil); n != 4 {
		t.Errorf("ckpt_manager_blocks_below_target = %v, want 4: the version's 4 blocks have one live copy of 2", n)
	}
	if n := value(mgr, "ckpt_manager_stores", map[string]string{"state": "alive"}); n != 1 {
		t.Errorf("ckpt_manager_stores{state=alive} = %v, want 1", n)
	}
	if n := value(mgr, "ckpt_manager_store_up", nil); n != 1 {
		t.Errorf("ckpt_manager_store_up sums to %v over the 2 stores, want 1", n)
	}
}

// TestDaemonsMetrics runs a real ckpt-manager and two real ckpt-stores
// with --metrics-listen, puts and gets a file with the ckpt binary, and
// checks on the scraped /metrics that the counters moved.
func TestDaemonsMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("starts daemons")
	}
	c, mgrMetrics, storeMetrics := metricsCluster(t, "1m")

	scrapeStores := func() []map[string]*dto.MetricFamily {
		var out []map[string]*dto.MetricFamily
		for _, a := range storeMetrics {
			out = append(out, scrape(t, a))
		}
		return out
	}
	before := scrapeStores()
	mgrBefore := scrape(t, mgrMetrics)
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if mgrBefore[name] == nil || before[0][name] == nil {
			t.Errorf("%s missing: the Go and process collectors are not registered", name)
		}
	}
	if got := value(mgrBefore, "ckpt_manager_stores", map[string]string{"state": "alive"}); got != 2 {
		t.Errorf("ckpt_manager_stores{state=alive} = %v, want 2", got)
	}

	const size = 3 << 20
	work := t.TempDir()
	data := make([]byte, size) // random: lz4 leaves it as it is
	rand.Read(data)
	if err := os.WriteFile(filepath.Join(work, "big.bin"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := c.Run(t, work, nil, "ckpt", "put", "--replicas", "2", "metricsjob", "big.bin"); code != 0 {
		t.Fatalf("ckpt put: exit %d\n%s%s", code, out, errOut)
	}

	after := scrapeStores()
	put := map[string]string{"op": "put"}
	if d := sumOver(after, "ckpt_store_requests_total", put) - sumOver(before, "ckpt_store_requests_total", put); d < 1 {
		t.Errorf("ckpt_store_requests_total{op=put} moved by %v over both stores, want at least 1", d)
	}
	// Two copies of 3 MiB of incompressible blocks.
	if d := sumOver(after, "ckpt_store_received_bytes_total", put) - sumOver(before, "ckpt_store_received_bytes_total", put); d < 2*size {
		t.Errorf("ckpt_store_received_bytes_total{op=put} moved by %v, want at least %d", d, 2*size)
	}
	if d := sumOver(after, "ckpt_store_request_duration_seconds", put) - sumOver(before, "ckpt_store_request_duration_seconds", put); d < 1 {
		t.Errorf("ckpt_store_request_duration_seconds{op=put} observed %v more puts, want at least 1", d)
	}
	if n := sumOver(after, "ckpt_store_connections_total", map[string]string{"outcome": "accepted"}); n < 2 {
		t.Errorf("ckpt_store_connections_total{outcome=accepted} = %v over both stores, want the put's connections", n)
	}
	data1 := map[string]string{"kind": "data"}
	if d := sumOver(after, "ckpt_store_sync_duration_seconds", data1) - sumOver(before, "ckpt_store_sync_duration_seconds", data1); d < 1 {
		t.Errorf("ckpt_store_sync_duration_seconds{kind=data} observed %v more syncs, want at least 1", d)
	}
	for i, f := range after {
		if used := value(f, "ckpt_store_used_bytes", nil); used < size {
			t.Errorf("store %d: ckpt_store_used_bytes = %v, want at least %d (it holds a copy of every block)", i, used, size)
		}
		if q := value(f, "ckpt_store_quota_bytes", nil); q != 1<<30 {
			t.Errorf("store %d: ckpt_store_quota_bytes = %v, want %d", i, q, 1<<30)
		}
	}

	mgr := scrape(t, mgrMetrics)
	job := map[string]string{"job": "metricsjob"}
	if d := value(mgr, "ckpt_manager_versions_committed_total", job) - value(mgrBefore, "ckpt_manager_versions_committed_total", job); d != 1 {
		t.Errorf("ckpt_manager_versions_committed_total{job=metricsjob} moved by %v, want 1", d)
	}
	if n := value(mgr, "ckpt_manager_commit_duration_seconds", nil); n < 1 {
		t.Errorf("ckpt_manager_commit_duration_seconds observed %v commits, want at least 1", n)
	}
	commit := map[string]string{"route": "POST /v1/txns/{id}/commit", "code": "201"}
	if n := value(mgr, "ckpt_manager_http_requests_total", commit); n != 1 {
		t.Errorf("ckpt_manager_http_requests_total{route=commit,code=201} = %v, want 1", n)
	}
	if n := value(mgr, "ckpt_manager_http_requests_total", map[string]string{"route": "POST /v1/heartbeat", "code": "200"}); n < 2 {
		t.Errorf("ckpt_manager_http_requests_total{route=heartbeat,code=200} = %v, want the stores' heartbeats", n)
	}
	if n := value(mgr, "ckpt_manager_store_up", nil); n != 2 {
		t.Errorf("ckpt_manager_store_up sums to %v, want 2 alive stores", n)
	}

	// A get reads the blocks back: the stores' get counters move.
	if out, errOut, code := c.Run(t, work, nil, "ckpt", "get", "metricsjob", "--to", filepath.Join(work, "back")); code != 0 {
		t.Fatalf("ckpt get: exit %d\n%s%s", code, out, errOut)
	}
	got := scrapeStores()
	get := map[string]string{"op": "get"}
	if d := sumOver(got, "ckpt_store_sent_bytes_total", get) - sumOver(after, "ckpt_store_sent_bytes_total", get); d < size {
		t.Errorf("ckpt_store_sent_bytes_total{op=get} moved by %v, want at least %d", d, size)
	}

	// A GC and a full repair pass, asked for: their counters move, and
	// the repair finds every block at its target.
	for _, cmd := range [][]string{{"gc"}, {"repair"}} {
		if out, errOut, code := c.Run(t, work, nil, "ckpt", cmd...); code != 0 {
			t.Fatalf("ckpt %s: exit %d\n%s%s", cmd[0], code, out, errOut)
		}
	}
	mgr = scrape(t, mgrMetrics)
	ok := map[string]string{"result": "ok"}
	if n := value(mgr, "ckpt_manager_gc_runs_total", ok); n < 1 {
		t.Errorf("ckpt_manager_gc_runs_total{result=ok} = %v after ckpt gc", n)
	}
	if n := value(mgr, "ckpt_manager_repair_runs_total", ok); n < 1 {
		t.Errorf("ckpt_manager_repair_runs_total{result=ok} = %v after ckpt repair", n)
	}
	if f := mgr["ckpt_manager_blocks_below_target"]; f == nil || value(mgr, "ckpt_manager_blocks_below_target", nil) != 0 {
		t.Errorf("ckpt_manager_blocks_below_target = %v, want 0: both copies of every block are on alive stores", f)
	}
}
