package manager_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/ckptio/ckptio/storage/cluster/clustertest"
	"github.com/ckptio/ckptio/storage/manager"
	"github.com/ckptio/ckptio/storage/manifest"
)

// chromium returns the path of Debian's chromium, or skips the test when it
// is not installed (fails instead under CKPT_REQUIRE_CHROMIUM=1, as in CI).
func chromium(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err == nil {
		return path
	}
	if os.Getenv("CKPT_REQUIRE_CHROMIUM") == "1" {
		t.Fatalf("chromium is not installed and CKPT_REQUIRE_CHROMIUM=1: install Debian's package (apt-get install chromium): %v", err)
	}
	t.Skipf("chromium is not installed (apt-get install chromium); skipping the dashboard's browser test: %v", err)
	return ""
}

// browser starts a headless chromium with a fresh profile and returns a
// tab's context, cancelled (and the browser stopped) when the test ends.
func browser(t *testing.T, path string) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	ctx, cancelTimeout := context.WithTimeout(ctx, 5*time.Minute)
	t.Cleanup(func() {
		cancelTimeout()
		cancelTab()
		cancelAlloc()
	})
	return ctx
}

// do runs browser steps, failing the test with what was being done.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("chromium: %s: %v", what, err)
	}
}

// get runs one browser action that returns a value.
func get[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("chromium: %s: %v", what, err)
	}
	return v
}

// pageText is what the dashboard shows, read from the page's DOM.
type pageText struct {
	Stores   []string            `json:"stores"`   // each store row's text
	Versions map[string][]string `json:"versions"` // job -> its version rows' data-version
	Steps    map[string][]string `json:"steps"`    // job -> its version rows' step cell
	Txns     string              `json:"txns"`
	GC       string              `json:"gc"`
	Repair   string              `json:"repair"`
	Injected bool                `json:"injected"` // an element made from a catalog string
	Cookie   string              `json:"cookie"`   // document.cookie
}

const readPage = `(() => {
  const rows = (sel) => [...document.querySelectorAll(sel)];
  const out = {stores: rows('#stores tbody tr').map(r => r.innerText), versions: {}, steps: {},
    txns: document.querySelector('#txns').innerText, gc: document.querySelector('#gc').innerText,
    repair: document.querySelector('#repair').innerText,
    injected: document.getElementById('xss') !== null, cookie: document.cookie};
  for (const tb of rows('table.versions')) {
    const job = tb.dataset.job;
    out.versions[job] = rows('table.versions[data-job="' + job + '"] tbody tr[data-version]').map(r => r.dataset.version);
    out.steps[job] = rows('table.versions[data-job="' + job + '"] tbody tr[data-version]').map(r => r.children[1].innerText);
  }
  return out;
})()`

// TestDashboardInChromium opens the dashboard of a real ckpt-manager with
// three real ckpt-store processes in headless chromium: a wrong token is
// refused with a message and no data, the right one shows the stores, the
// jobs' versions (put with the ckpt tool), a transaction in flight and the
// last garbage collection and repair, and the page follows a deleted and a
// new version and a store that dies by itself.
func TestDashboardInChromium(t *testing.T) {
	chrome := chromium(t)
	c := clustertest.NewCluster(t, clustertest.Options{Stores: 3, Labels: true})
	base := "http://" + c.Manager.Addr
	work := t.TempDir()
	put := func(seed int64) {
		t.Helper()
		writeRandom(t, filepath.Join(work, "state.bin"), 3<<20, seed)
		if out, errOut, code := c.Run(t, work, nil, "ckpt", "put", "--manager", c.Manager.Addr, "heat-demo", "state.bin"); code != 0 {
			t.Fatalf("put: code %d, %s %s", code, out, errOut)
		}
	}
	put(1)
	put(2)
	// An MPI-like version with a step, and one whose step is markup: the
	// page must show it as text. Then a transaction left in flight.
	ctx := context.Background()
	cl := c.Client()
	for _, step := range []string{"100", "150", `<img id="xss" src="/x">`} {
		txn, err := cl.Begin(ctx, "wave")
		if err != nil {
			t.Fatal(err)
		}
		data, err := manifest.Marshal(&manifest.Manifest{Job: "wave", Kind: manifest.KindMPI, Created: time.Now(), Meta: map[string]string{"step": step}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cl.Commit(ctx, txn.ID, data); err != nil {
			t.Fatal(err)
		}
	}
	inflight, err := cl.Begin(ctx, "wave")
	if err != nil {
		t.Fatal(err)
	}
	for _, cmd := range [][]string{{"gc"}, {"repair"}} {
		if out, errOut, code := c.Run(t, work, nil, "ckpt", cmd...); code != 0 {
			t.Fatalf("ckpt %s: code %d, %s %s", cmd[0], code, out, errOut)
		}
	}

	// Plain HTTP: the state is refused without a session.
	resp, err := http.Get(base + "/ui/api/state")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET /ui/api/state without a cookie: HTTP %d", resp.StatusCode)
	}

	tab := browser(t, chrome)
	sessionCookie := func() *network.Cookie {
		t.Helper()
		res, err := chromedp.Call(tab, network.GetCookies, network.GetCookiesParams{URLs: []string{base + "/ui/"}})
		if err != nil {
			t.Fatalf("chromium: reading cookies: %v", err)
		}
		i := slices.IndexFunc(res.Cookies, func(ck *network.Cookie) bool { return ck.Name == manager.SessionCookie })
		if i < 0 {
			return nil
		}
		return res.Cookies[i]
	}

	// A wrong token: the message, no cookie, no data.
	do(t, tab, "logging in with a wrong token",
		chromedp.Navigate(base+"/ui/"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), "not-the-cluster-token"),
		chromedp.Click(chromedp.ID("login-button")),
		chromedp.WaitVisible(chromedp.ID("login-error")),
	)
	msg := get(t, tab, "reading the error", chromedp.Text(chromedp.ID("login-error")))
	loc := get(t, tab, "reading the location", chromedp.Location())
	noData := get(t, tab, "looking for data", chromedp.Evaluate[bool](`document.querySelector('#stores') === null && document.querySelector('#jobs') === null`))
	if !strings.Contains(msg, "Wrong token") || !noData || !strings.HasSuffix(loc, "/ui/login") {
		t.Fatalf("after a wrong token: message %q, no data %v, at %s", msg, noData, loc)
	}
	if ck := sessionCookie(); ck != nil {
		t.Fatalf("a wrong token got a session cookie: %+v", ck)
	}

	// The right token: the dashboard, with everything in it.
	do(t, tab, "logging in",
		chromedp.SendKeys(chromedp.ID("token"), string(c.Token)),
		chromedp.Click(chromedp.ID("login-button")),
		chromedp.WaitReady(chromedp.CSS(`body[data-loaded="true"]`)),
	)
	page := get(t, tab, "reading the dashboard", chromedp.Evaluate[pageText](readPage))
	ck := sessionCookie()
	if ck == nil || !ck.HTTPOnly || ck.SameSite != network.CookieSameSiteStrict || ck.Value == string(c.Token) || page.Cookie != "" {
		t.Fatalf("session cookie %+v; document.cookie %q", ck, page.Cookie)
	}
	if len(page.Stores) != len(c.Stores) {
		t.Fatalf("the page lists %d stores, want %d: %q", len(page.Stores), len(c.Stores), page.Stores)
	}
	for i, s := range c.Stores {
		label := fmt.Sprintf("store-%d", i) // clustertest's Labels
		if !slices.ContainsFunc(page.Stores, func(row string) bool {
			return strings.Contains(row, s.Addr) && strings.Contains(row, "alive") && strings.Contains(row, label)
		}) {
			t.Errorf("no row for store %s (%s) alive in %q", s.Addr, label, page.Stores)
		}
	}
	if got := page.Versions["heat-demo"]; !slices.Equal(got, []string{"2", "1"}) {
		t.Errorf("heat-demo versions on the page %v, want [2 1]", got)
	}
	if got := page.Steps["wave"]; !slices.Equal(got, []string{`<img id="xss" src="/x">`, "150", "100"}) {
		t.Errorf("wave steps on the page %q", got)
	}
	if page.Injected {
		t.Errorf("a step from the catalog became an element of the page")
	}
	if !strings.Contains(page.Txns, inflight.ID) || !strings.Contains(page.Txns, "wave") {
		t.Errorf("the transaction in flight %s is not shown: %q", inflight.ID, page.Txns)
	}
	for name, text := range map[string]string{"gc": page.GC, "repair": page.Repair} {
		if strings.Contains(text, "None since") || !strings.Contains(text, "Took") {
			t.Errorf("the last %s is not shown: %q", name, text)
		}
	}

	// The page refreshes itself: a deleted version goes and a new one
	// shows up without a reload.
	if out, errOut, code := c.Run(t, work, nil, "ckpt", "delete", "wave", "--version", "3"); code != 0 {
		t.Fatalf("delete: code %d, %s %s", code, out, errOut)
	}
	put(3)
	get(t, tab, "waiting for the page to show the deletion and the new version on its own",
		chromedp.Poll[bool](`document.querySelector('table.versions[data-job="heat-demo"] tr[data-version="3"]') !== null &&
			document.querySelector('table.versions[data-job="wave"] tr[data-version="3"]') === null`,
			chromedp.WithPollingTimeout(time.Minute), chromedp.WithPollingInterval(200*time.Millisecond)))

	// The real stores report their byte counters: every row's bandwidth
	// becomes a rate once two of its heartbeats were seen.
	get(t, tab, "waiting for every store's bandwidth",
		chromedp.Poll[bool](`[...document.querySelectorAll('#stores tbody tr td.bw')].every(td => td.innerText.endsWith('/s'))`,
			chromedp.WithPollingTimeout(time.Minute), chromedp.WithPollingInterval(200*time.Millisecond)))

	// A store that stops heartbeating shows as dead.
	gone := c.Stores[len(c.Stores)-1]
	gone.Kill()
	get(t, tab, "waiting for the killed store to show as dead",
		chromedp.PollFunction[bool](`(addr) => [...document.querySelectorAll('#stores tbody tr')].some(
			r => r.innerText.includes(addr) && r.innerText.includes('dead'))`,
			chromedp.WithPollingArgs(gone.Addr), chromedp.WithPollingTimeout(time.Minute), chromedp.WithPollingInterval(200*time.Millisecond)))

	if os.Getenv("CKPT_UPDATE_SCREENSHOT") == "1" {
		png := get(t, tab, "taking the screenshot", chromedp.FullScreenshot(100))
		if err := os.WriteFile(filepath.Join("..", "..", "docs", "dashboard.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// Logout: back to the form, and the state is refused again.
	do(t, tab, "logging out",
		chromedp.Click(chromedp.ID("logout")),
		chromedp.WaitVisible(chromedp.ID("token")),
	)
	status := get(t, tab, "reading the state after logout",
		chromedp.Evaluate[int](`fetch('/ui/api/state').then(r => r.status)`, chromedp.EvalAwaitPromise))
	if ck := sessionCookie(); status != http.StatusUnauthorized || ck != nil {
		t.Fatalf("after logout: state HTTP %d, cookie %+v", status, ck)
	}
}

// TestDashboardLabelsAndBandwidthInChromium renders, in chromium, the
// store fields a store's heartbeat may carry beyond its usage (a label and
// cumulative byte counters): the real page and login of a manager, with
// its state endpoint replaced by a sequence of states whose counters grow
// by 1 MiB per second of heartbeat time. The label is markup, and must show
// as text; a store without counters shows "—".
func TestDashboardLabelsAndBandwidthInChromium(t *testing.T) {
	chrome := chromium(t)
	token := []byte("dashboard-test-token")
	m, err := manager.Open(t.TempDir(), manager.Options{Token: token, GCEvery: -1, RepairEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var mu sync.Mutex
	served := 0
	mux := http.NewServeMux()
	mux.Handle("/", m.Handler())
	mux.HandleFunc("GET /ui/api/state", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		k := served
		served++
		mu.Unlock()
		seen := t0.Add(time.Duration(k) * time.Second)
		state := map[string]any{
			"now": seen,
			"stores": []map[string]any{
				{"id": "st-a", "addr": "10.0.0.1:7171", "label": `<b id="xss">lab-desk-7</b>`, "alive": true, "used": 1 << 30, "quota": 4 << 30,
					"blocks": 100, "last_seen": seen, "bytes_in": k << 19, "bytes_out": k << 19},
				{"id": "st-b", "addr": "10.0.0.2:7171", "alive": true, "used": 0, "quota": 1 << 30, "blocks": 0, "last_seen": seen,
					"draining": true, "busy": true, "busy_reason": "quiet hours 09:00-17:00"},
			},
			"jobs": []any{}, "txns": []any{},
			"gc": map[string]any{"running": false, "last": nil}, "repair": map[string]any{"running": false, "last": nil},
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(state)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close) // after the browser's cleanup: it runs first

	tab := browser(t, chrome)
	do(t, tab, "logging in",
		chromedp.Navigate(srv.URL+"/ui/"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), string(token)),
		chromedp.Click(chromedp.ID("login-button")),
		chromedp.WaitReady(chromedp.CSS(`body[data-loaded="true"]`)),
	)
	rate := get(t, tab, "waiting for a second sample of the counters",
		chromedp.Poll[string](`(() => { const c = document.querySelector('tr[data-store="st-a"] td.bw'); return c && c.textContent !== '…' && c.textContent; })()`,
			chromedp.WithPollingTimeout(time.Minute), chromedp.WithPollingInterval(100*time.Millisecond)))
	if rate != "1.00 MiB/s" {
		t.Errorf("st-a's bandwidth %q, want 1.00 MiB/s", rate)
	}
	type row struct {
		Text     string `json:"text"`
		State    string `json:"state"`
		Why      string `json:"why"`
		BW       string `json:"bw"`
		Injected bool   `json:"injected"`
	}
	rows := get(t, tab, "reading the stores", chromedp.Evaluate[[]row](`[...document.querySelectorAll('#stores tbody tr')].map(r => ({
		text: r.children[0].textContent, state: r.children[2].textContent,
		why: [...r.children[2].querySelectorAll('.badge')].map(b => b.title).join(''),
		bw: r.querySelector('td.bw').textContent, injected: document.getElementById('xss') !== null}))`))
	if len(rows) != 2 || rows[0].Text != `<b id="xss">lab-desk-7</b>st-a` || rows[0].Injected || rows[1].Text != "st-b" || rows[1].BW != "—" ||
		rows[0].State != "alive" || rows[1].State != "alive draining busy" || rows[1].Why != "quiet hours 09:00-17:00" {
		t.Fatalf("store rows %+v", rows)
	}
}
