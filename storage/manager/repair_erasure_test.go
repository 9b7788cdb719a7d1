package manager

import (
	"context"
	"errors"
	"math/rand"
	"slices"
	"testing"
	"time"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/erasure"
	"github.com/ckptio/ckptio/storage/manifest"
)

// commitCoded commits a version of job holding one rs:K+M block of data,
// its shards put on the stores named (s1.., in shard order).
func (e *repairEnv) commitCoded(t *testing.T, job string, sc erasure.Scheme, data []byte, stores []string) (catalog.VersionInfo, manifest.Block) {
	t.Helper()
	shards, err := sc.Split(data)
	if err != nil {
		t.Fatal(err)
	}
	h := storage.Sum(data)
	b := manifest.Block{Object: "f", Rank: -1, Length: int64(len(data)), Hash: h, Key: h, StoredLength: int64(len(data)),
		Codec: manifest.CodecRaw, Stores: stores, DataShards: sc.Data}
	for i, sh := range shards {
		b.Shards = append(b.Shards, storage.Sum(sh))
		if _, err := e.storeOf(stores[i]).Put(context.Background(), b.Shards[i], sh); err != nil {
			t.Fatal(err)
		}
	}
	man := &manifest.Manifest{Job: job, Kind: "files", Created: e.clock.Now(),
		Meta: map[string]string{catalog.MetaRedundancy: sc.String()}, Blocks: []manifest.Block{b}}
	txn, err := e.m.Begin(job)
	if err != nil {
		t.Fatal(err)
	}
	vi, err := e.m.Commit(txn.ID, marshal(t, man))
	if err != nil {
		t.Fatal(err)
	}
	return vi, b
}

func (e *repairEnv) storeOf(id string) *repairStore {
	for i := range e.stores {
		if id == "s"+string(rune('1'+i)) {
			return e.stores[i]
		}
	}
	panic("no store " + id)
}

// TestRepairErasureCoded: an rs:4+2 block is healthy with 6 shards,
// degraded with 4, rebuilt onto stores holding none of its shards, and
// lost with 3; the catalog says what it is.
func TestRepairErasureCoded(t *testing.T) {
	e := newRepairEnv(t, 8, Options{})
	sc := erasure.Scheme{Data: 4, Parity: 2}
	data := make([]byte, 10_001)
	rand.New(rand.NewSource(1)).Read(data)
	vi, b := e.commitCoded(t, "j", sc, data, []string{"s1", "s2", "s3", "s4", "s5", "s6"})
	if vi.Redundancy != "rs:4+2" || vi.Overhead() != 1.5 || !vi.Protected {
		t.Fatalf("commit %+v (overhead %v)", vi, vi.Overhead())
	}
	h := e.health(t, "j")
	wantStates(t, h, catalog.StateHealthy)
	if h[0].Target != 6 || h[0].MinCopies != 6 || h[0].Redundancy != "rs:4+2" || h[0].Blocks != 1 {
		t.Fatalf("health %+v", h[0])
	}
	// GC keeps the shards: they are what the version references.
	live, err := e.m.referenced(b.Shards)
	if err != nil || slices.Contains(live, false) {
		t.Fatalf("shards referenced %v (%v)", live, err)
	}
	if c, err := e.m.StoreCopies("s2"); err != nil || c.OnlyCopy != 0 || c.Pending != 1 {
		t.Fatalf("copies of s2: %+v %v (5 other shards: not the only copy)", c, err)
	}

	e.kill(t, 1) // s2: shard 1
	e.kill(t, 4) // s5: shard 4
	h = e.health(t, "j")
	wantStates(t, h, catalog.StateDegraded)
	if h[0].MinCopies != 4 || h[0].DegradedBlocks != 1 {
		t.Fatalf("health with two shards gone %+v", h[0])
	}
	if p := protected(t, e.m, "j"); p[0] {
		t.Fatal("a coded version with dead stores reads protected")
	}
	rep := e.repair(t, "j")
	shard := int64(sc.ShardSize(len(data)))
	if rep.Copies != 2 || rep.CopiedBytes != 2*shard || rep.Degraded != 1 || rep.Lost != 0 || rep.Unrepaired != 0 || rep.Updated != 1 {
		t.Fatalf("repair %+v", rep)
	}
	got := e.storesOf(t, "j", 1)["f@0"]
	if len(got) != 6 || got[0] != "s1" || got[2] != "s3" || got[3] != "s4" || got[5] != "s6" ||
		!slices.Contains([]string{"s7", "s8"}, got[1]) || !slices.Contains([]string{"s7", "s8"}, got[4]) || got[1] == got[4] {
		t.Fatalf("stores after repair %v, want shards 1 and 4 on s7 and s8", got)
	}
	for _, i := range []int{1, 4} {
		d, err := e.storeOf(got[i]).Get(context.Background(), b.Shards[i])
		if err != nil || storage.Sum(d) != b.Shards[i] {
			t.Fatalf("rebuilt shard %d on %s: %v", i, got[i], err)
		}
	}
	h = e.health(t, "j")
	wantStates(t, h, catalog.StateHealthy)
	if p := protected(t, e.m, "j"); !p[0] {
		t.Fatal("the repaired coded version does not read protected")
	}
	if rep := e.repair(t, "j"); rep.Copies != 0 || rep.Updated != 0 {
		t.Fatalf("second repair %+v", rep)
	}

	// Three shards gone: fewer than K, the block is lost.
	for _, id := range got[:3] {
		e.storeOf(id).wipe()
	}
	h = e.health(t, "j")
	wantStates(t, h, catalog.StateLost)
	if h[0].LostBlocks != 1 || h[0].MinCopies != 3 {
		t.Fatalf("health with three shards gone %+v", h[0])
	}
	rep = e.repair(t, "j")
	if rep.Lost != 1 || rep.Copies != 0 || len(rep.LostBlocks) != 1 || rep.LostBlocks[0].Key != b.Key || !slices.Equal(rep.LostBlocks[0].Versions, []int64{1}) {
		t.Fatalf("repair of a lost coded block %+v", rep)
	}
}

// TestCommitRefusesRowsThatDisagreeWithRedundancy: a coded row in a
// replicated version, a replicated row in a coded one, and a row of
// another scheme are refused at commit.
func TestCommitRefusesRowsThatDisagreeWithRedundancy(t *testing.T) {
	e := newRepairEnv(t, 3, Options{})
	coded := manifest.Block{Object: "f", Rank: -1, Length: 3, Hash: key("abc"), Key: key("abc"), StoredLength: 3, Codec: manifest.CodecRaw,
		DataShards: 2, Shards: []storage.Hash{key("a"), key("b"), key("c")}, Stores: []string{"s1", "s2", "s3"}}
	plain := manifest.Block{Object: "f", Rank: -1, Length: 3, Hash: key("abc"), Key: key("abc"), StoredLength: 3, Codec: manifest.CodecRaw, Stores: []string{"s1"}}
	for _, c := range []struct {
		meta map[string]string
		b    manifest.Block
	}{
		{map[string]string{}, coded},
		{map[string]string{catalog.MetaRedundancy: "rs:2+1"}, plain},
		{map[string]string{catalog.MetaRedundancy: "rs:1+2"}, coded},
		{map[string]string{catalog.MetaRedundancy: "rs:2+1", catalog.MetaReplicas: "2"}, coded},
	} {
		man := &manifest.Manifest{Job: "j", Kind: "files", Created: e.clock.Now(), Meta: c.meta, Blocks: []manifest.Block{c.b}}
		txn, err := e.m.Begin("j")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.m.Commit(txn.ID, marshal(t, man)); !errors.Is(err, catalog.ErrInvalid) {
			t.Errorf("meta %v with a row of %d data shards: err = %v, want ErrInvalid", c.meta, c.b.DataShards, err)
		}
	}
}

// TestHealthUnknownRightAfterRestart: copies on a store the manager has
// not heard from since it started, less than DeadAfter ago, make a
// version "unknown", not degraded or lost; once DeadAfter has passed the
// store counts as dead.
func TestHealthUnknownRightAfterRestart(t *testing.T) {
	e := newRepairEnv(t, 3, Options{})
	e.commitPlaced(t, "j", 2, placed{"alpha", []string{"s1", "s2"}})
	e.kill(t, 1)                                 // s2 silent
	e.m.opened = e.clock.Now().Add(-time.Second) // as if the manager had just started
	h, err := e.m.Health(context.Background(), "j", 0)
	if err != nil {
		t.Fatal(err)
	}
	if h.Versions[0].State != catalog.StateUnknown || len(h.Unheard) != 1 || h.Unheard[0].ID != "s2" {
		t.Fatalf("right after a restart: %+v (unheard %+v), want unknown naming s2", h.Versions[0], h.Unheard)
	}
	e.clock.Add(DefaultDeadAfter)
	e.beat(t)
	wantStates(t, e.health(t, "j"), catalog.StateDegraded)
}
