package manager

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/catalog"
)

// uiServer serves m's handler over plain HTTP (or TLS) and returns a
// client that does not follow redirects, so that each answer is seen.
func uiServer(t *testing.T, m *Manager, tls bool) (*httptest.Server, *http.Client) {
	t.Helper()
	var srv *httptest.Server
	if tls {
		srv = httptest.NewTLSServer(m.Handler())
	} else {
		srv = httptest.NewServer(m.Handler())
	}
	t.Cleanup(srv.Close)
	c := srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return srv, c
}

type uiResp struct {
	status int
	header http.Header
	body   string
	cookie *http.Cookie // the session cookie set, if any
}

func uiDo(t *testing.T, c *http.Client, method, u string, form url.Values, cookie *http.Cookie, hdr map[string]string) uiResp {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if cookie != nil {
		req.AddCookie(&http.Cookie{Name: cookie.Name, Value: cookie.Value})
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := uiResp{status: resp.StatusCode, header: resp.Header, body: string(data)}
	for _, ck := range resp.Cookies() {
		if ck.Name == SessionCookie {
			r.cookie = ck
		}
	}
	return r
}

// login posts the token and returns the session cookie, failing the test
// when there is none.
func login(t *testing.T, c *http.Client, base string, token string) *http.Cookie {
	t.Helper()
	r := uiDo(t, c, "POST", base+"/ui/login", url.Values{"token": {token}}, nil, nil)
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/ui/" || r.cookie == nil {
		t.Fatalf("login: HTTP %d, Location %q, cookie %v, body %q", r.status, r.header.Get("Location"), r.cookie, r.body)
	}
	return r.cookie
}

func TestDashboardLogin(t *testing.T) {
	m := open(t, t.TempDir(), newClock())
	srv, c := uiServer(t, m, false)

	r := uiDo(t, c, "GET", srv.URL+"/", nil, nil, nil)
	if r.status != http.StatusFound || r.header.Get("Location") != "/ui/" {
		t.Fatalf("GET /: HTTP %d, Location %q", r.status, r.header.Get("Location"))
	}
	// Not logged in: the page sends to the login form, the state refuses.
	r = uiDo(t, c, "GET", srv.URL+"/ui/", nil, nil, nil)
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/ui/login" {
		t.Fatalf("GET /ui/ without a session: HTTP %d, Location %q", r.status, r.header.Get("Location"))
	}
	r = uiDo(t, c, "GET", srv.URL+"/ui/api/state", nil, nil, nil)
	if r.status != http.StatusUnauthorized || !strings.Contains(r.body, "log in") || strings.Contains(r.body, `"stores"`) {
		t.Fatalf("state without a session: HTTP %d, %s", r.status, r.body)
	}
	r = uiDo(t, c, "GET", srv.URL+"/ui/login", nil, nil, nil)
	if r.status != http.StatusOK || !strings.Contains(r.body, `name="token"`) || strings.Contains(r.body, "login-error") {
		t.Fatalf("login page: HTTP %d, %s", r.status, r.body)
	}
	if got := r.header.Get("Content-Security-Policy"); got != contentSecurityPolicy {
		t.Fatalf("CSP %q", got)
	}

	// A wrong token: a clear message, no cookie.
	r = uiDo(t, c, "POST", srv.URL+"/ui/login", url.Values{"token": {"not-the-token"}}, nil, nil)
	if r.status != http.StatusUnauthorized || r.cookie != nil || !strings.Contains(r.body, "Wrong token") ||
		!strings.Contains(r.body, "--token-file") || len(r.header.Values("Set-Cookie")) != 0 {
		t.Fatalf("wrong token: HTTP %d, cookie %v, body %s", r.status, r.cookie, r.body)
	}
	// The right token in the URL is refused, on the form and on the page.
	r = uiDo(t, c, "POST", srv.URL+"/ui/login?token="+url.QueryEscape(string(testToken)), url.Values{}, nil, nil)
	if r.status != http.StatusBadRequest || r.cookie != nil || !strings.Contains(r.body, "never takes the token from the URL") {
		t.Fatalf("token in the URL of the form: HTTP %d, cookie %v, body %s", r.status, r.cookie, r.body)
	}
	r = uiDo(t, c, "GET", srv.URL+"/ui/login?token="+url.QueryEscape(string(testToken)), nil, nil, nil)
	if r.status != http.StatusBadRequest || r.cookie != nil || !strings.Contains(r.body, "never takes the token from the URL") {
		t.Fatalf("token in the URL of the page: HTTP %d, cookie %v, body %s", r.status, r.cookie, r.body)
	}
	r = uiDo(t, c, "POST", srv.URL+"/ui/login", url.Values{"token": {"  "}}, nil, nil)
	if r.status != http.StatusBadRequest || r.cookie != nil || !strings.Contains(r.body, "Paste the cluster token") {
		t.Fatalf("empty token: HTTP %d, body %s", r.status, r.body)
	}

	// The right token, pasted with a newline: a session cookie that is
	// not the token.
	ck := login(t, c, srv.URL, string(testToken)+"\n")
	if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Secure || ck.Path != "/ui/" ||
		ck.MaxAge != int(SessionTTL/time.Second) || ck.Expires.IsZero() {
		t.Fatalf("session cookie %+v", ck)
	}
	for _, leak := range []string{string(testToken), hex.EncodeToString(testToken)} {
		if strings.Contains(ck.Value, leak) {
			t.Fatalf("the session cookie %q carries the token", ck.Value)
		}
	}
	r = uiDo(t, c, "GET", srv.URL+"/ui/", nil, ck, nil)
	if r.status != http.StatusOK || !strings.Contains(r.body, "/ui/static/dashboard.js") {
		t.Fatalf("GET /ui/ logged in: HTTP %d, %s", r.status, r.body)
	}
	if got := r.header.Get("Content-Security-Policy"); got != contentSecurityPolicy {
		t.Fatalf("CSP of the page %q", got)
	}
	r = uiDo(t, c, "GET", srv.URL+"/ui/api/state", nil, ck, nil)
	if r.status != http.StatusOK || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("state logged in: HTTP %d, Cache-Control %q, %s", r.status, r.header.Get("Cache-Control"), r.body)
	}
	// The cookie is no key to the API: it still wants signed requests.
	r = uiDo(t, c, "GET", srv.URL+"/v1/stores", nil, ck, nil)
	if r.status != http.StatusUnauthorized {
		t.Fatalf("API with the dashboard cookie: HTTP %d, %s", r.status, r.body)
	}

	// Logout clears the cookie.
	r = uiDo(t, c, "POST", srv.URL+"/ui/logout", url.Values{}, ck, nil)
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/ui/login" || r.cookie == nil || r.cookie.MaxAge >= 0 || r.cookie.Value != "" {
		t.Fatalf("logout: HTTP %d, Location %q, cookie %+v", r.status, r.header.Get("Location"), r.cookie)
	}
}

func TestDashboardSessionExpiresAndCannotBeForged(t *testing.T) {
	clock := newClock()
	m := open(t, t.TempDir(), clock)
	srv, c := uiServer(t, m, false)
	ck := login(t, c, srv.URL, string(testToken))
	state := func(ck *http.Cookie) uiResp { return uiDo(t, c, "GET", srv.URL+"/ui/api/state", nil, ck, nil) }
	if r := state(ck); r.status != http.StatusOK {
		t.Fatalf("fresh session: HTTP %d, %s", r.status, r.body)
	}

	// A session pushed to a later expiry by hand, or signed with another
	// token, is refused.
	parts := strings.Split(ck.Value, ".")
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	if len(parts) != 3 || err != nil {
		t.Fatalf("session value %q", ck.Value)
	}
	later := &http.Cookie{Name: SessionCookie, Value: parts[0] + "." + strconv.FormatInt(exp+86400, 10) + "." + parts[2]}
	other := &dashboard{key: sessionKey([]byte("another-cluster"))}
	forged := &http.Cookie{Name: SessionCookie, Value: other.newSession(clock.Now().Add(time.Hour))}
	for name, bad := range map[string]*http.Cookie{"later expiry": later, "other token": forged,
		"garbage": {Name: SessionCookie, Value: "v1.x.y"}, "empty": {Name: SessionCookie, Value: ""}} {
		if r := state(bad); r.status != http.StatusUnauthorized || !strings.Contains(r.body, "not issued by this manager") {
			t.Errorf("%s: HTTP %d, %s", name, r.status, r.body)
		}
	}

	clock.Add(SessionTTL - time.Second)
	if r := state(ck); r.status != http.StatusOK {
		t.Fatalf("a second before expiry: HTTP %d, %s", r.status, r.body)
	}
	clock.Add(time.Second)
	if r := state(ck); r.status != http.StatusUnauthorized || !strings.Contains(r.body, "expired") {
		t.Fatalf("at expiry: HTTP %d, %s", r.status, r.body)
	}
	if r := uiDo(t, c, "GET", srv.URL+"/ui/", nil, ck, nil); r.status != http.StatusSeeOther {
		t.Fatalf("page at expiry: HTTP %d", r.status)
	}
}

func TestDashboardSecureCookieOverTLS(t *testing.T) {
	m := open(t, t.TempDir(), newClock())
	srv, c := uiServer(t, m, true)
	if ck := login(t, c, srv.URL, string(testToken)); !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode {
		t.Fatalf("session cookie over TLS %+v", ck)
	}
}

func TestDashboardRefusesCrossOriginPosts(t *testing.T) {
	m := open(t, t.TempDir(), newClock())
	srv, c := uiServer(t, m, false)
	for _, path := range []string{"/ui/login", "/ui/logout"} {
		r := uiDo(t, c, "POST", srv.URL+path, url.Values{"token": {string(testToken)}}, nil,
			map[string]string{"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"})
		if r.status != http.StatusForbidden || r.cookie != nil {
			t.Errorf("cross-origin POST %s: HTTP %d, cookie %v", path, r.status, r.cookie)
		}
	}
}

func TestDashboardState(t *testing.T) {
	clock := newClock()
	// The stores are only heartbeats: dialing them (the catalog records
	// each commit writes) fails at once rather than waiting on 10.0.0.x.
	noStore := func(ctx context.Context, id, addr string) (GCStore, error) {
		return nil, fmt.Errorf("store %s: not dialed in this test", id)
	}
	m, err := Open(t.TempDir(), Options{Token: testToken, Logger: zaptest.NewLogger(t), Now: clock.Now, JanitorEvery: time.Hour, DeadAfter: time.Minute,
		DialStore: noStore})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	for i, addr := range []string{"10.0.0.1:7000", "10.0.0.2:7000"} {
		hb := catalog.Heartbeat{ID: "st-" + strconv.Itoa(i), Addr: addr, Usage: storage.Usage{Used: 100, Quota: 1000}}
		if err := m.Heartbeat(hb); err != nil {
			t.Fatal(err)
		}
	}
	const versions = uiVersionsPerJob + 2
	for i := 1; i <= versions; i++ {
		txn, err := m.Begin("heat")
		if err != nil {
			t.Fatal(err)
		}
		man := testManifest("heat", 1)
		man.Meta[catalog.MetaStep] = strconv.Itoa(i * 50)
		if _, err := m.Commit(txn.ID, marshal(t, man)); err != nil {
			t.Fatal(err)
		}
	}
	inflight, err := m.Begin("wave")
	if err != nil {
		t.Fatal(err)
	}
	clock.Add(2 * time.Minute) // st-1 heartbeats again, st-0 is now dead
	if err := m.Heartbeat(catalog.Heartbeat{ID: "st-1", Addr: "10.0.0.2:7000", Usage: storage.Usage{Used: 200, Quota: 1000}}); err != nil {
		t.Fatal(err)
	}

	srv, c := uiServer(t, m, false)
	r := uiDo(t, c, "GET", srv.URL+"/ui/api/state", nil, login(t, c, srv.URL, string(testToken)), nil)
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		t.Fatalf("state: HTTP %d, %s", r.status, r.body)
	}
	var st DashboardState
	if err := json.Unmarshal([]byte(r.body), &st); err != nil {
		t.Fatal(err)
	}
	if !st.Now.Equal(clock.Now()) || len(st.Stores) != 2 || st.Stores[0].Alive || !st.Stores[1].Alive || st.Stores[1].Used != 200 {
		t.Fatalf("stores %+v at %s", st.Stores, st.Now)
	}
	if len(st.Jobs) != 2 || st.Jobs[0].Name != "heat" || st.Jobs[0].Versions != versions || st.Jobs[1].Name != "wave" ||
		st.Jobs[1].InFlight != 1 || len(st.Jobs[1].Recent) != 0 {
		t.Fatalf("jobs %+v", st.Jobs)
	}
	recent := st.Jobs[0].Recent
	if len(recent) != uiVersionsPerJob || recent[0].Version != versions || recent[0].Meta[catalog.MetaStep] != strconv.Itoa(versions*50) ||
		recent[len(recent)-1].Version != versions-uiVersionsPerJob+1 || recent[0].Replicas != 1 || recent[0].LogicalBytes != 300 {
		t.Fatalf("recent versions: %d, first %+v", len(recent), recent[0])
	}
	if len(st.Txns) != 1 || st.Txns[0].ID != inflight.ID || st.Txns[0].Job != "wave" {
		t.Fatalf("txns %+v", st.Txns)
	}
	if st.GC.Last != nil || st.Repair.Last != nil || st.GC.Running || st.Repair.Running {
		t.Fatalf("gc %+v, repair %+v", st.GC, st.Repair)
	}
	// Every list is a JSON array, never null, even when empty.
	var rawState map[string]json.RawMessage
	if err := json.Unmarshal([]byte(r.body), &rawState); err != nil || string(rawState["txns"]) == "null" {
		t.Fatalf("state %s", r.body)
	}

	m.Close()
	if r := uiDo(t, c, "GET", srv.URL+"/ui/api/state", nil, login(t, c, srv.URL, string(testToken)), nil); r.status != http.StatusServiceUnavailable {
		t.Fatalf("state of a closed manager: HTTP %d, %s", r.status, r.body)
	}
}

func TestTxnsListsOnlyLiveOnes(t *testing.T) {
	clock := newClock()
	m := open(t, t.TempDir(), clock)
	a, _ := m.Begin("a")
	clock.Add(time.Second)
	b, _ := m.Begin("b")
	clock.Add(time.Second)
	c, _ := m.Begin("c")
	if err := m.Abort(c.ID); err != nil {
		t.Fatal(err)
	}
	ts, err := m.Txns()
	if err != nil || len(ts) != 2 || ts[0].ID != a.ID || ts[1].ID != b.ID {
		t.Fatalf("txns %+v, %v", ts, err)
	}
	clock.Add(m.opts.TxnTimeout - 2*time.Second + time.Millisecond) // a expired, b not yet
	if ts, err = m.Txns(); err != nil || len(ts) != 1 || ts[0].ID != b.ID {
		t.Fatalf("txns after a expired: %+v, %v", ts, err)
	}
}

// TestDashboardAssetsAreSelfContained reads the embedded files: no HTML
// built from strings in the script, nothing fetched from another origin,
// no inline script or style (the CSP would block it).
func TestDashboardAssetsAreSelfContained(t *testing.T) {
	unsafeDOM := regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function`)
	external := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}|@import`)
	inline := regexp.MustCompile(`(?i)<script>|<script [^>]*>[^<]|<style|style="|\son[a-z]+=`)
	n := 0
	err := fs.WalkDir(uiFiles, "ui", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		data, err := fs.ReadFile(uiFiles, path)
		if err != nil {
			return err
		}
		s := string(data)
		if strings.HasSuffix(path, ".js") && unsafeDOM.MatchString(s) {
			t.Errorf("%s builds HTML from strings: %q", path, unsafeDOM.FindString(s))
		}
		if m := external.FindString(s); m != "" {
			t.Errorf("%s refers to another origin: %q", path, m)
		}
		if strings.HasSuffix(path, ".html") && inline.MatchString(s) {
			t.Errorf("%s has inline script or style: %q", path, inline.FindString(s))
		}
		return nil
	})
	if err != nil || n < 4 {
		t.Fatalf("walked %d embedded files: %v", n, err)
	}
	m := open(t, t.TempDir(), newClock())
	srv, c := uiServer(t, m, false)
	for path, ctype := range map[string]string{"/ui/static/dashboard.js": "javascript", "/ui/static/dashboard.css": "text/css"} {
		r := uiDo(t, c, "GET", srv.URL+path, nil, nil, nil)
		if r.status != http.StatusOK || !strings.Contains(r.header.Get("Content-Type"), ctype) || r.header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: HTTP %d, Content-Type %q", path, r.status, r.header.Get("Content-Type"))
		}
	}
	if r := uiDo(t, c, "GET", srv.URL+"/ui/nope", nil, nil, nil); r.status != http.StatusNotFound {
		t.Errorf("/ui/nope: HTTP %d", r.status)
	}
}
