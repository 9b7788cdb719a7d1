package catalog_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/manifest"
)

// flaky is a manager that is down for its first down calls (they fail as
// unreachable) and keeps the versions it committed, with their meta.
type flaky struct {
	mu       sync.Mutex
	down     int
	calls    int
	commits  int
	txns     map[string]bool
	versions []catalog.VersionInfo
	// loseAnswer: the first commit happens but its answer is lost; the
	// manager is then down for downAfterLoss calls.
	loseAnswer    bool
	downAfterLoss int
}

var (
	errDown  = &catalog.UnreachableError{Addr: "127.0.0.1:1", Err: &net.OpError{Op: "dial", Err: errors.New("connection refused")}}
	errReset = &catalog.UnreachableError{Addr: "127.0.0.1:1", Err: &net.OpError{Op: "read", Err: errors.New("connection reset by peer")}}
)

func (f *flaky) up() bool {
	f.calls++
	if f.down > 0 {
		f.down--
		return false
	}
	return true
}

func (f *flaky) Begin(ctx context.Context, job string) (catalog.Txn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.up() {
		return catalog.Txn{}, errDown
	}
	f.txns["t1"] = true
	return catalog.Txn{ID: "t1", Job: job}, nil
}

func (f *flaky) Renew(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.up() {
		return errDown
	}
	if !f.txns[id] {
		return catalog.ErrUnknownTxn
	}
	return nil
}

func (f *flaky) Commit(ctx context.Context, id string, body []byte) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.up() {
		return 0, errDown
	}
	if !f.txns[id] {
		return 0, catalog.ErrUnknownTxn
	}
	hdr, err := manifest.Header(body)
	if err != nil {
		return 0, err
	}
	delete(f.txns, id)
	f.commits++
	v := int64(len(f.versions) + 1)
	f.versions = append(f.versions, catalog.VersionInfo{Job: hdr.Job, Version: v, Meta: hdr.Meta})
	if f.loseAnswer {
		f.loseAnswer = false
		f.down = f.downAfterLoss
		return 0, errReset
	}
	return v, nil
}

func (f *flaky) Abort(ctx context.Context, id string) error { return nil }
func (f *flaky) ManifestBytes(ctx context.Context, job string, v int64) ([]byte, int64, error) {
	return nil, 0, catalog.ErrNoVersions
}

func (f *flaky) Versions(ctx context.Context, job string) ([]catalog.VersionInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.up() {
		return nil, errDown
	}
	return f.versions, nil
}

func (f *flaky) Stores(ctx context.Context) ([]catalog.StoreInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	// Down means: the stores have not heartbeated yet.
	return []catalog.StoreInfo{{Alive: f.up()}}, nil
}

// fakeClock advances by each sleep and records them.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sleeps = append(c.sleeps, d)
	c.now = c.now.Add(d)
	return ctx.Err()
}

func newRetrying(f *flaky, retryFor time.Duration) (*catalog.Retrying, *fakeClock) {
	clk := &fakeClock{now: time.Unix(1e9, 0)}
	if f.txns == nil {
		f.txns = map[string]bool{}
	}
	return catalog.NewRetrying(f, catalog.RetryOptions{For: retryFor, Min: 100 * time.Millisecond, Max: 2 * time.Second,
		Now: clk.Now, Sleep: clk.Sleep}), clk
}

func body(t *testing.T, txn string) []byte {
	t.Helper()
	raw, err := manifest.Marshal(&manifest.Manifest{Job: "j", Meta: map[string]string{catalog.MetaTxn: txn}})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestRetryingWaitsOutAnOutage: calls fail as unreachable for a while,
// then succeed; the waits grow, stay within Max and jitter's half.
func TestRetryingWaitsOutAnOutage(t *testing.T) {
	f := &flaky{down: 12}
	r, clk := newRetrying(f, time.Minute)
	if _, err := r.Begin(t.Context(), "j"); err != nil {
		t.Fatalf("begin after an outage of 12 attempts: %v", err)
	}
	if f.calls != 13 || len(clk.sleeps) != 12 {
		t.Fatalf("%d calls and %d waits, want 13 and 12", f.calls, len(clk.sleeps))
	}
	want := 100 * time.Millisecond
	for i, d := range clk.sleeps {
		if d < want/2 || d > want {
			t.Errorf("wait %d is %s, want between %s and %s", i, d, want/2, want)
		}
		want = min(2*want, 2*time.Second)
	}
}

// TestRetryingGivesUp: an outage longer than For fails the call with the
// last error, saying how long it tried, and the time spent is For.
func TestRetryingGivesUp(t *testing.T) {
	f := &flaky{down: 1 << 30}
	r, clk := newRetrying(f, 30*time.Second)
	start := clk.Now()
	err := r.Renew(t.Context(), "t1")
	if !errors.Is(err, catalog.ErrUnreachable) || !strings.Contains(err.Error(), "CKPT_RETRY_FOR=30s") {
		t.Fatalf("renew through a long outage: %v, want ErrUnreachable naming CKPT_RETRY_FOR", err)
	}
	if got := clk.Now().Sub(start); got != 30*time.Second {
		t.Fatalf("retried for %s, want 30s", got)
	}
}

// TestRetryingNoRetry: For < 0 fails at once; an answer of the manager is
// never retried.
func TestRetryingNoRetry(t *testing.T) {
	f := &flaky{down: 1}
	r, _ := newRetrying(f, -1)
	if err := r.Renew(t.Context(), "t1"); !errors.Is(err, catalog.ErrUnreachable) || f.calls != 1 {
		t.Fatalf("with no retry: %v after %d calls, want ErrUnreachable after 1", err, f.calls)
	}
	f = &flaky{}
	r, _ = newRetrying(f, time.Minute)
	if err := r.Renew(t.Context(), "nope"); !errors.Is(err, catalog.ErrUnknownTxn) || f.calls != 1 {
		t.Fatalf("an unknown transaction: %v after %d calls, want ErrUnknownTxn after 1", err, f.calls)
	}
}

// TestRetryingCommitLostAnswer: the commit happens but its answer is lost;
// the repeated commit is told the transaction is unknown, and Retrying
// finds the version by its transaction ID: committed once, reported
// committed.
func TestRetryingCommitLostAnswer(t *testing.T) {
	f := &flaky{loseAnswer: true}
	r, _ := newRetrying(f, time.Minute)
	if _, err := r.Begin(t.Context(), "j"); err != nil {
		t.Fatal(err)
	}
	f.down = 3 // and the manager is away for a moment after the commit
	v, err := r.Commit(t.Context(), "t1", body(t, "t1"))
	if err != nil || v != 1 {
		t.Fatalf("commit with a lost answer: version %d, %v; want version 1", v, err)
	}
	if f.commits != 1 || len(f.versions) != 1 {
		t.Fatalf("%d commits, %d versions; want 1", f.commits, len(f.versions))
	}
}

// TestRetryingCommitUnknownTxn: a commit refused without an earlier lost
// answer is a refusal, not a success, even when some version has the ID.
func TestRetryingCommitUnknownTxn(t *testing.T) {
	f := &flaky{versions: []catalog.VersionInfo{{Job: "j", Version: 1, Meta: map[string]string{catalog.MetaTxn: "t2"}}}}
	r, _ := newRetrying(f, time.Minute)
	if _, err := r.Commit(t.Context(), "t2", body(t, "t2")); !errors.Is(err, catalog.ErrUnknownTxn) {
		t.Fatalf("commit of an unknown transaction: %v, want ErrUnknownTxn", err)
	}
}

// TestRetryingCommitNotFound: the first commit never reached the manager,
// and the transaction expired meanwhile: ErrUnknownTxn, not success.
func TestRetryingCommitNotFound(t *testing.T) {
	f := &flaky{down: 2}
	r, _ := newRetrying(f, time.Minute)
	_, err := r.Commit(t.Context(), "t3", body(t, "t3"))
	if !errors.Is(err, catalog.ErrUnknownTxn) || f.commits != 0 {
		t.Fatalf("commit of an expired transaction after an outage: %v, %d commits; want ErrUnknownTxn, 0", err, f.commits)
	}
}

// TestRetryingStopsWithContext: a cancelled call stops retrying.
func TestRetryingStopsWithContext(t *testing.T) {
	f := &flaky{down: 1 << 30}
	r, _ := newRetrying(f, time.Hour)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := r.Renew(ctx, "t1"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled renew: %v, want context.Canceled", err)
	}
}

// TestRetryingStoresWaitsForALiveStore: a manager back from an outage
// lists its stores dead until they heartbeat; Stores waits for one alive,
// and after For returns the list as it is.
func TestRetryingStoresWaitsForALiveStore(t *testing.T) {
	f := &flaky{down: 4}
	r, _ := newRetrying(f, time.Minute)
	ss, err := r.Stores(t.Context())
	if err != nil || len(ss) != 1 || !ss[0].Alive || f.calls != 5 {
		t.Fatalf("stores: %+v, %v after %d calls; want one alive after 5", ss, err, f.calls)
	}
	f = &flaky{down: 1 << 30}
	r, _ = newRetrying(f, time.Minute)
	if ss, err = r.Stores(t.Context()); err != nil || len(ss) != 1 || ss[0].Alive {
		t.Fatalf("stores never alive: %+v, %v; want the dead list and no error", ss, err)
	}
}

// TestRetryingCommitOutcomeUnknown: a commit whose answer was lost, with
// the manager away for longer than For, fails with ErrCommitUnknown; one
// that never connected fails as plainly unreachable.
func TestRetryingCommitOutcomeUnknown(t *testing.T) {
	f := &flaky{loseAnswer: true, downAfterLoss: 1 << 30}
	r, _ := newRetrying(f, time.Minute)
	if _, err := r.Begin(t.Context(), "j"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Commit(t.Context(), "t1", body(t, "t1")); !errors.Is(err, catalog.ErrCommitUnknown) {
		t.Fatalf("commit with a lost answer and no manager after: %v, want ErrCommitUnknown", err)
	}
	f = &flaky{down: 1 << 30}
	r, _ = newRetrying(f, time.Minute)
	_, err := r.Commit(t.Context(), "t1", body(t, "t1"))
	if !errors.Is(err, catalog.ErrUnreachable) || errors.Is(err, catalog.ErrCommitUnknown) {
		t.Fatalf("commit that never connected: %v, want ErrUnreachable only", err)
	}
}
