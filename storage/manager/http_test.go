package manager

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/manifest"
)

// serve starts a manager (real clock) behind httptest and returns a client.
func serve(t *testing.T, opts Options) (*Manager, *httptest.Server, *catalog.Client) {
	t.Helper()
	opts.Token = testToken
	opts.Logger = zaptest.NewLogger(t)
	m, err := Open(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(m.Handler())
	t.Cleanup(func() {
		srv.Close()
		m.Close()
	})
	return m, srv, catalog.NewClient(srv.Listener.Addr().String(), testToken, catalog.ClientOptions{})
}

// raw sends a request signed with token at time now.
func raw(t *testing.T, srv *httptest.Server, token []byte, now time.Time, method, path, ctype string, body []byte) (int, catalog.ErrorBody) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if token != nil {
		req.Header.Set("Authorization", catalog.Sign(token, method, req.URL.RequestURI(), now.Unix(), body))
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var eb catalog.ErrorBody
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 400 {
		if err := json.Unmarshal(data, &eb); err != nil {
			t.Fatalf("%s %s: HTTP %d with a body that is not JSON: %q", method, path, resp.StatusCode, data)
		}
	}
	return resp.StatusCode, eb
}

func TestAPIRoundTrip(t *testing.T) {
	ctx := context.Background()
	_, _, c := serve(t, Options{})
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	hb := catalog.Heartbeat{ID: "s1", Addr: "127.0.0.1:7001", Usage: storage.Usage{Used: 5, Quota: 50, Blocks: 1, DiskFree: 500}}
	if err := c.Heartbeat(ctx, hb); err != nil {
		t.Fatal(err)
	}
	ss, err := c.Stores(ctx)
	if err != nil || len(ss) != 1 || !ss[0].Alive || ss[0].Addr != hb.Addr || ss[0].DiskFree != 500 {
		t.Fatalf("stores %+v, %v", ss, err)
	}
	jobs, err := c.Jobs(ctx)
	if err != nil || jobs == nil || len(jobs) != 0 {
		t.Fatalf("jobs %#v, %v", jobs, err)
	}
	_, err = c.Versions(ctx, "heat")
	wantErr(t, err, catalog.ErrUnknownJob, "heat")
	_, err = c.Manifest(ctx, "heat", 0)
	wantErr(t, err, catalog.ErrUnknownJob, "heat")

	txn, err := c.Begin(ctx, "heat")
	if err != nil || txn.Job != "heat" || len(txn.ID) != 32 || time.Until(txn.Expires) < 9*time.Minute {
		t.Fatalf("begin %+v, %v", txn, err)
	}
	if err := c.Renew(ctx, txn.ID); err != nil {
		t.Fatal(err)
	}
	want := testManifest("heat", 4)
	v, err := c.Commit(ctx, txn.ID, marshal(t, want))
	if err != nil || v != 1 {
		t.Fatalf("commit: %d, %v", v, err)
	}
	txn2, _ := c.Begin(ctx, "heat")
	if v, err := c.Commit(ctx, txn2.ID, marshal(t, testManifest("heat", 1))); err != nil || v != 2 {
		t.Fatalf("commit 2: %d, %v", v, err)
	}
	vs, err := c.Versions(ctx, "heat")
	if err != nil || len(vs) != 2 || vs[0].Version != 1 || vs[0].Objects != 4 || vs[0].LogicalBytes != 1200 || vs[1].Version != 2 {
		t.Fatalf("versions %+v, %v", vs, err)
	}
	got, err := c.Manifest(ctx, "heat", 1)
	if err != nil || got.Version != 1 || len(got.Blocks) != len(want.Blocks) || got.Blocks[5].Hash != want.Blocks[5].Hash {
		t.Fatalf("manifest 1: %+v, %v", got, err)
	}
	if got, err = c.Manifest(ctx, "heat", 0); err != nil || got.Version != 2 {
		t.Fatalf("manifest latest: %+v, %v", got, err)
	}
	if vi, err := c.Version(ctx, "heat", 0); err != nil || vi.Version != 2 || vi.Kind != manifest.KindFiles {
		t.Fatalf("version latest: %+v, %v", vi, err)
	}
	_, err = c.Manifest(ctx, "heat", 7)
	wantErr(t, err, catalog.ErrUnknownVersion, "job heat has no version 7 (latest is 2)")

	txn3, _ := c.Begin(ctx, "heat")
	if jobs, _ := c.Jobs(ctx); len(jobs) != 1 || jobs[0].InFlight != 1 || jobs[0].Versions != 2 {
		t.Fatalf("jobs %+v", jobs)
	}
	if err := c.Abort(ctx, txn3.ID); err != nil {
		t.Fatal(err)
	}
	wantErr(t, c.Abort(ctx, txn3.ID), catalog.ErrUnknownTxn, txn3.ID)
	_, err = c.Commit(ctx, txn3.ID, marshal(t, testManifest("heat", 1)))
	wantErr(t, err, catalog.ErrUnknownTxn, "")
	wantErr(t, c.Renew(ctx, "nonsense"), catalog.ErrUnknownTxn, "nonsense")
	_, err = c.Begin(ctx, "bad/name")
	wantErr(t, err, catalog.ErrInvalid, "job name")
	txn4, _ := c.Begin(ctx, "heat")
	_, err = c.Commit(ctx, txn4.ID, marshal(t, testManifest("cool", 1)))
	wantErr(t, err, catalog.ErrConflict, "cool")
}

func TestAPIAuth(t *testing.T) {
	ctx := context.Background()
	_, srv, _ := serve(t, Options{})
	addr := srv.Listener.Addr().String()

	bad := catalog.NewClient(addr, []byte("wrong"), catalog.ClientOptions{})
	err := bad.Ping(ctx)
	wantErr(t, err, storage.ErrUnauthorized, "manager "+addr+" refused the cluster token (wrong CKPT_TOKEN / token file?)")
	status, eb := raw(t, srv, []byte("wrong"), time.Now(), "GET", "/v1/ping", "", nil)
	if status != http.StatusUnauthorized || eb.Error != "wrong cluster token" {
		t.Fatalf("wrong token: %d %+v", status, eb)
	}
	status, eb = raw(t, srv, nil, time.Now(), "GET", "/v1/stores", "", nil)
	if status != http.StatusUnauthorized || !strings.Contains(eb.Error, "Authorization") {
		t.Fatalf("no header: %d %+v", status, eb)
	}
	// A signature over another body, path or method does not pass.
	req, _ := http.NewRequest("POST", srv.URL+"/v1/jobs/j/txns", nil)
	req.Header.Set("Authorization", catalog.Sign(testToken, "GET", "/v1/jobs/j/txns", time.Now().Unix(), nil))
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("signature for another method: %d", resp.StatusCode)
	}

	for _, skew := range []time.Duration{-6 * time.Minute, 10 * time.Minute} {
		c := catalog.NewClient(addr, testToken, catalog.ClientOptions{Now: func() time.Time { return time.Now().Add(skew) }})
		err := c.Ping(ctx)
		wantErr(t, err, storage.ErrUnauthorized, "clock skew")
		wantErr(t, err, catalog.ErrClockSkew, "limit 5m0s")
	}
	// Within the window is fine.
	c := catalog.NewClient(addr, testToken, catalog.ClientOptions{Now: func() time.Time { return time.Now().Add(4 * time.Minute) }})
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestAPIBadInput(t *testing.T) {
	ctx := context.Background()
	_, srv, c := serve(t, Options{MaxManifestBytes: 64 << 10})
	now := time.Now()
	hb := func(s string) []byte { return []byte(s) }
	tests := []struct {
		name, method, path, ctype string
		body                      []byte
		status                    int
		msg                       string
	}{
		{"truncated JSON", "POST", "/v1/heartbeat", "application/json", hb(`{"id":"s1"`), 400, "JSON body"},
		{"unknown field", "POST", "/v1/heartbeat", "application/json", hb(`{"id":"s1","addr":"h:1","color":1}`), 400, "unknown field"},
		{"trailing data", "POST", "/v1/heartbeat", "application/json", hb(`{"id":"s1","addr":"h:1"} {}`), 400, "data after"},
		{"wrong type", "POST", "/v1/heartbeat", "application/json", hb(`{"id":"s1","addr":"h:1","used":"x"}`), 400, "JSON body"},
		{"bad heartbeat", "POST", "/v1/heartbeat", "application/json", hb(`{"id":"","addr":"h:1"}`), 400, "store ID"},
		{"huge JSON", "POST", "/v1/heartbeat", "application/json", bytes.Repeat([]byte(" "), 2<<20), 413, "too large"},
		{"begin with body", "POST", "/v1/jobs/j/txns", "", hb(`{}`), 400, "no body"},
		{"bad version", "GET", "/v1/jobs/j/versions/x/manifest", "", nil, 400, `version "x"`},
		{"zero version", "GET", "/v1/jobs/j/versions/0", "", nil, 400, "positive"},
		{"bad job", "GET", "/v1/jobs/a..b%20/versions", "", nil, 400, "job name"},
		{"unknown endpoint", "GET", "/v2/nothing", "", nil, 404, "no such endpoint"},
		{"wrong method", "PUT", "/v1/stores", "", nil, 404, "no such endpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, eb := raw(t, srv, testToken, now, tt.method, tt.path, tt.ctype, tt.body)
			if status != tt.status || !strings.Contains(eb.Error, tt.msg) {
				t.Fatalf("HTTP %d %+v, want %d containing %q", status, eb, tt.status, tt.msg)
			}
		})
	}

	txn, err := c.Begin(ctx, "j")
	if err != nil {
		t.Fatal(err)
	}
	commit := "/v1/txns/" + txn.ID + "/commit"
	status, eb := raw(t, srv, testToken, now, "POST", commit, catalog.ManifestContentType, []byte("garbage, not arrow"))
	if status != 400 || !strings.Contains(eb.Error, "manifest: corrupt") {
		t.Fatalf("garbage manifest: %d %+v", status, eb)
	}
	good := marshal(t, testManifest("j", 1))
	status, eb = raw(t, srv, testToken, now, "POST", commit, "application/json", good)
	if status != 400 || !strings.Contains(eb.Error, "Content-Type") {
		t.Fatalf("wrong content type: %d %+v", status, eb)
	}
	status, eb = raw(t, srv, testToken, now, "POST", commit, catalog.ManifestContentType, good[:len(good)-8])
	if status != 400 || !strings.Contains(eb.Error, "end-of-stream") {
		t.Fatalf("truncated manifest: %d %+v", status, eb)
	}
	_, err = c.Commit(ctx, txn.ID, marshal(t, testManifest("j", 400)))
	wantErr(t, err, catalog.ErrTooLarge, "limit is 65536")
	// Still committable after the rejections.
	if v, err := c.Commit(ctx, txn.ID, marshal(t, testManifest("j", 1))); err != nil || v != 1 {
		t.Fatalf("commit: %d, %v", v, err)
	}
	// An error wrapped around a catalog one says "manager:" once.
	_, err = c.Commit(ctx, txn.ID, marshal(t, testManifest("j", 1)))
	wantErr(t, err, catalog.ErrUnknownTxn, "")
	if n := strings.Count(err.Error(), "manager: "); n != 1 {
		t.Errorf("a commit of a finished transaction: %q says \"manager: \" %d times", err, n)
	}
}

func TestErrorText(t *testing.T) {
	for in, want := range map[string]string{
		"manager: commit x of job j: manager: unknown or expired transaction: gone": "manager: commit x of job j: unknown or expired transaction: gone",
		"commit x: manager: invalid request: bad":                                   "commit x: invalid request: bad",
		"manager: unknown job: none":                                                "manager: unknown job: none",
	} {
		if got := errorText(errors.New(in)); got != want {
			t.Errorf("errorText(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestClientUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := catalog.NewClient(addr, testToken, catalog.ClientOptions{})
	start := time.Now()
	err = c.Ping(context.Background())
	if !errors.Is(err, catalog.ErrUnreachable) {
		t.Fatalf("error %v, want ErrUnreachable", err)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "manager at "+addr+" is unreachable: ") || !strings.HasSuffix(msg, "(is ckpt-manager running? check CKPT_MANAGER)") {
		t.Fatalf("message %q", msg)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("took %v", d)
	}
	// A cancelled context is reported as such, not as unreachable.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Ping(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

func TestClosedManager(t *testing.T) {
	m, srv, c := serve(t, Options{})
	m.Close()
	err := c.Ping(context.Background())
	wantErr(t, err, storage.ErrClosed, "")
	status, _ := raw(t, srv, testToken, time.Now(), "GET", "/v1/jobs", "", nil)
	if status != http.StatusServiceUnavailable {
		t.Fatalf("status %d", status)
	}
}

func TestManifestRoundTripLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	ctx := context.Background()
	_, _, c := serve(t, Options{})
	m := testManifest("big", 25_000) // 75k blocks: two record batches
	txn, err := c.Begin(ctx, "big")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Commit(ctx, txn.ID, marshal(t, m)); err != nil {
		t.Fatal(err)
	}
	got, err := c.Manifest(ctx, "big", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Blocks) != len(m.Blocks) || len(m.Blocks) <= manifest.BatchRows || len(got.Objects()) != 25_000 {
		t.Fatalf("%d blocks", len(got.Blocks))
	}
}
