package manager

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/catalog"
)

// beatBusy heartbeats store i (0-based) of e, busy with reason when not "".
func (e *repairEnv) beatBusy(t *testing.T, i int, reason string) {
	t.Helper()
	hb := catalog.Heartbeat{ID: fmt.Sprintf("s%d", i+1), Addr: fmt.Sprintf("host-%d:7000", i+1),
		Usage: storage.Usage{DiskFree: e.free[i]}, Busy: reason != "", BusyReason: reason}
	if err := e.m.Heartbeat(hb); err != nil {
		t.Fatal(err)
	}
}

func (e *repairEnv) copies(t *testing.T, id string) catalog.StoreCopies {
	t.Helper()
	c, err := e.m.StoreCopies(id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestDrainMovesCopiesThenForget: a draining store's copies stop counting,
// repair copies its blocks elsewhere and takes it off the manifests, and
// then it can be forgotten; its heartbeats are refused afterwards.
func TestDrainMovesCopiesThenForget(t *testing.T) {
	e := newRepairEnv(t, 3, Options{})
	e.commitPlaced(t, "j", 2, placed{"alpha", []string{"s1", "s2"}}, placed{"beta", []string{"s1", "s2"}})
	// s2 alone holds one copy of the two wanted: s1 is needed.
	if c := e.copies(t, "s1"); c.Blocks != 2 || c.Versions != 1 || c.Pending != 2 || c.OnlyCopy != 0 {
		t.Fatalf("copies of s1 before the drain %+v", c)
	}
	info, err := e.m.DrainStore("s1", true)
	if err != nil || !info.Draining || info.DrainingSince.IsZero() || !info.Alive {
		t.Fatalf("drain = %+v, %v", info, err)
	}
	// Its copies still count for health (they are there to read) but not
	// for the drain: each block has one copy elsewhere, of two wanted.
	wantStates(t, e.health(t, "j"), catalog.StateHealthy)
	if c := e.copies(t, "s1"); c.Blocks != 2 || c.Pending != 2 || c.OnlyCopy != 0 {
		t.Fatalf("copies of s1 draining %+v", c)
	}
	rep := e.repair(t, "")
	if rep.Copies != 2 || rep.Degraded != 2 || rep.Updated != 1 || rep.Unrepaired != 0 {
		t.Fatalf("repair %+v", rep)
	}
	if !e.stores[2].holds("alpha") || !e.stores[2].holds("beta") {
		t.Fatal("the copies did not move to s3")
	}
	for b, ids := range e.storesOf(t, "j", 1) {
		if !slices.Equal(ids, []string{"s2", "s3"}) {
			t.Fatalf("block %s listed on %v, want [s2 s3]", b, ids)
		}
	}
	if c := e.copies(t, "s1"); c.Blocks != 0 || c.Pending != 0 {
		t.Fatalf("copies of s1 drained %+v", c)
	}
	// A second pass has nothing to do.
	if rep := e.repair(t, ""); rep.Copies != 0 || rep.Updated != 0 {
		t.Fatalf("second repair %+v", rep)
	}

	if _, err := e.m.ForgetStore("s1"); err != nil {
		t.Fatal(err)
	}
	for _, st := range e.m.Stores() {
		if st.ID == "s1" {
			t.Fatal("s1 still listed after forget")
		}
	}
	err = e.m.Heartbeat(catalog.Heartbeat{ID: "s1", Addr: "host-1:7000"})
	if !errors.Is(err, catalog.ErrConflict) || !strings.Contains(err.Error(), "forgotten") {
		t.Fatalf("heartbeat of a forgotten store = %v", err)
	}
	if _, err := e.m.ForgetStore("s1"); !errors.Is(err, catalog.ErrUnknownStore) {
		t.Fatalf("forgetting twice = %v", err)
	}
	wantStates(t, e.health(t, "j"), catalog.StateHealthy)
}

// TestDrainCopiesOnlyCopy: a block only a draining store holds is copied
// off it, and the store is kept on the list until then.
func TestDrainCopiesOnlyCopy(t *testing.T) {
	e := newRepairEnv(t, 2, Options{})
	e.commitPlaced(t, "j", 1, placed{"solo", []string{"s1"}})
	if _, err := e.m.DrainStore("s1", true); err != nil {
		t.Fatal(err)
	}
	if c := e.copies(t, "s1"); c.OnlyCopy != 1 || c.OnlyVersions != 1 || c.Pending != 1 {
		t.Fatalf("copies %+v", c)
	}
	_, err := e.m.ForgetStore("s1")
	if !errors.Is(err, catalog.ErrOnlyCopy) || !strings.Contains(err.Error(), "only copy of 1 blocks, named by 1 versions") {
		t.Fatalf("forget of the only copy = %v", err)
	}
	if rep := e.repair(t, ""); rep.Copies != 1 || !e.stores[1].holds("solo") {
		t.Fatalf("repair %+v", rep)
	}
	if c := e.copies(t, "s1"); c.Blocks != 0 {
		t.Fatalf("copies after repair %+v", c)
	}
	if _, err := e.m.ForgetStore("s1"); err != nil {
		t.Fatal(err)
	}
}

func TestForgetRefuses(t *testing.T) {
	e := newRepairEnv(t, 4, Options{})
	e.commitPlaced(t, "j", 1, placed{"solo", []string{"s1"}}, placed{"both", []string{"s1", "s2"}})
	e.commitPlaced(t, "j", 1, placed{"solo", []string{"s1"}})
	// An alive store must be drained first.
	if _, err := e.m.ForgetStore("s2"); !errors.Is(err, catalog.ErrConflict) || !strings.Contains(err.Error(), "ckpt stores drain s2") {
		t.Fatalf("forget of an alive store = %v", err)
	}
	if _, err := e.m.ForgetStore("nope"); !errors.Is(err, catalog.ErrUnknownStore) {
		t.Fatalf("forget of an unknown store = %v", err)
	}
	// s1 and s4 die; s1 holds the only copy of "solo" (two versions).
	e.down[0], e.down[3] = true, true
	e.kill(t, 0)
	_, err := e.m.ForgetStore("s1")
	if !errors.Is(err, catalog.ErrOnlyCopy) || !strings.Contains(err.Error(), "1 blocks, named by 2 versions") ||
		!strings.Contains(err.Error(), "bring it back") {
		t.Fatalf("forget of a dead store with the only copy = %v", err)
	}
	// A dead store holding nothing unique goes.
	if _, err := e.m.ForgetStore("s4"); err != nil {
		t.Fatalf("forget of a dead store holding nothing: %v", err)
	}
	if len(e.m.Stores()) != 3 {
		t.Fatalf("stores %+v", e.m.Stores())
	}
}

// TestBusyStoreDefersRepair: repair neither copies onto nor off a busy
// store, says so, and copies once it is idle again.
func TestBusyStoreDefersRepair(t *testing.T) {
	e := newRepairEnv(t, 3, Options{})
	e.commitPlaced(t, "j", 2, placed{"alpha", []string{"s1", "s2"}})
	e.kill(t, 1) // alpha has one copy, on s1; s3 is the only place for another
	e.beatBusy(t, 2, "quiet hours 22:00-07:00")
	rep := e.repair(t, "")
	if rep.Copies != 0 || rep.Unrepaired != 1 || rep.Deferred != 1 || len(rep.Busy) != 1 ||
		rep.Busy[0].ID != "s3" || rep.Busy[0].Reason != "busy: quiet hours 22:00-07:00" {
		t.Fatalf("repair onto a busy store %+v", rep)
	}
	if e.stores[2].putsOf("alpha") != 0 {
		t.Fatal("repair put a copy on a busy store")
	}
	// The source busy, the destination idle: still deferred.
	e.beatBusy(t, 2, "")
	e.beatBusy(t, 0, "cpu 90% busy (threshold 50%)")
	if rep := e.repair(t, ""); rep.Copies != 0 || rep.Deferred != 1 {
		t.Fatalf("repair off a busy store %+v", rep)
	}
	// Idle again: the periodic repair is due, and the copy is made.
	e.m.mu.Lock()
	e.m.mu.repair.dirty = false
	e.m.mu.Unlock()
	e.beatBusy(t, 0, "")
	if !e.m.repairDue() {
		t.Fatal("a store that is idle again does not make a repair due")
	}
	if rep := e.repair(t, ""); rep.Copies != 1 || rep.Deferred != 0 || !e.stores[2].holds("alpha") {
		t.Fatalf("repair once idle %+v", rep)
	}
}

// TestBusyStoreSkippedByGC: the sweep leaves a busy store alone, says why,
// and asks for a catch-up run when it is idle again.
func TestBusyStoreSkippedByGC(t *testing.T) {
	e := newGCEnv(t, 2, Options{})
	s1, s2 := e.stores[0], e.stores[1]
	s1.put("orphan1")
	s2.put("orphan2")
	e.clock.Add(time.Hour)
	e.beat(t)
	if err := e.m.Heartbeat(catalog.Heartbeat{ID: "s2", Addr: "host-2:7000", Busy: true, BusyReason: "disk sda 91% busy (threshold 50%)"}); err != nil {
		t.Fatal(err)
	}
	rep := e.gc(t)
	if len(rep.Stores) != 1 || rep.Stores[0].ID != "s1" || len(rep.Skipped) != 1 ||
		rep.Skipped[0].ID != "s2" || rep.Skipped[0].Reason != "busy: disk sda 91% busy (threshold 50%)" {
		t.Fatalf("gc with a busy store %+v", rep)
	}
	if s1.holds("orphan1") || !s2.holds("orphan2") {
		t.Fatal("the busy store was swept, or the idle one was not")
	}
	if len(e.m.gcWake) != 0 {
		t.Fatal("catch-up asked while the store is still busy")
	}
	e.beat(t) // s2 idle again
	select {
	case <-e.m.gcWake:
	default:
		t.Fatal("a store skipped as busy and idle again does not ask for a catch-up GC")
	}
	if rep := e.gc(t); len(rep.Stores) != 2 || s2.holds("orphan2") {
		t.Fatalf("catch-up gc %+v", rep)
	}
}

// TestDrainPersistsAndForgetSticks: the drain state and a forgotten store
// survive a restart of the manager.
func TestDrainPersistsAndForgetSticks(t *testing.T) {
	dir, clock := t.TempDir(), newClock()
	m := open(t, dir, clock)
	for _, id := range []string{"a", "b"} {
		if err := m.Heartbeat(catalog.Heartbeat{ID: id, Addr: id + ":1", Label: "desk of " + id}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.DrainStore("a", true); err != nil {
		t.Fatal(err)
	}
	if _, err := m.DrainStore("b", true); err != nil {
		t.Fatal(err)
	}
	if _, err := m.DrainStore("b", false); err != nil {
		t.Fatal(err)
	}
	if _, err := m.DrainStore("zzz", true); !errors.Is(err, catalog.ErrUnknownStore) {
		t.Fatalf("drain of an unknown store = %v", err)
	}
	// A heartbeat after the drain does not undo it.
	if err := m.Heartbeat(catalog.Heartbeat{ID: "a", Addr: "a:1", Label: "desk of a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.ForgetStore("b"); !errors.Is(err, catalog.ErrConflict) {
		t.Fatalf("forget of alive b = %v", err)
	}
	if _, err := m.ForgetStore("a"); err != nil { // draining, holds nothing
		t.Fatal(err)
	}
	m.Close()

	m = open(t, dir, clock)
	st := m.Stores()
	if len(st) != 1 || st[0].ID != "b" || st[0].Draining || st[0].Label != "desk of b" {
		t.Fatalf("stores after reopen %+v", st)
	}
	if err := m.Heartbeat(catalog.Heartbeat{ID: "a", Addr: "a:1"}); !errors.Is(err, catalog.ErrConflict) {
		t.Fatalf("heartbeat of forgotten a after reopen = %v", err)
	}
	if _, err := m.DrainStore("b", true); err != nil {
		t.Fatal(err)
	}
	m.Close()
	m = open(t, dir, clock)
	if st := m.Stores(); len(st) != 1 || !st[0].Draining || st[0].DrainingSince.IsZero() {
		t.Fatalf("drain after reopen %+v", st)
	}
}
