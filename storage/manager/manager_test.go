package manager

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/manifest"
)

var testToken = []byte("cluster-secret")

// fakeClock is a settable clock for Options.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func open(t *testing.T, dir string, clock *fakeClock) *Manager {
	t.Helper()
	m, err := Open(dir, Options{Token: testToken, Logger: zaptest.NewLogger(t), Now: clock.Now, JanitorEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// testManifest returns a manifest of job with objects files of 3 blocks.
func testManifest(job string, objects int) *manifest.Manifest {
	m := &manifest.Manifest{Job: job, Kind: "files", Created: time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC),
		Meta: map[string]string{"host": "n1"}, NewBytes: 10, SentBytes: 20}
	for o := range objects {
		for b := range 3 {
			h := storage.Sum([]byte(fmt.Sprintf("%s-%d-%d", job, o, b)))
			m.Blocks = append(m.Blocks, manifest.Block{
				Object: fmt.Sprintf("file-%d", o), Rank: -1, Offset: int64(b) * 100, Length: 100,
				Hash: h, Key: h, StoredLength: 100, Codec: manifest.CodecRaw, Stores: []string{"s1"},
			})
		}
	}
	return m
}

func marshal(t *testing.T, m *manifest.Manifest) []byte {
	t.Helper()
	b, err := manifest.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func wantErr(t *testing.T, err, sentinel error, msg string) {
	t.Helper()
	if !errors.Is(err, sentinel) || !strings.Contains(fmt.Sprint(err), msg) {
		t.Fatalf("error %v, want %v containing %q", err, sentinel, msg)
	}
}

func TestCommitVisibleOnlyAfterCommit(t *testing.T) {
	clock := newClock()
	m := open(t, t.TempDir(), clock)
	txn, err := m.Begin("heat")
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Versions("heat")
	wantErr(t, err, catalog.ErrUnknownJob, `"heat"`)
	_, _, err = m.Manifest("heat", 0)
	wantErr(t, err, catalog.ErrUnknownJob, "heat")
	jobs, err := m.Jobs()
	if err != nil || len(jobs) != 1 || jobs[0].InFlight != 1 || jobs[0].Versions != 0 {
		t.Fatalf("jobs %+v, %v", jobs, err)
	}
	clock.Add(time.Second)
	vi, err := m.Commit(txn.ID, marshal(t, testManifest("heat", 2)))
	if err != nil {
		t.Fatal(err)
	}
	if vi.Version != 1 || vi.Objects != 2 || vi.Blocks != 6 || vi.LogicalBytes != 600 || vi.NewBytes != 10 ||
		vi.SentBytes != 20 || vi.Status != catalog.StatusCommitted || !vi.Committed.Equal(clock.Now()) || vi.Meta["host"] != "n1" {
		t.Fatalf("version info %+v", vi)
	}
	vs, err := m.Versions("heat")
	if err != nil || len(vs) != 1 || vs[0].Version != 1 {
		t.Fatalf("versions %+v, %v", vs, err)
	}
	data, v, err := m.Manifest("heat", 0)
	if err != nil || v != 1 {
		t.Fatalf("manifest: v %d, %v", v, err)
	}
	got, err := manifest.Unmarshal(data)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != 1 || got.LogicalBytes != 600 || len(got.Blocks) != 6 {
		t.Fatalf("stored manifest %+v", got)
	}
	_, err = m.Commit(txn.ID, marshal(t, testManifest("heat", 2)))
	wantErr(t, err, catalog.ErrUnknownTxn, txn.ID)
	jobs, _ = m.Jobs()
	if len(jobs) != 1 || jobs[0].InFlight != 0 || jobs[0].Versions != 1 || jobs[0].Latest != 1 {
		t.Fatalf("jobs %+v", jobs)
	}
}

func TestAbortAndExpiryLeaveNothing(t *testing.T) {
	clock := newClock()
	m := open(t, t.TempDir(), clock)
	a, _ := m.Begin("j")
	if err := m.Abort(a.ID); err != nil {
		t.Fatal(err)
	}
	wantErr(t, m.Abort(a.ID), catalog.ErrUnknownTxn, a.ID)
	_, err := m.Commit(a.ID, marshal(t, testManifest("j", 1)))
	wantErr(t, err, catalog.ErrUnknownTxn, "")

	// Expired before the janitor ran: the commit says so.
	b, _ := m.Begin("j")
	clock.Add(DefaultTxnTimeout + time.Second)
	_, err = m.Commit(b.ID, marshal(t, testManifest("j", 1)))
	wantErr(t, err, catalog.ErrUnknownTxn, "expired")

	// Removed by the janitor.
	c, _ := m.Begin("j")
	clock.Add(DefaultTxnTimeout + time.Second)
	// Two: the one whose commit failed above is left to the janitor too.
	if n, err := m.expireTxns(); n != 2 || err != nil {
		t.Fatalf("expired %d, %v", n, err)
	}
	_, err = m.Renew(c.ID)
	wantErr(t, err, catalog.ErrUnknownTxn, "not renewed within 10m0s")
	if jobs, _ := m.Jobs(); len(jobs) != 0 {
		t.Fatalf("jobs %+v", jobs)
	}
	_, err = m.Versions("j")
	wantErr(t, err, catalog.ErrUnknownJob, "")

	// Renewing keeps a transaction alive past the first timeout.
	d, _ := m.Begin("j")
	for range 3 {
		clock.Add(DefaultTxnTimeout - time.Minute)
		if _, err := m.Renew(d.ID); err != nil {
			t.Fatal(err)
		}
		if n, _ := m.expireTxns(); n != 0 {
			t.Fatal("renewed transaction expired")
		}
	}
	if vi, err := m.Commit(d.ID, marshal(t, testManifest("j", 1))); err != nil || vi.Version != 1 {
		t.Fatalf("commit after renewals: %+v, %v", vi, err)
	}
}

func TestJanitorRuns(t *testing.T) {
	clock := newClock()
	m, err := Open(t.TempDir(), Options{Token: testToken, Logger: zaptest.NewLogger(t), Now: clock.Now,
		TxnTimeout: time.Minute, JanitorEvery: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	txn, _ := m.Begin("j")
	clock.Add(2 * time.Minute)
	deadline := time.Now().Add(5 * time.Second)
	for {
		jobs, _ := m.Jobs()
		if len(jobs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("janitor did not remove %s: %+v", txn.ID, jobs)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestVersionsMonotonicAcrossReopen(t *testing.T) {
	dir, clock := t.TempDir(), newClock()
	m := open(t, dir, clock)
	commit := func(m *Manager, job string) int64 {
		t.Helper()
		txn, err := m.Begin(job)
		if err != nil {
			t.Fatal(err)
		}
		vi, err := m.Commit(txn.ID, marshal(t, testManifest(job, 1)))
		if err != nil {
			t.Fatal(err)
		}
		return vi.Version
	}
	for want := int64(1); want <= 3; want++ {
		if v := commit(m, "a"); v != want {
			t.Fatalf("version %d, want %d", v, want)
		}
	}
	if v := commit(m, "b"); v != 1 {
		t.Fatalf("job b: version %d", v)
	}
	pending, _ := m.Begin("a")
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m = open(t, dir, clock)
	if v := commit(m, "a"); v != 4 {
		t.Fatalf("after reopen: version %d, want 4", v)
	}
	// A transaction survives the restart.
	if vi, err := m.Commit(pending.ID, marshal(t, testManifest("a", 1))); err != nil || vi.Version != 5 {
		t.Fatalf("pending commit: %+v, %v", vi, err)
	}
	_, err := m.Version("a", 9)
	wantErr(t, err, catalog.ErrUnknownVersion, "job a has no version 9 (latest is 5)")
	vi, err := m.Version("a", 0)
	if err != nil || vi.Version != 5 {
		t.Fatalf("latest: %+v, %v", vi, err)
	}
}

func TestConcurrentCommits(t *testing.T) {
	m := open(t, t.TempDir(), newClock())
	const n = 8
	versions := make(chan int64, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			txn, err := m.Begin("j")
			if err != nil {
				t.Error(err)
				return
			}
			b, err := manifest.Marshal(testManifest("j", 3))
			if err != nil {
				t.Error(err)
				return
			}
			vi, err := m.Commit(txn.ID, b)
			if err != nil {
				t.Error(err)
				return
			}
			versions <- vi.Version
		}()
	}
	wg.Wait()
	close(versions)
	seen := map[int64]bool{}
	for v := range versions {
		if seen[v] || v < 1 || v > n {
			t.Fatalf("version %d twice or out of range", v)
		}
		seen[v] = true
	}
	for v := int64(1); v <= n; v++ {
		data, _, err := m.Manifest("j", v)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := manifest.Unmarshal(data); err != nil || got.Version != v {
			t.Fatalf("manifest of version %d says %d (%v)", v, got.Version, err)
		}
	}
}

func TestCommitRejects(t *testing.T) {
	m := open(t, t.TempDir(), newClock())
	txn, _ := m.Begin("j")
	_, err := m.Commit(txn.ID, marshal(t, testManifest("other", 1)))
	wantErr(t, err, catalog.ErrConflict, `manifest is for job "other"`)
	_, err = m.Commit(txn.ID, []byte("not arrow"))
	wantErr(t, err, catalog.ErrInvalid, "manifest")
	wantErr(t, err, manifest.ErrCorrupt, "")
	bad := testManifest("j", 1)
	bad.Blocks[1].Offset = 150
	_, err = m.Commit(txn.ID, marshal(t, bad))
	wantErr(t, err, manifest.ErrInvalid, "gap")
	// The transaction is still usable after rejected commits.
	if _, err := m.Commit(txn.ID, marshal(t, testManifest("j", 1))); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"", "a/b", "..", strings.Repeat("x", 129), "sp ace", "ü"} {
		_, err := m.Begin(name)
		wantErr(t, err, catalog.ErrInvalid, "job name")
	}
}

func TestStoreLiveness(t *testing.T) {
	dir, clock := t.TempDir(), newClock()
	m := open(t, dir, clock)
	hb := catalog.Heartbeat{ID: "s1", Addr: "10.0.0.1:7000", Usage: storage.Usage{Used: 100, Quota: 1000, Blocks: 3, DiskFree: 5000}}
	if err := m.Heartbeat(hb); err != nil {
		t.Fatal(err)
	}
	if err := m.Heartbeat(catalog.Heartbeat{ID: "s2", Addr: "10.0.0.2:7000"}); err != nil {
		t.Fatal(err)
	}
	ss := m.Stores()
	if len(ss) != 2 || !ss[0].Alive || ss[0].Used != 100 || ss[0].Quota != 1000 || ss[0].Blocks != 3 || ss[0].DiskFree != 5000 {
		t.Fatalf("stores %+v", ss)
	}
	clock.Add(10 * time.Second)
	hb.Used = 200
	if err := m.Heartbeat(hb); err != nil {
		t.Fatal(err)
	}
	clock.Add(6 * time.Second)
	ss = m.Stores()
	if !ss[0].Alive || ss[0].Used != 200 || ss[1].Alive {
		t.Fatalf("after 16s: %+v", ss)
	}
	if !ss[0].LastSeen.Equal(clock.Now().Add(-6 * time.Second)) {
		t.Fatalf("last seen %v", ss[0].LastSeen)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m = open(t, dir, clock)
	ss = m.Stores()
	if len(ss) != 2 || ss[0].Alive || ss[1].Alive || ss[0].Addr != "10.0.0.1:7000" {
		t.Fatalf("after restart: %+v", ss)
	}
	if err := m.Heartbeat(hb); err != nil {
		t.Fatal(err)
	}
	if ss = m.Stores(); !ss[0].Alive || ss[1].Alive {
		t.Fatalf("after heartbeat: %+v", ss)
	}
	for _, bad := range []catalog.Heartbeat{{Addr: "h:1"}, {ID: "x", Addr: "nohost"}, {ID: "a b", Addr: "h:1"}, {ID: "x", Addr: "h:1", Usage: storage.Usage{Used: -1}}} {
		wantErr(t, m.Heartbeat(bad), catalog.ErrInvalid, "heartbeat")
	}
}

func TestDataDirLocked(t *testing.T) {
	dir := t.TempDir()
	open(t, dir, newClock())
	_, err := Open(dir, Options{Token: testToken})
	wantErr(t, err, catalog.ErrLocked, "another ckpt-manager")
	_, err = Open(t.TempDir(), Options{})
	if err == nil || !strings.Contains(err.Error(), "no cluster token") {
		t.Fatalf("open without token: %v", err)
	}
}
