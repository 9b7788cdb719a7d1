package manager

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/catalog"
)

// fakeStore is an in-memory GCStore that keeps a touch time per block from
// its own clock and honours notSince, as the real stores do. Its blocks
// are 100 bytes.
type fakeStore struct {
	now     func() time.Time
	noClock bool // Stat does not report the store's clock

	mu struct {
		sync.Mutex
		blocks  map[storage.Hash]time.Time // -> last touch
		listErr error
		gate    chan struct{} // List waits for it when not nil
		lists   int
	}
}

const fakeBlockSize = 100

func newFakeStore(now func() time.Time) *fakeStore {
	s := &fakeStore{now: now}
	s.mu.blocks = make(map[storage.Hash]time.Time)
	return s
}

// put stores (or touches) blocks, as a writer's Put does.
func (s *fakeStore) put(names ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range names {
		s.mu.blocks[key(n)] = s.now()
	}
}

// has touches the blocks held, as a writer's batched Has does.
func (s *fakeStore) has(names ...string) []bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]bool, len(names))
	for i, n := range names {
		if _, ok := s.mu.blocks[key(n)]; ok {
			s.mu.blocks[key(n)] = s.now()
			out[i] = true
		}
	}
	return out
}

func (s *fakeStore) holds(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.mu.blocks[key(name)]
	return ok
}

func (s *fakeStore) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.mu.blocks)
}

func (s *fakeStore) List(ctx context.Context, after storage.Hash, max int) ([]storage.Hash, error) {
	s.mu.Lock()
	gate, err := s.mu.gate, s.mu.listErr
	s.mu.lists++
	s.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []storage.Hash
	for h := range s.mu.blocks {
		if bytes.Compare(h[:], after[:]) > 0 {
			out = append(out, h)
		}
	}
	slices.SortFunc(out, func(a, b storage.Hash) int { return bytes.Compare(a[:], b[:]) })
	return out[:min(len(out), max)], nil
}

func (s *fakeStore) Delete(ctx context.Context, hs []storage.Hash, notSince time.Time) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var freed int64
	for _, h := range hs {
		touched, ok := s.mu.blocks[h]
		if ok && (notSince.IsZero() || touched.Before(notSince)) {
			delete(s.mu.blocks, h)
			freed += fakeBlockSize
		}
	}
	return freed, nil
}

func (s *fakeStore) Close() error { return nil }

func (s *fakeStore) Stat(ctx context.Context) (storage.Stat, error) {
	if s.noClock {
		return storage.Stat{}, nil
	}
	s.mu.Lock()
	n := int64(len(s.mu.blocks))
	s.mu.Unlock()
	return storage.Stat{Now: s.now(), Usage: storage.Usage{Blocks: n, Used: n * fakeBlockSize}}, nil
}

// gcEnv is a manager on a fake clock with fake stores s1..sN at
// host-i:7000.
type gcEnv struct {
	m      *Manager
	clock  *fakeClock
	stores []*fakeStore
}

func newGCEnv(t *testing.T, n int, opts Options) *gcEnv {
	t.Helper()
	e := &gcEnv{clock: newClock()}
	byAddr := map[string]*fakeStore{}
	for i := range n {
		s := newFakeStore(e.clock.Now)
		e.stores = append(e.stores, s)
		byAddr[fmt.Sprintf("host-%d:7000", i+1)] = s
	}
	opts.Token, opts.Logger, opts.Now = testToken, zaptest.NewLogger(t), e.clock.Now
	if opts.JanitorEvery == 0 {
		opts.JanitorEvery = time.Hour
	}
	if opts.GCEvery == 0 {
		opts.GCEvery = -1
	}
	opts.DialStore = func(ctx context.Context, id, addr string) (GCStore, error) {
		if s, ok := byAddr[addr]; ok {
			return s, nil
		}
		return nil, fmt.Errorf("dial %s: connection refused", addr)
	}
	m, err := Open(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	e.m = m
	e.beat(t)
	return e
}

// beat makes every fake store (and the extra addresses) heartbeat now.
func (e *gcEnv) beat(t *testing.T, extra ...string) {
	t.Helper()
	for i := range e.stores {
		if err := e.m.Heartbeat(catalog.Heartbeat{ID: fmt.Sprintf("s%d", i+1), Addr: fmt.Sprintf("host-%d:7000", i+1)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range extra {
		if err := e.m.Heartbeat(catalog.Heartbeat{ID: id, Addr: id + ":7000"}); err != nil {
			t.Fatal(err)
		}
	}
}

func (e *gcEnv) gc(t *testing.T) catalog.GCReport {
	t.Helper()
	rep, err := e.m.GC(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestGCDeletesUnreferencedOnly(t *testing.T) {
	e := newGCEnv(t, 2, Options{})
	s1, s2 := e.stores[0], e.stores[1]
	s1.put("a", "b", "orphan1")
	s2.put("b", "c", "orphan2", "orphan3")
	commitKeys(t, e.m, "j", "a", "b")
	commitKeys(t, e.m, "k", "c")
	// A store that heartbeated once and is now dead.
	e.beat(t, "gone")
	e.clock.Add(time.Hour)
	e.beat(t)

	rep := e.gc(t)
	if rep.FreedBytes != 3*fakeBlockSize || rep.Unreferenced != 3 || len(rep.Stores) != 2 {
		t.Fatalf("report %+v", rep)
	}
	r1, r2 := rep.Stores[0], rep.Stores[1]
	if r1.ID != "s1" || r1.Addr != "host-1:7000" || r1.Listed != 3 || r1.Unreferenced != 1 || r1.FreedBytes != 100 || r1.Error != "" {
		t.Fatalf("s1 %+v", r1)
	}
	if r2.ID != "s2" || r2.Listed != 4 || r2.Unreferenced != 2 || r2.FreedBytes != 200 {
		t.Fatalf("s2 %+v", r2)
	}
	if len(rep.Skipped) != 1 || rep.Skipped[0].ID != "gone" {
		t.Fatalf("skipped %+v", rep.Skipped)
	}
	if want := e.clock.Now(); !rep.NotSince.Equal(want) {
		t.Fatalf("not since %v, want %v", rep.NotSince, want)
	}
	for _, n := range []string{"a", "b"} {
		if !s1.holds(n) {
			t.Fatalf("live block %s deleted from s1", n)
		}
	}
	if s1.holds("orphan1") || s2.holds("orphan2") || s2.holds("orphan3") || !s2.holds("b") || !s2.holds("c") {
		t.Fatal("wrong blocks deleted")
	}
	if st := e.m.GCStatus(); st.Running || st.Last == nil || st.Last.FreedBytes != 300 {
		t.Fatalf("status %+v", st)
	}

	// Deleting a version frees the blocks only it referenced.
	if _, err := e.m.DeleteVersion("j", 1); err != nil {
		t.Fatal(err)
	}
	rep = e.gc(t)
	if rep.FreedBytes != 300 || s1.count() != 0 || s2.count() != 1 || !s2.holds("c") {
		t.Fatalf("after delete: %+v, s1 %d blocks, s2 %d", rep, s1.count(), s2.count())
	}
	if rep = e.gc(t); rep.FreedBytes != 0 || rep.Unreferenced != 0 {
		t.Fatalf("second run %+v", rep)
	}
}

// TestGCSparesConcurrentCheckpoint is the concurrent-checkpoint case: a
// transaction begins, reuses blocks of a version deleted meanwhile (by Has)
// and writes new ones; GCs run while it is in flight, for longer than the
// clock-skew allowance; then it commits and every block it names is there.
func TestGCSparesConcurrentCheckpoint(t *testing.T) {
	e := newGCEnv(t, 1, Options{})
	s := e.stores[0]
	s.put("old1", "old2")
	commitKeys(t, e.m, "j", "old1", "old2")
	e.clock.Add(time.Hour)

	txn, err := e.m.Begin("j")
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Add(time.Minute)
	if held := s.has("old1", "old2"); !held[0] || !held[1] {
		t.Fatal("reused blocks missing")
	}
	s.put("new1")
	// The version the writer reuses from is deleted: old1, old2 are in no
	// committed manifest now.
	if _, err := e.m.DeleteVersion("j", 1); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		for range 4 { // the writer keeps writing and renewing
			e.clock.Add(5 * time.Minute)
			s.put("new2")
			if _, err := e.m.Renew(txn.ID); err != nil {
				t.Fatal(err)
			}
		}
		e.beat(t)
		rep := e.gc(t)
		if rep.Unreferenced != 4 || rep.FreedBytes != 0 {
			t.Fatalf("report %+v", rep)
		}
		if want := txn.Began; !rep.NotSince.Equal(want) {
			t.Fatalf("not since %v, want the transaction's begin %v", rep.NotSince, want)
		}
	}
	vi, err := e.m.Commit(txn.ID, marshal(t, keysManifest("j", "old1", "old2", "new1", "new2")))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"old1", "old2", "new1", "new2"} {
		if !s.holds(n) {
			t.Fatalf("block %s of version %d was collected", n, vi.Version)
		}
	}
	e.clock.Add(time.Hour)
	e.beat(t)
	if rep := e.gc(t); rep.Unreferenced != 0 || s.count() != 4 {
		t.Fatalf("after commit: %+v", rep)
	}
}

// TestGCClockSkewAllowance: a store whose clock is 5 minutes behind the
// manager's records touches "earlier" than they happened. A store that
// reports its clock gets a horizon on that clock and keeps the block with
// no allowance at all; one that does not is protected by the default
// allowance, and would not be without it.
func TestGCClockSkewAllowance(t *testing.T) {
	for _, tc := range []struct {
		skew    time.Duration
		noClock bool
		kept    bool
	}{{-1, false, true}, {0, true, true}, {-1, true, false}} {
		t.Run(fmt.Sprint(tc.skew, tc.noClock), func(t *testing.T) {
			e := newGCEnv(t, 1, Options{GCClockSkew: tc.skew})
			s := e.stores[0]
			s.noClock = tc.noClock
			s.now = func() time.Time { return e.clock.Now().Add(-5 * time.Minute) }
			txn, _ := e.m.Begin("j")
			e.clock.Add(time.Second)
			s.put("b")
			e.gc(t)
			if s.holds("b") != tc.kept {
				t.Fatalf("allowance %v: block held %v", tc.skew, s.holds("b"))
			}
			e.m.Abort(txn.ID)
		})
	}
}

func TestGCCollectsAbortedAndExpired(t *testing.T) {
	e := newGCEnv(t, 1, Options{})
	s := e.stores[0]
	a, _ := e.m.Begin("j")
	s.put("aborted")
	if err := e.m.Abort(a.ID); err != nil {
		t.Fatal(err)
	}
	b, _ := e.m.Begin("j")
	s.put("expired")
	// Within the allowance both are kept.
	if rep := e.gc(t); rep.FreedBytes != 0 || s.count() != 2 {
		t.Fatalf("too early: %+v", rep)
	}
	// b is not renewed: past its expiry it no longer holds T0 back, even
	// before the janitor removes it.
	e.clock.Add(DefaultTxnTimeout + time.Second)
	e.beat(t)
	rep := e.gc(t)
	if rep.FreedBytes != 200 || s.count() != 0 {
		t.Fatalf("once T0 passed: %+v, %d blocks left", rep, s.count())
	}
	_, err := e.m.Commit(b.ID, marshal(t, keysManifest("j", "expired")))
	wantErr(t, err, catalog.ErrUnknownTxn, "expired")
}

func TestGCStoreFailures(t *testing.T) {
	e := newGCEnv(t, 2, Options{})
	e.stores[0].put("x")
	e.stores[1].put("y")
	e.stores[0].mu.listErr = errors.New("disk on fire")
	e.clock.Add(time.Hour)
	e.beat(t, "unreachable")
	rep := e.gc(t)
	if len(rep.Stores) != 3 || rep.FreedBytes != 100 || len(rep.Failed()) != 2 {
		t.Fatalf("report %+v", rep)
	}
	if r := rep.Stores[0]; r.Error != "listing blocks: disk on fire" {
		t.Fatalf("s1 %+v", r)
	}
	if r := rep.Stores[2]; r.ID != "unreachable" || r.Error != "dial unreachable:7000: connection refused" {
		t.Fatalf("unreachable %+v", r)
	}
	if e.stores[1].holds("y") || !e.stores[0].holds("x") {
		t.Fatal("the healthy store was not swept")
	}
}

func TestGCPages(t *testing.T) {
	e := newGCEnv(t, 1, Options{GCClockSkew: -1})
	s := e.stores[0]
	var live []string
	for i := range 2*gcPage + 10 {
		n := fmt.Sprint("b", i)
		s.put(n)
		if i%3 == 0 {
			live = append(live, n)
		}
	}
	commitKeys(t, e.m, "j", live...)
	e.clock.Add(time.Second)
	rep := e.gc(t)
	if r := rep.Stores[0]; r.Listed != 2*gcPage+10 || r.Unreferenced != int64(2*gcPage+10-len(live)) || s.count() != len(live) {
		t.Fatalf("report %+v, %d blocks left", r, s.count())
	}
	if n := s.mu.lists; n != 4 { // three pages and the empty one
		t.Fatalf("%d lists", n)
	}
}

func TestGCOneAtATime(t *testing.T) {
	e := newGCEnv(t, 1, Options{})
	gate := make(chan struct{})
	e.stores[0].mu.Lock()
	e.stores[0].mu.gate = gate
	e.stores[0].mu.Unlock()
	done := make(chan error, 1)
	go func() {
		_, err := e.m.GC(context.Background())
		done <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for !e.m.GCStatus().Running {
		if time.Now().After(deadline) {
			t.Fatal("GC did not start")
		}
		time.Sleep(time.Millisecond)
	}
	_, err := e.m.GC(context.Background())
	wantErr(t, err, catalog.ErrGCRunning, "try again when it ends")
	close(gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	e.gc(t)
}

func TestGCInterruptedByClose(t *testing.T) {
	e := newGCEnv(t, 1, Options{})
	e.stores[0].mu.gate = make(chan struct{}) // never opens
	done := make(chan error, 1)
	go func() {
		_, err := e.m.GC(context.Background())
		done <- err
	}()
	for !e.m.GCStatus().Running {
		time.Sleep(time.Millisecond)
	}
	e.m.Close()
	wantErr(t, <-done, storage.ErrClosed, "interrupted")
}

func TestPeriodicGC(t *testing.T) {
	e := newGCEnv(t, 1, Options{GCEvery: 10 * time.Millisecond, DeadAfter: time.Hour})
	e.stores[0].put("orphan")
	e.clock.Add(time.Hour)
	deadline := time.Now().Add(5 * time.Second)
	for e.stores[0].holds("orphan") {
		if time.Now().After(deadline) {
			t.Fatal("periodic GC did not collect the orphan")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestGCMovesOnFromAStalledStore (finding F2): a store that answers
// nothing is swept under GCSweepTimeout, reported failed, and the others
// are collected; the collection ends, so the next one is not refused as
// running.
func TestGCMovesOnFromAStalledStore(t *testing.T) {
	e := newGCEnv(t, 2, Options{GCSweepTimeout: 50 * time.Millisecond})
	e.stores[0].mu.Lock()
	e.stores[0].mu.gate = make(chan struct{}) // never opens
	e.stores[0].mu.Unlock()
	e.stores[1].put("orphan")
	e.clock.Add(time.Hour)
	e.beat(t)
	rep, err := e.m.GC(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if e.stores[1].holds("orphan") {
		t.Fatal("the answering store was not collected")
	}
	failed := rep.Failed()
	if len(failed) != 1 || failed[0].ID != "s1" || !strings.Contains(failed[0].Error, "not swept within 50ms") {
		t.Fatalf("failed stores %+v, want s1 not swept within the bound", failed)
	}
	if e.m.GCStatus().Running {
		t.Fatal("GC still running after the bounded sweep")
	}
}
