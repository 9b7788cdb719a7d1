package manager

import (
	"context"
	"testing"
	"time"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/catalog"
)

// TestDiscardSparesWhatOthersRelyOn: an aborted write asks to discard
// the blocks it created. A block a committed version names stays, and so
// does one that a writer still in flight touched (it deduplicated against
// it); the others go, and the store's usage in the store list is its
// own at once. Once that writer is gone, the block it had touched goes
// too.
func TestDiscardSparesWhatOthersRelyOn(t *testing.T) {
	e := newGCEnv(t, 1, Options{})
	s := e.stores[0]
	s.put("committed", "mine", "shared")
	commitKeys(t, e.m, "j", "committed")
	e.clock.Add(time.Minute)
	other, err := e.m.Begin("k")
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Add(time.Minute)
	if held := s.has("shared"); !held[0] {
		t.Fatal("shared block missing")
	}
	e.clock.Add(time.Minute)
	e.beat(t) // the heartbeat says nothing is used
	req := catalog.DiscardRequest{Stores: map[string][]storage.Hash{"s1": {key("committed"), key("mine"), key("shared")}}}
	rep, err := e.m.Discard(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Asked != 3 || rep.Deleted != 2 || rep.FreedBytes != fakeBlockSize || len(rep.Failed) != 0 {
		t.Fatalf("report %+v", rep)
	}
	if s.holds("mine") || !s.holds("committed") || !s.holds("shared") {
		t.Fatalf("committed %v, mine %v, shared %v: want mine alone deleted", s.holds("committed"), s.holds("mine"), s.holds("shared"))
	}
	if st, _ := e.m.store("s1"); st.Used != 2*fakeBlockSize || st.Blocks != 2 {
		t.Fatalf("store list says %+v after the discard, the store holds 2 blocks", st.Usage)
	}
	if err := e.m.Abort(other.ID); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(time.Minute)
	e.beat(t)
	if rep, err = e.m.Discard(context.Background(), req); err != nil || rep.Deleted != 2 || s.holds("shared") || !s.holds("committed") {
		t.Fatalf("after the other writer ended: %+v, %v; shared held %v", rep, err, s.holds("shared"))
	}

	// A store that is not alive is reported, its blocks left to GC.
	req.Stores = map[string][]storage.Hash{"nope": {key("x")}}
	if rep, err = e.m.Discard(context.Background(), req); err != nil || len(rep.Failed) != 1 || rep.Failed[0].ID != "nope" {
		t.Fatalf("unknown store: %+v, %v", rep, err)
	}
}

// TestGCRefreshesUsage: right after a sweep, the store list shows the
// store's own usage, not its last heartbeat's.
func TestGCRefreshesUsage(t *testing.T) {
	e := newGCEnv(t, 1, Options{})
	s := e.stores[0]
	s.put("live", "orphan")
	commitKeys(t, e.m, "j", "live")
	e.clock.Add(time.Minute)
	e.beat(t)
	if st, _ := e.m.store("s1"); st.Used != 0 {
		t.Fatalf("heartbeat said %d used", st.Used)
	}
	e.gc(t)
	if st, _ := e.m.store("s1"); st.Used != fakeBlockSize || st.Blocks != 1 {
		t.Fatalf("after gc the store list says %+v, the store holds one block", st.Usage)
	}
}
