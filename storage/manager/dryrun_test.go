package manager

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/ckptio/ckptio/storage/catalog"
)

// TestGCDryRunDeletesNothing: a dry run counts, per store, what a
// collection deletes, with an estimate of the bytes, and deletes nothing;
// the collection after it deletes exactly that.
func TestGCDryRunDeletesNothing(t *testing.T) {
	e := newGCEnv(t, 2, Options{})
	s1, s2 := e.stores[0], e.stores[1]
	s1.put("a", "b", "orphan1")
	s2.put("b", "c", "orphan2", "orphan3")
	commitKeys(t, e.m, "j", "a", "b", "c")
	e.clock.Add(time.Hour)
	e.beat(t)

	dry, err := e.m.GCDryRun(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !dry.DryRun || dry.Unreferenced != 3 || dry.FreedBytes != 0 || dry.EstimatedBytes != 3*fakeBlockSize || len(dry.Stores) != 2 {
		t.Fatalf("dry run report %+v", dry)
	}
	if r := dry.Stores[1]; r.ID != "s2" || r.Listed != 4 || r.Unreferenced != 2 || r.EstimatedBytes != 2*fakeBlockSize {
		t.Fatalf("s2 %+v", r)
	}
	if s1.count() != 3 || s2.count() != 4 || !s1.holds("orphan1") {
		t.Fatalf("a dry run deleted blocks: s1 %d, s2 %d", s1.count(), s2.count())
	}
	if st := e.m.GCStatus(); st.Last != nil {
		t.Fatalf("a dry run is recorded as the last collection: %+v", st.Last)
	}
	rep := e.gc(t)
	if rep.DryRun || rep.Unreferenced != dry.Unreferenced || rep.FreedBytes != dry.EstimatedBytes {
		t.Fatalf("collection after the dry run: %+v", rep)
	}
	if s1.count() != 2 || s2.count() != 2 {
		t.Fatalf("after the collection: s1 %d, s2 %d", s1.count(), s2.count())
	}
}

// TestPreviewRetention: the preview lists what SetRetention deletes and
// changes nothing: neither the versions nor the stored policy.
func TestPreviewRetention(t *testing.T) {
	m := open(t, t.TempDir(), newClock())
	for range 4 {
		commitKeys(t, m, "j", "a")
	}
	r := catalog.Retention{KeepLast: 2}
	got, err := m.PreviewRetention("j", r)
	if err != nil || !slices.Equal(got, []int64{1, 2}) {
		t.Fatalf("preview keep-last 2: %v, %v", got, err)
	}
	if vs := versionNumbers(t, m, "j"); !slices.Equal(vs, []int64{1, 2, 3, 4}) {
		t.Fatalf("versions after a preview: %v", vs)
	}
	if cur, err := m.Retention("j"); err != nil || cur.IsSet() {
		t.Fatalf("a preview stored the policy: %+v, %v", cur, err)
	}
	if got, err := m.PreviewRetention("never", r); err != nil || len(got) != 0 {
		t.Fatalf("preview of a job that never committed: %v, %v", got, err)
	}
	if _, err := m.PreviewRetention("bad/name", r); err == nil {
		t.Fatal("preview of a bad job name succeeded")
	}
	deleted, err := m.SetRetention("j", r)
	if err != nil || !slices.Equal(deleted, []int64{1, 2}) {
		t.Fatalf("set after preview: %v, %v", deleted, err)
	}
}
