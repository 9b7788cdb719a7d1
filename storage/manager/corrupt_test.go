package manager

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ckptio/ckptio/storage/catalog"
)

// TestReportCorrupt: the manager reads reported copies back itself; it
// drops the one that does not match its key (from a store that did not
// drop it on its own), keeps the intact one whatever the report says,
// counts one already gone as dropped, and queues a repair only when
// background repair is on; the repair then restores the target.
func TestReportCorrupt(t *testing.T) {
	ctx := context.Background()
	for _, background := range []bool{false, true} {
		repaired := make(chan string, 10)
		opts := Options{hooks: &hooks{repaired: func(job string) { repaired <- job }}}
		if background {
			opts.RepairEvery = time.Hour
		}
		e := newRepairEnv(t, 3, opts)
		e.commitPlaced(t, "job", 2, placed{"aa", []string{"s1", "s2"}}, placed{"bb", []string{"s1", "s2"}})
		e.clock.Add(time.Second)
		// s1's copy of aa rots; s2's copy of bb is gone (its store dropped it).
		s1, s2 := e.storeOf("s1"), e.storeOf("s2")
		s1.mu.Lock()
		s1.mu.data[key("aa")] = []byte("ab")
		s1.mu.Unlock()
		s2.fakeStore.mu.Lock()
		delete(s2.fakeStore.mu.blocks, key("bb"))
		s2.fakeStore.mu.Unlock()

		req := catalog.CorruptRequest{Copies: []catalog.CorruptCopy{
			{Store: "s1", Key: key("aa")}, {Store: "s2", Key: key("aa")}, {Store: "s2", Key: key("bb")},
			{Store: "s9", Key: key("aa")},
		}}
		rep, err := e.m.ReportCorrupt(ctx, "job", req)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Dropped != 2 || rep.Intact != 1 || len(rep.Failed) != 1 || rep.Failed[0].ID != "s9" || rep.RepairQueued != background {
			t.Fatalf("background repair %v: report %+v", background, rep)
		}
		if s1.holds("aa") || !e.storeOf("s2").holds("aa") {
			t.Fatalf("after the report: s1 holds aa %v (want dropped), s2 %v (want kept)", s1.holds("aa"), s2.holds("aa"))
		}
		if !background {
			if h := e.health(t, "job"); h[0].State != catalog.StateDegraded {
				t.Fatalf("health after the drop: %+v, want degraded", h)
			}
			e.repair(t, "job")
		} else {
			awaitEvents(t, repaired, "the repair the report queued", "job")
		}
		if h := e.health(t, "job"); h[0].State != catalog.StateHealthy {
			t.Fatalf("background repair %v: health after the repair: %+v", background, h)
		}
	}

	e := newRepairEnv(t, 1, Options{})
	if _, err := e.m.ReportCorrupt(ctx, "nojob", catalog.CorruptRequest{}); !errors.Is(err, catalog.ErrUnknownJob) {
		t.Errorf("a report on an unknown job: %v", err)
	}
	e.commitPlaced(t, "job", 1, placed{"aa", []string{"s1"}})
	many := catalog.CorruptRequest{Copies: make([]catalog.CorruptCopy, catalog.MaxCorruptCopies+1)}
	if _, err := e.m.ReportCorrupt(ctx, "job", many); !errors.Is(err, catalog.ErrInvalid) {
		t.Errorf("a report of %d copies: %v", len(many.Copies), err)
	}
}

// TestSpotCheckCatchesALyingStore (finding F8): a store that answers Has
// for blocks it does not have (it threw the data away) fails the spot
// checks: none of its copies count, so health says degraded, not healthy,
// the report names it, and repair makes the copies elsewhere. A store
// with one corrupt copy among good ones loses that copy only.
func TestSpotCheckCatchesALyingStore(t *testing.T) {
	e := newRepairEnv(t, 3, Options{})
	e.commitPlaced(t, "job", 2, placed{"aa", []string{"s1", "s2"}}, placed{"bb", []string{"s1", "s2"}})
	liar := e.storeOf("s2")
	liar.mu.Lock()
	clear(liar.mu.data) // Has still says held
	liar.mu.Unlock()
	h, err := e.m.Health(context.Background(), "job", 0)
	if err != nil {
		t.Fatal(err)
	}
	if h.Versions[0].State != catalog.StateDegraded || h.Versions[0].DegradedBlocks != 2 {
		t.Fatalf("health with a lying store: %+v, want both blocks degraded", h.Versions[0])
	}
	named := false
	for _, r := range h.Stores {
		if r.ID == "s2" && strings.Contains(r.Error, "spot check") && strings.Contains(r.Error, "none of its 2 copies count") {
			named = true
		}
	}
	if !named {
		t.Fatalf("the health report does not name the lying store: %+v", h.Stores)
	}
	if rep := e.repair(t, "job"); rep.Copies != 2 {
		t.Fatalf("repair made %d copies, want 2 (on s3)", rep.Copies)
	}
	if h := e.health(t, "job"); h[0].State != catalog.StateHealthy {
		t.Fatalf("after the repair: %+v", h[0])
	}

	// With spot checks off (SpotChecks < 0) Has is taken at its word.
	off := newRepairEnv(t, 3, Options{SpotChecks: -1})
	off.commitPlaced(t, "job", 2, placed{"aa", []string{"s1", "s2"}})
	l := off.storeOf("s2")
	l.mu.Lock()
	clear(l.mu.data)
	l.mu.Unlock()
	if h := off.health(t, "job"); h[0].State != catalog.StateHealthy {
		t.Fatalf("with spot checks off: %+v, want healthy (nothing read back)", h[0])
	}

	// One corrupt copy among good ones: only it stops counting.
	e = newRepairEnv(t, 3, Options{})
	e.commitPlaced(t, "job", 2, placed{"aa", []string{"s1", "s2"}}, placed{"bb", []string{"s1", "s2"}})
	s2 := e.storeOf("s2")
	s2.mu.Lock()
	s2.mu.data[key("bb")] = []byte("xx")
	s2.mu.Unlock()
	if h := e.health(t, "job"); h[0].DegradedBlocks != 1 {
		t.Fatalf("health with one corrupt copy: %+v, want 1 block degraded", h[0])
	}
}
