package manager

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ckptio/ckptio/storage/catalog"
)

// A stranger announces a 256 MiB commit body under a well-formed
// Authorization header with a current timestamp and a made-up signature,
// sends a few bytes and stops. The manager must not allocate what the
// client announced before it has seen the bytes (and the signature).
func TestHostileAnnouncedBodyIsNotAllocated(t *testing.T) {
	_, srv, _ := serve(t, Options{})
	const announced = DefaultMaxManifestBytes
	sig := strings.Repeat("00", 32)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 4 {
		nc, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(nc, "POST /v1/txns/x/commit HTTP/1.1\r\nHost: m\r\nContent-Type: %s\r\n"+
			"Authorization: %s ts=%d,sig=%s\r\nContent-Length: %d\r\n\r\nARROW1",
			catalog.ManifestContentType, catalog.AuthScheme, time.Now().Unix(), sig, announced)
		nc.(*net.TCPConn).CloseWrite() // the body ends early: the handler answers
		resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		nc.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("truncated body: HTTP %d, want 400", resp.StatusCode)
		}
	}
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
		t.Fatalf("4 requests announcing %d bytes and sending 6 made the manager allocate %d MiB", announced, grew>>20)
	}
}

// Guessing the token through the dashboard's login form: after a few wrong
// tokens from one address, each attempt must wait a backoff that doubles,
// even with the right token; other addresses are not slowed down, and a
// right token after the wait clears the address.
func TestHostileLoginBruteForceIsThrottled(t *testing.T) {
	clock := newClock()
	m := open(t, t.TempDir(), clock)
	h := m.Handler()
	post := func(remote, token string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", "/ui/login", strings.NewReader(url.Values{"token": {token}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.RemoteAddr = remote
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	const attacker, operator = "192.0.2.7:40000", "198.51.100.1:50000"
	for i := range loginFreeFailures + 1 {
		if w := post(attacker, fmt.Sprintf("guess-%d", i)); w.Code != http.StatusUnauthorized {
			t.Fatalf("wrong token %d: HTTP %d, want 401", i, w.Code)
		}
	}
	// From another port of the same host, with the right token: refused.
	w := post("192.0.2.7:40001", string(testToken))
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "1" || !strings.Contains(w.Body.String(), "Too many wrong tokens") {
		t.Fatalf("in backoff: HTTP %d, Retry-After %q, %s", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
	if w := post(operator, string(testToken)); w.Code != http.StatusSeeOther {
		t.Fatalf("another address: HTTP %d, want 303", w.Code)
	}
	clock.Add(time.Second)
	if w := post(attacker, "guess-again"); w.Code != http.StatusUnauthorized {
		t.Fatalf("after the backoff: HTTP %d, want 401", w.Code)
	}
	if w := post(attacker, string(testToken)); w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "2" {
		t.Fatalf("the backoff doubles: HTTP %d, Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	clock.Add(2 * time.Second)
	if w := post(attacker, string(testToken)); w.Code != http.StatusSeeOther {
		t.Fatalf("right token after the wait: HTTP %d, want 303", w.Code)
	}
	for i := range loginFreeFailures {
		if w := post(attacker, "x"); w.Code != http.StatusUnauthorized {
			t.Fatalf("after a login the count starts again: wrong token %d: HTTP %d", i, w.Code)
		}
	}
}

func TestLoginThrottleBackoffIsCapped(t *testing.T) {
	var l loginThrottle
	now := time.Unix(1e9, 0)
	for range 100 {
		l.failed("h", now)
	}
	if got := l.wait("h", now); got != loginMaxBackoff {
		t.Fatalf("after 100 failures: wait %v, want %v", got, loginMaxBackoff)
	}
}

// A stranger hammering the API with bad signatures is refused every time
// but logged only on the 1st, 2nd, 4th... refusal.
func TestHostileBadSignatureHammerDoesNotFloodTheLog(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	m, err := Open(t.TempDir(), Options{Token: testToken, Logger: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(m.Handler())
	t.Cleanup(func() {
		srv.Close()
		m.Close()
	})
	const attempts = 64
	for i := range attempts {
		if status, _ := raw(t, srv, []byte("guess"), time.Now(), "GET", "/v1/stores", "", nil); status != http.StatusUnauthorized {
			t.Fatalf("attempt %d: HTTP %d, want 401", i, status)
		}
	}
	if n := logs.FilterMessage("request refused").Len(); n != 7 {
		t.Fatalf("%d refused requests logged %d warnings, want 7 (1st, 2nd, 4th ... 64th)", attempts, n)
	}
}
