package manager

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/zap/zaptest"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/manifest"
	"github.com/ckptio/ckptio/storage/placement"
)

// repairStore is a fakeStore that also serves Has, Get and Put (a
// RepairStore). A block's bytes are its name (key(name) = Sum(name)).
type repairStore struct {
	*fakeStore
	mu struct {
		sync.Mutex
		data    map[storage.Hash][]byte
		puts    map[storage.Hash]int
		putGate chan struct{} // Put waits for it when not nil
		hasErr  error
		records map[string][]byte // catalog records (records_parts_test.go)
	}
	putting chan struct{} // receives when a Put starts waiting at the gate
}

func newRepairStore(now func() time.Time) *repairStore {
	s := &repairStore{fakeStore: newFakeStore(now), putting: make(chan struct{}, 100)}
	s.mu.data = make(map[storage.Hash][]byte)
	s.mu.puts = make(map[storage.Hash]int)
	s.mu.records = make(map[string][]byte)
	return s
}

func (s *repairStore) store(names ...string) {
	s.put(names...)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range names {
		s.mu.data[key(n)] = []byte(n)
	}
}

// wipe forgets every block, as a store whose disk was replaced.
func (s *repairStore) wipe() {
	s.fakeStore.mu.Lock()
	clear(s.fakeStore.mu.blocks)
	s.fakeStore.mu.Unlock()
}

func (s *repairStore) putsOf(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.puts[key(name)]
}

func (s *repairStore) Has(ctx context.Context, hs []storage.Hash) ([]bool, error) {
	s.mu.Lock()
	err := s.mu.hasErr
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	s.fakeStore.mu.Lock()
	defer s.fakeStore.mu.Unlock()
	out := make([]bool, len(hs))
	for i, h := range hs {
		if _, ok := s.fakeStore.mu.blocks[h]; ok {
			s.fakeStore.mu.blocks[h] = s.now()
			out[i] = true
		}
	}
	return out, nil
}

func (s *repairStore) Get(ctx context.Context, h storage.Hash) ([]byte, error) {
	s.fakeStore.mu.Lock()
	_, ok := s.fakeStore.mu.blocks[h]
	s.fakeStore.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !ok || s.mu.data[h] == nil {
		return nil, storage.ErrNotFound
	}
	return slices.Clone(s.mu.data[h]), nil
}

func (s *repairStore) Put(ctx context.Context, h storage.Hash, data []byte) (bool, error) {
	if storage.Sum(data) != h {
		return false, storage.ErrHashMismatch
	}
	s.mu.Lock()
	gate := s.mu.putGate
	s.mu.Unlock()
	if gate != nil {
		s.putting <- struct{}{}
		select {
		case <-gate:
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
	s.fakeStore.mu.Lock()
	_, held := s.fakeStore.mu.blocks[h]
	s.fakeStore.mu.blocks[h] = s.now()
	s.fakeStore.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.data[h] = slices.Clone(data)
	s.mu.puts[h]++
	return !held, nil
}

// repairEnv is a manager on a fake clock with repair stores s1..sN at
// host-i:7000; store i reports free space (N-i+1) GiB unless set.
type repairEnv struct {
	m      *Manager
	clock  *fakeClock
	stores []*repairStore
	free   []int64
	down   map[int]bool
}

func newRepairEnv(t *testing.T, n int, opts Options) *repairEnv {
	t.Helper()
	e := &repairEnv{clock: newClock(), down: map[int]bool{}}
	byAddr := map[string]*repairStore{}
	for i := range n {
		s := newRepairStore(e.clock.Now)
		e.stores = append(e.stores, s)
		e.free = append(e.free, int64(n-i)<<30)
		byAddr[fmt.Sprintf("host-%d:7000", i+1)] = s
	}
	opts.Token, opts.Logger, opts.Now = testToken, zaptest.NewLogger(t), e.clock.Now
	opts.JanitorEvery, opts.GCEvery = time.Hour, -1
	if opts.RepairEvery == 0 {
		opts.RepairEvery = -1
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

// beat makes every store not down heartbeat now.
func (e *repairEnv) beat(t *testing.T) {
	t.Helper()
	for i := range e.stores {
		if e.down[i] {
			continue
		}
		hb := catalog.Heartbeat{ID: fmt.Sprintf("s%d", i+1), Addr: fmt.Sprintf("host-%d:7000", i+1), Usage: storage.Usage{DiskFree: e.free[i]}}
		if err := e.m.Heartbeat(hb); err != nil {
			t.Fatal(err)
		}
	}
}

// kill makes store i (0-based) dead: the clock passes DeadAfter and the
// others heartbeat.
func (e *repairEnv) kill(t *testing.T, i int) {
	t.Helper()
	e.down[i] = true
	e.clock.Add(DefaultDeadAfter + time.Second)
	e.beat(t)
}

// placed is a block name and the stores a manifest lists for it.
type placed struct {
	name   string
	stores []string
}

// commitPlaced commits a version of job with target replicas naming the
// blocks on the given stores, and puts them there.
func (e *repairEnv) commitPlaced(t *testing.T, job string, replicas int, blocks ...placed) catalog.VersionInfo {
	t.Helper()
	man := &manifest.Manifest{Job: job, Kind: "files", Created: e.clock.Now(), Meta: map[string]string{catalog.MetaReplicas: strconv.Itoa(replicas)}}
	var off int64
	for _, b := range blocks {
		h := key(b.name)
		n := int64(len(b.name))
		man.Blocks = append(man.Blocks, manifest.Block{Object: "f", Rank: -1, Offset: off, Length: n,
			Hash: h, Key: h, StoredLength: n, Codec: manifest.CodecRaw, Stores: b.stores})
		off += n
		for _, id := range b.stores {
			var i int
			fmt.Sscanf(id, "s%d", &i)
			e.stores[i-1].store(b.name)
		}
	}
	txn, err := e.m.Begin(job)
	if err != nil {
		t.Fatal(err)
	}
	vi, err := e.m.Commit(txn.ID, marshal(t, man))
	if err != nil {
		t.Fatal(err)
	}
	return vi
}

func (e *repairEnv) health(t *testing.T, job string) []catalog.VersionHealth {
	t.Helper()
	h, err := e.m.Health(context.Background(), job, 0)
	if err != nil {
		t.Fatal(err)
	}
	return h.Versions
}

func (e *repairEnv) repair(t *testing.T, job string) catalog.RepairReport {
	t.Helper()
	rep, err := e.m.Repair(context.Background(), job)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// storesOf returns the Stores lists of version v's blocks, by block name.
func (e *repairEnv) storesOf(t *testing.T, job string, v int64) map[string][]string {
	t.Helper()
	data, _, err := e.m.Manifest(job, v)
	if err != nil {
		t.Fatal(err)
	}
	man, err := manifest.Unmarshal(data)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, b := range man.Blocks {
		out[b.Object+"@"+strconv.FormatInt(b.Offset, 10)] = b.Stores
	}
	return out
}

func wantStates(t *testing.T, got []catalog.VersionHealth, want ...catalog.HealthState) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("health %+v, want %d versions", got, len(want))
	}
	for i := range want {
		if got[i].State != want[i] {
			t.Fatalf("version %d: state %s, want %s (%+v)", got[i].Version, got[i].State, want[i], got[i])
		}
	}
}

func protected(t *testing.T, m *Manager, job string) []bool {
	t.Helper()
	vs, err := m.Versions(job)
	if err != nil {
		t.Fatal(err)
	}
	var out []bool
	for _, v := range vs {
		out = append(out, v.Protected)
	}
	return out
}

// TestRepairDegradedToHealthy: a version with two copies of each block
// loses a store; it reads degraded, repair copies the blocks to the third
// store and it is healthy again, with the manifest naming the new copies.
func TestRepairDegradedToHealthy(t *testing.T) {
	e := newRepairEnv(t, 3, Options{})
	vi := e.commitPlaced(t, "j", 2, placed{"alpha", []string{"s1", "s2"}}, placed{"beta", []string{"s1", "s2"}})
	if vi.Replicas != 2 || !vi.Protected {
		t.Fatalf("commit %+v", vi)
	}
	wantStates(t, e.health(t, "j"), catalog.StateHealthy)
	if rep := e.repair(t, "j"); rep.Copies != 0 || rep.Updated != 0 || rep.Blocks != 2 || rep.Versions != 1 {
		t.Fatalf("repair of a healthy version %+v", rep)
	}

	e.kill(t, 1)
	h := e.health(t, "j")
	wantStates(t, h, catalog.StateDegraded)
	if h[0].DegradedBlocks != 2 || h[0].LostBlocks != 0 || h[0].MinCopies != 1 || h[0].Target != 2 || h[0].Blocks != 2 {
		t.Fatalf("health %+v", h[0])
	}
	if p := protected(t, e.m, "j"); p[0] {
		t.Fatal("a version with a dead store's copies reads protected")
	}

	rep := e.repair(t, "")
	if rep.Copies != 2 || rep.CopiedBytes != int64(len("alpha")+len("beta")) || rep.Degraded != 2 || rep.Lost != 0 ||
		rep.Unrepaired != 0 || rep.Updated != 1 || len(rep.Skipped) != 1 || rep.Skipped[0].ID != "s2" {
		t.Fatalf("repair %+v", rep)
	}
	if !e.stores[2].holds("alpha") || !e.stores[2].holds("beta") {
		t.Fatal("the third store did not get the copies")
	}
	wantStates(t, e.health(t, "j"), catalog.StateHealthy)
	for b, ids := range e.storesOf(t, "j", 1) {
		if !slices.Equal(ids, []string{"s1", "s3"}) {
			t.Fatalf("block %s listed on %v, want [s1 s3]", b, ids)
		}
	}
	if p := protected(t, e.m, "j"); !p[0] {
		t.Fatal("the repaired version does not read protected")
	}
	if st := e.m.RepairStatus(); st.Running || st.Last == nil || st.Last.Copies != 2 {
		t.Fatalf("status %+v", st)
	}
	// Nothing left to do.
	if rep := e.repair(t, ""); rep.Copies != 0 || rep.Updated != 0 {
		t.Fatalf("second repair %+v", rep)
	}
}

// TestRepairLost: a block whose only holders are dead is lost; repair
// names it and copies nothing.
func TestRepairLost(t *testing.T) {
	e := newRepairEnv(t, 3, Options{})
	e.commitPlaced(t, "j", 1, placed{"solo", []string{"s1"}}, placed{"kept", []string{"s2"}})
	e.commitPlaced(t, "j", 2, placed{"pair", []string{"s1", "s3"}})
	e.kill(t, 0)
	h := e.health(t, "j")
	wantStates(t, h, catalog.StateLost, catalog.StateDegraded)
	if h[0].LostBlocks != 1 || h[0].MinCopies != 0 {
		t.Fatalf("health %+v", h[0])
	}
	rep := e.repair(t, "j")
	if rep.Lost != 1 || len(rep.LostBlocks) != 1 || rep.LostBlocks[0].Key != key("solo") ||
		!slices.Equal(rep.LostBlocks[0].Versions, []int64{1}) || !slices.Equal(rep.LostBlocks[0].Stores, []string{"s1"}) {
		t.Fatalf("repair %+v", rep)
	}
	if rep.Copies != 1 || !e.stores[1].holds("pair") {
		t.Fatalf("the degraded block was not copied: %+v", rep)
	}
	wantStates(t, e.health(t, "j"), catalog.StateLost, catalog.StateHealthy)
	// The lost block keeps its listing, so the store coming back revives it.
	e.down[0] = false
	e.beat(t)
	wantStates(t, e.health(t, "j"), catalog.StateHealthy, catalog.StateHealthy)
}

// TestRepairStaleStore: a store that is alive but lost blocks (it came
// back empty under the same ID) is found by Has and the blocks copied
// again; its listing is dropped.
func TestRepairStaleStore(t *testing.T) {
	e := newRepairEnv(t, 3, Options{})
	e.free[2] = 100 << 30 // s3 has the most room
	e.beat(t)
	e.commitPlaced(t, "j", 2, placed{"x", []string{"s1", "s2"}}, placed{"y", []string{"s1", "s2"}})
	e.stores[1].wipe()
	if p := protected(t, e.m, "j"); !p[0] {
		t.Fatal("the catalog alone cannot see the stale store")
	}
	wantStates(t, e.health(t, "j"), catalog.StateDegraded)
	rep := e.repair(t, "j")
	if rep.Copies != 2 || rep.Stale != 2 || rep.Updated != 1 {
		t.Fatalf("repair %+v", rep)
	}
	var s2 catalog.RepairStoreReport
	for _, s := range rep.Stores {
		if s.ID == "s2" {
			s2 = s
		}
	}
	if s2.Asked != 2 || s2.Missing != 2 {
		t.Fatalf("s2 report %+v", s2)
	}
	for b, ids := range e.storesOf(t, "j", 1) {
		if !slices.Equal(ids, []string{"s1", "s3"}) {
			t.Fatalf("block %s listed on %v, want [s1 s3]", b, ids)
		}
	}
	wantStates(t, e.health(t, "j"), catalog.StateHealthy)
}

// TestRepairPlacement: copies go to alive stores with room (here the only
// two), never two on one store nor onto a holder; with no room left the block
// stays below target and is reported.
func TestRepairPlacement(t *testing.T) {
	e := newRepairEnv(t, 5, Options{})
	e.free = []int64{1 << 30, 1 << 30, 10, 5 << 30, 3 << 30}
	e.beat(t)
	e.commitPlaced(t, "j", 3, placed{"b1", []string{"s1", "s2", "s3"}})
	e.kill(t, 1)
	e.kill(t, 0)
	rep := e.repair(t, "j")
	if rep.Copies != 2 || !e.stores[3].holds("b1") || !e.stores[4].holds("b1") {
		t.Fatalf("repair %+v", rep)
	}
	if got := e.storesOf(t, "j", 1)["f@0"]; !slices.Equal(got, []string{"s3", "s4", "s5"}) {
		t.Fatalf("listed on %v", got)
	}
	// s4 dies: the only alive non-holder is s3... which holds it; none left.
	e.kill(t, 3)
	rep = e.repair(t, "j")
	if rep.Copies != 0 || rep.Unrepaired != 1 || rep.Degraded != 1 {
		t.Fatalf("repair with no room %+v", rep)
	}
	wantStates(t, e.health(t, "j"), catalog.StateDegraded)
}

// TestRepairSharedBlockCopiedOnce: a block named by three versions is
// copied once and every manifest names the new copy.
func TestRepairSharedBlockCopiedOnce(t *testing.T) {
	e := newRepairEnv(t, 3, Options{})
	for i := range 3 {
		e.commitPlaced(t, "j", 2, placed{"shared", []string{"s1", "s2"}}, placed{fmt.Sprint("own", i), []string{"s1", "s2"}})
	}
	e.commitPlaced(t, "k", 1, placed{"other", []string{"s2"}})
	e.kill(t, 1)
	rep := e.repair(t, "")
	if rep.Copies != 4 || rep.Blocks != 5 || rep.Versions != 4 || rep.Updated != 3 || rep.Lost != 1 {
		t.Fatalf("repair %+v", rep)
	}
	if n := e.stores[2].putsOf("shared"); n != 1 {
		t.Fatalf("shared block put %d times", n)
	}
	for v := int64(1); v <= 3; v++ {
		for b, ids := range e.storesOf(t, "j", v) {
			if !slices.Equal(ids, []string{"s1", "s3"}) {
				t.Fatalf("version %d block %s listed on %v", v, b, ids)
			}
		}
	}
	wantStates(t, e.health(t, "j"), catalog.StateHealthy, catalog.StateHealthy, catalog.StateHealthy)
}

// TestRepairConcurrentDelete: a version deleted while its blocks are being
// copied is not brought back by the manifest rewrite.
func TestRepairConcurrentDelete(t *testing.T) {
	e := newRepairEnv(t, 3, Options{})
	e.commitPlaced(t, "j", 2, placed{"a", []string{"s1", "s2"}})
	e.commitPlaced(t, "j", 2, placed{"b", []string{"s1", "s2"}})
	e.kill(t, 1)
	gate := make(chan struct{})
	e.stores[2].mu.Lock()
	e.stores[2].mu.putGate = gate
	e.stores[2].mu.Unlock()
	done := make(chan catalog.RepairReport, 1)
	go func() {
		rep, err := e.m.Repair(context.Background(), "j")
		if err != nil {
			t.Error(err)
		}
		done <- rep
	}()
	<-e.stores[2].putting
	if _, err := e.m.DeleteVersion("j", 1); err != nil {
		t.Fatal(err)
	}
	if st := e.m.RepairStatus(); !st.Running {
		t.Fatalf("status while running %+v", st)
	}
	close(gate)
	rep := <-done
	if rep.Copies != 2 || rep.Updated != 1 || rep.Gone != 1 {
		t.Fatalf("repair %+v", rep)
	}
	if _, err := e.m.Version("j", 1); !errors.Is(err, catalog.ErrUnknownVersion) {
		t.Fatalf("deleted version 1 is back: %v", err)
	}
	if _, _, err := e.m.Manifest("j", 1); !errors.Is(err, catalog.ErrUnknownVersion) {
		t.Fatalf("deleted version 1's manifest is back: %v", err)
	}
	// Its references are gone with it: only b is referenced.
	live, err := e.m.referenced([]storage.Hash{key("a"), key("b")})
	if err != nil || live[0] || !live[1] {
		t.Fatalf("references %v, %v", live, err)
	}
	wantStates(t, e.health(t, "j"), catalog.StateHealthy)
}

// TestRepairUnreachableStore: an alive store that does not answer Has is
// reported; its copies are neither counted nor dropped from the manifest.
func TestRepairUnreachableStore(t *testing.T) {
	e := newRepairEnv(t, 3, Options{})
	e.commitPlaced(t, "j", 2, placed{"a", []string{"s1", "s2"}})
	e.stores[1].mu.hasErr = errors.New("connection reset")
	h, err := e.m.Health(context.Background(), "j", 0)
	if err != nil {
		t.Fatal(err)
	}
	wantStates(t, h.Versions, catalog.StateDegraded)
	failed := 0
	for _, s := range h.Stores {
		if s.Error != "" {
			failed++
			if s.ID != "s2" || s.Error != "has: connection reset" {
				t.Fatalf("store report %+v", s)
			}
		}
	}
	if failed != 1 {
		t.Fatalf("stores %+v", h.Stores)
	}
	rep := e.repair(t, "j")
	if rep.Copies != 1 || len(rep.Failed()) != 1 {
		t.Fatalf("repair %+v", rep)
	}
	if got := e.storesOf(t, "j", 1)["f@0"]; !slices.Equal(got, []string{"s1", "s2", "s3"}) {
		t.Fatalf("listed on %v, want the unsure store kept", got)
	}
}

// TestRepairLoop: the background repair heals a version once a store dies.
func TestRepairLoop(t *testing.T) {
	e := newRepairEnv(t, 3, Options{RepairEvery: 5 * time.Millisecond})
	e.commitPlaced(t, "j", 2, placed{"a", []string{"s1", "s2"}})
	e.kill(t, 1)
	deadline := time.Now().Add(10 * time.Second)
	for !e.stores[2].holds("a") {
		if time.Now().After(deadline) {
			t.Fatal("the periodic repair did not copy the block")
		}
		time.Sleep(5 * time.Millisecond)
	}
	for {
		if p := protected(t, e.m, "j"); p[0] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the periodic repair did not rewrite the manifest")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Nothing changes: no full pass is due once the last one ended.
	for e.m.repairDue() {
		if time.Now().After(deadline) {
			t.Fatal("a pass stays due with nothing changed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// A commit makes one due: a version written below its target is
	// brought up to it.
	e.commitPlaced(t, "j", 2, placed{"b", []string{"s1"}})
	for !e.stores[2].holds("b") {
		if time.Now().After(deadline) {
			t.Fatal("the periodic repair did not copy the new version's block")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRepairInterruptedByClose: an asked-for pass waits for the running
// one; closing the manager interrupts both.
func TestRepairInterruptedByClose(t *testing.T) {
	e := newRepairEnv(t, 3, Options{})
	e.commitPlaced(t, "j", 2, placed{"a", []string{"s1", "s2"}})
	e.kill(t, 1)
	e.stores[2].mu.putGate = make(chan struct{}) // never opens
	done := make(chan error, 2)
	go func() {
		_, err := e.m.Repair(context.Background(), "")
		done <- err
	}()
	<-e.stores[2].putting
	go func() {
		_, err := e.m.Repair(context.Background(), "j")
		done <- err
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := e.m.Repair(ctx, "j"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("repair while one runs: %v", err)
	}
	e.m.Close()
	for range 2 {
		if err := <-done; !errors.Is(err, storage.ErrClosed) {
			t.Fatalf("after close: %v", err)
		}
	}
}

func TestCommitReplicasMeta(t *testing.T) {
	e := newRepairEnv(t, 1, Options{})
	for _, bad := range []string{"0", "-1", "two", "17", ""} {
		man := keysManifest("j", "a")
		man.Meta = map[string]string{catalog.MetaReplicas: bad}
		txn, _ := e.m.Begin("j")
		_, err := e.m.Commit(txn.ID, marshal(t, man))
		wantErr(t, err, catalog.ErrInvalid, "replicas")
	}
	vi := commitKeys(t, e.m, "j", "a")
	if vi.Replicas != 1 || !vi.Protected {
		t.Fatalf("default target: %+v", vi)
	}
}

func TestPlacementProtected(t *testing.T) {
	alive := map[string]catalog.StoreInfo{"a": {}, "b": {}, "c": {}}
	man := &manifest.Manifest{}
	add := func(stores ...string) {
		man.Blocks = append(man.Blocks, manifest.Block{Length: 1, Key: key(fmt.Sprint(len(man.Blocks))), Stores: stores})
	}
	add("a", "b")
	add("b", "d") // d is dead
	add("c", "a")
	man.Blocks = append(man.Blocks, manifest.Block{}) // an empty object
	p := placementOf(man)
	if len(p.Sets) != 3 || p.MinListed != 2 || p.Blocks != 3 || !slices.Equal(p.Stores, []string{"a", "b", "c", "d"}) {
		t.Fatalf("placement %+v", p)
	}
	if !p.protected(1, alive) || p.protected(2, alive) {
		t.Fatal("exact sets")
	}
	// Many distinct sets: only the union and the minimum are kept, which
	// answers conservatively.
	man.Blocks = nil
	for i := range maxPlacementSets + 1 {
		add("a", fmt.Sprint("s", i))
		alive[fmt.Sprint("s", i)] = catalog.StoreInfo{}
	}
	p = placementOf(man)
	if p.Sets != nil || !p.protected(2, alive) {
		t.Fatalf("fallback %+v", p.Sets)
	}
	delete(alive, "s3")
	if p.protected(1, alive) {
		t.Fatal("the fallback is not conservative")
	}
	if !(storeSets{}).protected(3, nil) {
		t.Fatal("a version with no data is protected")
	}
}

func TestAPIHealthAndRepair(t *testing.T) {
	ctx := context.Background()
	stores := map[string]*repairStore{"s1": newRepairStore(time.Now), "s2": newRepairStore(time.Now)}
	m, _, c := serve(t, Options{GCEvery: -1, RepairEvery: -1, DialStore: func(ctx context.Context, id, addr string) (GCStore, error) {
		return stores[id], nil
	}})
	for id := range stores {
		if err := c.Heartbeat(ctx, catalog.Heartbeat{ID: id, Addr: "127.0.0.1:9", Usage: storage.Usage{DiskFree: 1 << 30}}); err != nil {
			t.Fatal(err)
		}
	}
	stores["s1"].store("a")
	man := &manifest.Manifest{Job: "j", Kind: "files", Meta: map[string]string{catalog.MetaReplicas: "2"}, Blocks: []manifest.Block{{
		Object: "f", Rank: -1, Length: 1, Hash: key("a"), Key: key("a"), StoredLength: 1, Codec: manifest.CodecRaw, Stores: []string{"s1"}}}}
	txn, _ := c.Begin(ctx, "j")
	if _, err := c.Commit(ctx, txn.ID, marshal(t, man)); err != nil {
		t.Fatal(err)
	}
	if vs, err := c.Versions(ctx, "j"); err != nil || vs[0].Replicas != 2 || vs[0].Protected {
		t.Fatalf("versions %+v, %v", vs, err)
	}
	h, err := c.Health(ctx, "j", 0)
	if err != nil || len(h.Versions) != 1 || h.Versions[0].State != catalog.StateDegraded || h.Job != "j" {
		t.Fatalf("health %+v, %v", h, err)
	}
	if h, err := c.Health(ctx, "j", 1); err != nil || len(h.Versions) != 1 || h.Versions[0].Version != 1 {
		t.Fatalf("health of version 1 %+v, %v", h, err)
	}
	_, err = c.Health(ctx, "j", 2)
	wantErr(t, err, catalog.ErrUnknownVersion, "no version 2")
	_, err = c.Health(ctx, "nope", 0)
	wantErr(t, err, catalog.ErrUnknownJob, "nope")
	_, err = c.Repair(ctx, "nope")
	wantErr(t, err, catalog.ErrUnknownJob, "nope")
	rep, err := c.Repair(ctx, "j")
	if err != nil || rep.Copies != 1 || rep.Job != "j" || !stores["s2"].holds("a") {
		t.Fatalf("repair %+v, %v", rep, err)
	}
	if vs, err := c.Versions(ctx, "j"); err != nil || !vs[0].Protected {
		t.Fatalf("versions after repair %+v, %v", vs, err)
	}
	if st, err := c.RepairStatus(ctx); err != nil || st.Running || st.Last == nil || st.Last.Copies != 1 {
		t.Fatalf("status %+v, %v", st, err)
	}
	if rep, err := c.Repair(ctx, ""); err != nil || rep.Copies != 0 || rep.Job != "" {
		t.Fatalf("repair all %+v, %v", rep, err)
	}
	_ = m
}

// TestPlacementsBuiltForOldCatalog: a catalog without placements (from
// before them) answers Protected from the manifests, and gets them built
// when opened.
func TestPlacementsBuiltForOldCatalog(t *testing.T) {
	dir := t.TempDir()
	clock := newClock()
	m, err := Open(dir, Options{Token: testToken, Logger: zaptest.NewLogger(t), Now: clock.Now, JanitorEvery: time.Hour, GCEvery: -1, RepairEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Heartbeat(catalog.Heartbeat{ID: "s1", Addr: "h:1"}); err != nil {
		t.Fatal(err)
	}
	commitKeys(t, m, "j", "a", "b")
	if err := m.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketJobs).Bucket([]byte("j")).DeleteBucket(bucketPlacements); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Delete(keyPlacements)
	}); err != nil {
		t.Fatal(err)
	}
	if p := protected(t, m, "j"); !p[0] {
		t.Fatal("not protected without a stored placement")
	}
	m.Close()
	m, err = Open(dir, Options{Token: testToken, Logger: zaptest.NewLogger(t), Now: clock.Now, JanitorEvery: time.Hour, GCEvery: -1, RepairEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var p storeSets
	if err := m.db.View(func(tx *bolt.Tx) error {
		pb := tx.Bucket(bucketJobs).Bucket([]byte("j")).Bucket(bucketPlacements)
		if pb == nil || pb.Get(vkey(1)) == nil {
			return errors.New("no placement built")
		}
		return json.Unmarshal(pb.Get(vkey(1)), &p)
	}); err != nil {
		t.Fatal(err)
	}
	if p.Blocks != 2 || !slices.Equal(p.Stores, []string{"s1"}) {
		t.Fatalf("placement %+v", p)
	}
	// s1 has not heartbeated this manager: nothing is alive.
	if p := protected(t, m, "j"); p[0] {
		t.Fatal("protected with its store dead")
	}
}

// TestRepairPlacesWhereTheWriterWould: a copy re-created by repair goes to
// the store the writers' placement ranks first among the alive stores with
// room that do not hold the block, so equal blocks keep meeting on the
// same stores after a repair.
func TestRepairPlacesWhereTheWriterWould(t *testing.T) {
	e := newRepairEnv(t, 6, Options{})
	var blocks []placed
	for i := range 40 {
		blocks = append(blocks, placed{fmt.Sprintf("block-%02d", i), []string{"s1", "s2"}})
	}
	e.commitPlaced(t, "j", 2, blocks...)
	e.kill(t, 0)
	if rep := e.repair(t, "j"); rep.Copies != 40 {
		t.Fatalf("repair made %d copies, want 40: %+v", rep.Copies, rep)
	}
	var alive []placement.Store
	for i := 1; i < 6; i++ {
		alive = append(alive, placement.Store{ID: fmt.Sprintf("s%d", i+1), Free: e.free[i]})
	}
	p := placement.New(alive)
	got := e.storesOf(t, "j", 1)
	var off int64
	for _, b := range blocks {
		pick := p.Pick(key(b.name), 1, func(i int) bool { return p.ID(i) == "s2" })
		want := []string{"s2", p.ID(pick[0])}
		slices.Sort(want)
		where := "f@" + strconv.FormatInt(off, 10)
		if !slices.Equal(got[where], want) {
			t.Fatalf("%s: repaired onto %v, the writers' placement says %v", b.name, got[where], want)
		}
		off += int64(len(b.name))
	}
}

// TestRepairProgress: while a pass runs, RepairStatus counts the jobs,
// the blocks surveyed and the bytes of copies planned and made; once it
// ends, the progress is gone and the report is the last one.
func TestRepairProgress(t *testing.T) {
	e := newRepairEnv(t, 3, Options{})
	e.commitPlaced(t, "j", 2, placed{"alpha", []string{"s1", "s2"}}, placed{"beta", []string{"s1", "s2"}})
	e.kill(t, 1)
	gate := make(chan struct{})
	e.stores[2].mu.Lock()
	e.stores[2].mu.putGate = gate
	e.stores[2].mu.Unlock()
	done := make(chan catalog.RepairReport, 1)
	go func() {
		rep, err := e.m.Repair(context.Background(), "")
		if err != nil {
			t.Error(err)
		}
		done <- rep
	}()
	<-e.stores[2].putting // a copy waits at the gate: none is made yet
	st := e.m.RepairStatus()
	want := catalog.RepairProgress{Jobs: 1, Blocks: 2, CopyBytes: int64(len("alpha") + len("beta"))}
	if !st.Running || st.Progress == nil || *st.Progress != want {
		t.Fatalf("status while running: %+v, progress %+v, want %+v", st, st.Progress, want)
	}
	close(gate)
	rep := <-done
	if rep.Copies != 2 {
		t.Fatalf("repair %+v", rep)
	}
	if st := e.m.RepairStatus(); st.Running || st.Progress != nil || st.Last == nil || st.Last.CopiedBytes != want.CopyBytes {
		t.Fatalf("status after the pass: %+v", st)
	}
}
