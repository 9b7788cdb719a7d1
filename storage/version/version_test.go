package version_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/chunk"
	"github.com/ckptio/ckptio/storage/client"
	"github.com/ckptio/ckptio/storage/codec"
	"github.com/ckptio/ckptio/storage/manifest"
	"github.com/ckptio/ckptio/storage/memstore"
	"github.com/ckptio/ckptio/storage/version"
	"github.com/ckptio/ckptio/storage/version/versiontest"
)

func randBytes(seed int64, n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

// putFile writes data as object "f" of a new version of j.
func putFile(t *testing.T, j *version.Job, data []byte) version.Committed {
	t.Helper()
	c, err := j.Write(context.Background(), version.Files, nil, func(w *version.Writer) error {
		_, err := w.WriteObject(context.Background(), "f", -1, bytes.NewReader(data))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// readBack reads object "f" of version v through the version layer's
// reader.
func readBack(t *testing.T, j *version.Job, v int64) []byte {
	t.Helper()
	ctx := context.Background()
	s, err := j.Open(ctx, v)
	if err != nil {
		t.Fatal(err)
	}
	ext, ok := s.Extents(-1, "f")
	if !ok {
		t.Fatalf("version %d has no object f", v)
	}
	var out []byte
	r := j.NewReader()
	for _, e := range ext {
		dst := make([]byte, e.Length)
		if err := r.ReadInto(ctx, s, e, dst); err != nil {
			t.Fatal(err)
		}
		out = append(out, dst...)
	}
	return out
}

// TestIncrementalWrite: a second version of a file with a few blocks
// changed sends only those, and references the others from the first;
// identical blocks within a version are stored once; a reused block that
// its stores lost is sent again.
func TestIncrementalWrite(t *testing.T) {
	ctx := context.Background()
	cl := versiontest.New(3)
	j := cl.Job("j", client.WriterOptions{BlockSize: 4096, Encode: codec.Encode, Replicas: 1})
	data := randBytes(7, 64*4096)
	copy(data[10*4096:], make([]byte, 8*4096)) // 8 zero blocks: one stored copy, compressible
	v1 := putFile(t, j, data)
	if v1.LogicalBytes != int64(len(data)) || v1.SentBytes > int64(len(data))-7*4096 {
		t.Fatalf("v1 sent %d of %d bytes; the 8 zero blocks should be sent once", v1.SentBytes, v1.LogicalBytes)
	}
	edited := append([]byte(nil), data...)
	for _, blk := range []int{3, 40} {
		edited[blk*4096+100] ^= 0xff
	}
	v2 := putFile(t, j, edited)
	if v2.SentBytes != 2*4096 {
		t.Fatalf("v2 sent %d bytes; want exactly the 2 changed blocks", v2.SentBytes)
	}
	m1, _ := cl.Manifest(ctx, "j", v1.Version)
	m2, _ := cl.Manifest(ctx, "j", v2.Version)
	for i, b := range m2.Blocks {
		if changed := i == 3 || i == 40; changed == (b.Key == m1.Blocks[i].Key) {
			t.Fatalf("block %d: key %s, v1's %s (changed: %v)", i, b.Key.Short(), m1.Blocks[i].Key.Short(), changed)
		}
	}
	if !bytes.Equal(readBack(t, j, v2.Version), edited) {
		t.Fatal("v2 differs after read")
	}
	// A reused block that its store lost is sent again, not referenced.
	lost := m1.Blocks[0]
	for _, s := range cl.Mem {
		s.Delete(ctx, []storage.Hash{lost.Key}, time.Time{})
	}
	v3 := putFile(t, j, edited)
	if v3.SentBytes != lost.StoredLength {
		t.Fatalf("v3 sent %d bytes, want only the lost block (%d)", v3.SentBytes, lost.StoredLength)
	}
}

func TestContentDefinedWriteObject(t *testing.T) {
	cl := versiontest.New(2)
	c, err := chunk.CDC(1024, 4096, 16384)
	if err != nil {
		t.Fatal(err)
	}
	j := cl.Job("j", client.WriterOptions{Chunker: c, Replicas: 1})
	data := randBytes(8, 1<<20)
	putFile(t, j, data)
	shifted := append([]byte("inserted near the start"), data...)
	v2 := putFile(t, j, shifted)
	if v2.SentBytes > 3*16384 {
		t.Fatalf("an insertion at the start re-sent %d bytes", v2.SentBytes)
	}
	if !bytes.Equal(readBack(t, j, v2.Version), shifted) {
		t.Fatal("read back differs")
	}
}

// TestReuseRule: a block of the previous version is referenced only when
// its stores confirm as many copies as a new block gets before commit
// (the replication target, or one when optimistic); otherwise the missing
// copies are written now, and the new version lists the target number of
// stores, each of which holds the block. Both ways of deciding are
// covered: Put (the block's data at hand, as ckpt put) and Plan (before the
// data moves, as the MPI leaders).
func TestReuseRule(t *testing.T) {
	for _, tc := range []struct {
		name       string
		optimistic bool
		lose       int   // copies of every block lost before the second version
		wantSent   int64 // blocks' copies the second version sends
		wantCopies int
	}{
		{"all copies held", false, 0, 0, 2},
		{"one copy lost", false, 1, 1, 2},
		{"both lost", false, 2, 2, 2},
		{"optimistic, one copy lost", true, 1, 0, 1},
	} {
		for _, how := range []string{"put", "plan"} {
			t.Run(tc.name+"/"+how, func(t *testing.T) {
				ctx := context.Background()
				cl := versiontest.New(4)
				opts := client.WriterOptions{BlockSize: 4096, Replicas: 2}
				j := cl.Job("j", opts)
				data := randBytes(1, 16*4096)
				v1 := putFile(t, j, data)
				m1, _ := cl.Manifest(ctx, "j", v1.Version)
				for _, b := range m1.Blocks {
					for _, id := range b.Stores[:tc.lose] {
						if _, err := cl.Mem[id].Delete(ctx, []storage.Hash{b.Key}, time.Time{}); err != nil {
							t.Fatal(err)
						}
					}
				}
				opts.Optimistic = tc.optimistic
				j = cl.Job("j", opts)
				var v2 version.Committed
				if how == "put" {
					v2 = putFile(t, j, data)
				} else {
					v2 = writePlanned(t, j, data, 4096)
				}
				if want := tc.wantSent * int64(len(data)); v2.SentBytes != want {
					t.Fatalf("second version sent %d bytes, want %d", v2.SentBytes, want)
				}
				m2, _ := cl.Manifest(ctx, "j", v2.Version)
				for _, b := range m2.Blocks {
					if len(b.Stores) < tc.wantCopies {
						t.Fatalf("block at %d listed on %v, want %d copies", b.Offset, b.Stores, tc.wantCopies)
					}
					for _, id := range b.Stores {
						if has, _ := cl.Mem[id].Has(ctx, []storage.Hash{b.Key}); !has[0] {
							t.Fatalf("block at %d listed on %s, which does not hold it", b.Offset, id)
						}
					}
				}
				if !bytes.Equal(readBack(t, j, v2.Version), data) {
					t.Fatal("read back differs")
				}
			})
		}
	}
}

// writePlanned writes data as object "f" the way an I/O leader does: the
// blocks' hashes first (Plan), then the data of the blocks Plan needs.
func writePlanned(t *testing.T, j *version.Job, data []byte, bs int) version.Committed {
	t.Helper()
	ctx := context.Background()
	c, err := j.Write(ctx, version.Files, nil, func(w *version.Writer) error {
		var refs []version.Ref
		for off := 0; off < len(data); off += bs {
			n := min(bs, len(data)-off)
			refs = append(refs, version.Ref{Object: "f", Rank: -1, Offset: int64(off), Length: int64(n), Hash: storage.Sum(data[off : off+n])})
		}
		need, err := w.Plan(ctx, refs)
		if err != nil {
			return err
		}
		for i, r := range refs {
			if need[i] {
				if err := w.Put(ctx, r, data[r.Offset:r.Offset+r.Length], nil); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestPreviousOnlyOfTheSameKindAndKey: a version reuses the blocks of the
// job's latest version only when it is of the same kind and written with
// the same key (or both without).
func TestPreviousOnlyOfTheSameKindAndKey(t *testing.T) {
	ctx := context.Background()
	cl := versiontest.New(2)
	j := cl.Job("j", client.WriterOptions{Replicas: 1})
	putFile(t, j, randBytes(1, 1000))
	for _, tc := range []struct {
		kind  version.Kind
		meta  map[string]string
		reuse bool
	}{
		{version.Files, nil, true},
		{version.MPI, nil, false},
		{version.Files, map[string]string{catalog.MetaEncrypted: "aesgcm", catalog.MetaFingerprint: "k1"}, false},
	} {
		txn, err := j.Begin(ctx, tc.kind, tc.meta)
		if err != nil {
			t.Fatal(err)
		}
		if got := txn.Previous() != nil; got != tc.reuse {
			t.Errorf("kind %s meta %v: previous version offered: %v, want %v", tc.kind, tc.meta, got, tc.reuse)
		}
		if p := txn.Previous(); p != nil && p.Version() != 1 {
			t.Errorf("previous version %d, want 1", p.Version())
		}
		txn.Abort(ctx)
	}
	// A job with no version: nothing to reuse, no error.
	txn, err := cl.Job("fresh", client.WriterOptions{}).Begin(ctx, version.Files, nil)
	if err != nil || txn.Previous() != nil {
		t.Fatalf("fresh job: %v, previous %v", err, txn.Previous())
	}
	txn.Abort(ctx)
}

// TestPartsSplice: several writers (in other processes, as I/O leaders
// are) each produce a part; the parts travel as bytes and one commit
// lists the blocks of all of them, with the figures summed and the highest
// replication target.
func TestPartsSplice(t *testing.T) {
	ctx := context.Background()
	cl := versiontest.New(3)
	j := cl.Job("j", client.WriterOptions{BlockSize: 4096})
	txn, err := j.Begin(ctx, version.MPI, nil)
	if err != nil {
		t.Fatal(err)
	}
	var parts []*version.Part
	for rank := range 3 {
		w, err := j.NewWriter(ctx, parsePrevious(t, txn.Previous().Bytes()), version.Hints{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.WriteObject(ctx, "grid", int32(rank), bytes.NewReader(randBytes(int64(rank), 10_000))); err != nil {
			t.Fatal(err)
		}
		p, err := w.Close(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if rank > 0 { // sent to the committer as bytes
			if p, err = version.ParsePart(p.Bytes()); err != nil {
				t.Fatal(err)
			}
		}
		parts = append(parts, p)
	}
	meta := version.Layout{Ranks: 3, Leaders: 3, Regions: []string{"grid"}}.AddMeta(map[string]string{"step": "7"})
	c, err := txn.Commit(ctx, meta, parts...)
	if err != nil {
		t.Fatal(err)
	}
	if c.LogicalBytes != 30_000 || c.Replicas != 2 {
		t.Fatalf("committed %+v", c)
	}
	s, err := j.Open(ctx, c.Version)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CheckMPI(3); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckMPI(4); err == nil || !strings.Contains(err.Error(), "written by 3 ranks") {
		t.Fatalf("CheckMPI(4) = %v", err)
	}
	m := s.Manifest()
	if m.Meta["step"] != "7" || m.Meta[catalog.MetaRanks] != "3" || m.Meta[catalog.MetaReplicas] != "2" || len(m.Blocks) != 9 {
		t.Fatalf("manifest meta %v, %d blocks", m.Meta, len(m.Blocks))
	}
	r := j.NewReader()
	for rank := range 3 {
		ext, ok := s.Extents(int32(rank), "grid")
		if !ok || len(ext) != 3 {
			t.Fatalf("rank %d: extents %v", rank, ext)
		}
		got := make([]byte, 0, 10_000)
		for _, e := range ext {
			dst := make([]byte, e.Length)
			if err := r.ReadInto(ctx, s, e, dst); err != nil {
				t.Fatal(err)
			}
			got = append(got, dst...)
		}
		if !bytes.Equal(got, randBytes(int64(rank), 10_000)) {
			t.Fatalf("rank %d reads back other bytes", rank)
		}
	}
	if _, ok := s.Extents(5, "grid"); ok {
		t.Fatal("extents of a rank that did not write")
	}
}

// TestNothingListedOnFailure: a writer that fails, a commit the catalog
// refuses, and Commit after Abort all leave no version; Abort after Commit
// does nothing.
func TestNothingListedOnFailure(t *testing.T) {
	ctx := context.Background()
	cl := versiontest.New(2)
	j := cl.Job("j", client.WriterOptions{BlockSize: 4096, Replicas: 1})
	for _, s := range cl.Mem {
		s.SetFaults(memstore.Faults{Put: func(storage.Hash) error { return storage.ErrDiskFull }})
	}
	_, err := j.Write(ctx, version.Files, nil, func(w *version.Writer) error {
		_, err := w.WriteObject(ctx, "f", -1, bytes.NewReader(randBytes(1, 10_000)))
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "(disks full)") || !errors.Is(err, storage.ErrDiskFull) {
		t.Fatalf("write to full stores: %v", err)
	}
	boom := errors.New("the program's own failure")
	if _, err := j.Write(ctx, version.Files, nil, func(*version.Writer) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("fill failure: %v", err)
	}
	if n := len(cl.Versions("j")); n != 0 || cl.InFlight() != 0 || cl.Aborts() != 2 {
		t.Fatalf("%d versions, %d in flight, %d aborts; want none listed, both aborted", n, cl.InFlight(), cl.Aborts())
	}
	txn, err := j.Begin(ctx, version.Files, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := txn.Abort(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := txn.Commit(ctx, nil); !errors.Is(err, version.ErrDone) {
		t.Fatalf("commit after abort: %v", err)
	}
	for _, s := range cl.Mem {
		s.SetFaults(memstore.Faults{})
	}
	c := putFile(t, j, randBytes(2, 100))
	if c.Version != 1 {
		t.Fatalf("first committed version is %d", c.Version)
	}
}

// renewCounter is a catalog whose renewals are reported on a channel.
type renewCounter struct {
	*versiontest.Cluster
	renewed chan string
}

func (r *renewCounter) Renew(ctx context.Context, id string) error {
	select {
	case r.renewed <- id:
	default:
	}
	return r.Cluster.Renew(ctx, id)
}

// TestLeaseRenewedUntilTheEnd: the transaction is renewed while the
// version is written, and no more once it ended.
func TestLeaseRenewedUntilTheEnd(t *testing.T) {
	ctx := context.Background()
	cl := versiontest.New(1)
	rc := &renewCounter{Cluster: cl, renewed: make(chan string, 1)}
	j := &version.Job{Name: "j", Catalog: rc, Pool: cl.Pool(), RenewEvery: time.Millisecond}
	txn, err := j.Begin(ctx, version.Files, nil)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-rc.renewed:
		if id != txn.ID() {
			t.Fatalf("renewed %s, want %s", id, txn.ID())
		}
	case <-time.After(time.Minute):
		t.Fatal("no renewal within a minute at a 1ms period")
	}
	if _, err := txn.Commit(ctx, nil); err != nil {
		t.Fatal(err)
	}
}

func TestParseRefusesGarbage(t *testing.T) {
	for _, raw := range [][]byte{[]byte("not a manifest"), {0xff, 0xff, 0xff, 0xff}} {
		if _, err := version.ParsePrevious(raw); err == nil {
			t.Errorf("ParsePrevious(%q) succeeded", raw)
		}
		if _, err := version.ParsePart(raw); err == nil {
			t.Errorf("ParsePart(%q) succeeded", raw)
		}
		if _, err := version.ParseSnapshot(raw); err == nil {
			t.Errorf("ParseSnapshot(%q) succeeded", raw)
		}
	}
	if p, err := version.ParsePrevious(nil); p != nil || err != nil {
		t.Fatalf("ParsePrevious(nil) = %v, %v; want none", p, err)
	}
}

func parsePrevious(t *testing.T, raw []byte) *version.Previous {
	t.Helper()
	p, err := version.ParsePrevious(raw)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestConfirm: a block's copies are those of its listed stores that say
// they hold it; a block every listed store confirmed keeps its Stores
// slice (nothing allocated per block in the common case).
func TestConfirm(t *testing.T) {
	ctx := context.Background()
	cl := versiontest.New(3)
	put := func(seed int64, listed []string, on ...string) manifest.Block {
		data := randBytes(seed, 1000)
		h := storage.Sum(data)
		for _, id := range on {
			if _, err := cl.Mem[id].Put(ctx, h, data); err != nil {
				t.Fatal(err)
			}
		}
		return manifest.Block{Object: fmt.Sprint("b", seed), Rank: -1, Hash: h, Key: h, Length: 1000, StoredLength: 1000,
			Codec: manifest.CodecRaw, Stores: listed}
	}
	blocks := []manifest.Block{
		put(1, []string{"st-0", "st-1"}, "st-0", "st-1"),
		put(2, []string{"st-0", "st-1"}, "st-0"),
		put(3, []string{"st-2"}),
		put(4, []string{"st-1", "st-9"}, "st-1"), // st-9 is not live
	}
	raw, err := manifest.Marshal(&manifest.Manifest{Job: "j", Kind: version.Files, Blocks: blocks})
	if err != nil {
		t.Fatal(err)
	}
	prev := parsePrevious(t, raw)
	w, err := cl.Job("j", client.WriterOptions{Replicas: 1}).NewWriter(ctx, prev, version.Hints{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(ctx)
	got, err := version.Confirm(ctx, w, []int32{0, 1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range [][]string{{"st-0", "st-1"}, {"st-0"}, {}, {"st-1"}} {
		if !slices.Equal(got[i], want) {
			t.Fatalf("block %d: confirmed on %v, want %v", i, got[i], want)
		}
	}
	if &got[0][0] != &version.PreviousBlocks(prev)[0].Stores[0] {
		t.Fatal("a block confirmed on all its stores got a new Stores slice")
	}
}

// TestFullStoresSaySo: when every alive store is full, a write fails
// saying so, not that no store runs.
func TestFullStoresSaySo(t *testing.T) {
	cl := versiontest.New(0)
	for _, id := range []string{"st-0", "st-1"} {
		cl.Mem[id] = memstore.New(id, 1) // a quota of one byte
		if _, err := cl.Mem[id].Put(context.Background(), storage.Sum([]byte("x")), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	_, err := cl.Job("j", client.WriterOptions{}).Write(context.Background(), version.Files, nil, func(*version.Writer) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "cluster out of space: free 0 B on 2 stores") || !errors.Is(err, storage.ErrNoSpace) {
		t.Fatalf("write to full stores: %v", err)
	}
}

// TestEntries: a writer's entries reach the version: a directory and a
// symlink get their empty row, a file's entry sits on its first block,
// and a second entry for the same path is refused.
func TestEntries(t *testing.T) {
	ctx := context.Background()
	cl := versiontest.New(2)
	j := cl.Job("tree", client.WriterOptions{BlockSize: 4096, Replicas: 1})
	data := randBytes(3, 3*4096+5)
	c, err := j.Write(ctx, version.Files, nil, func(w *version.Writer) error {
		for _, e := range []manifest.Entry{
			{Object: "d", Rank: -1, Type: manifest.TypeDir, Mode: 0o750, MTime: 11},
			{Object: "d/f", Rank: -1, Type: manifest.TypeFile, Mode: 0o600, MTime: 12, Inode: 99},
			{Object: "l", Rank: -1, Type: manifest.TypeSymlink, Mode: 0o777, MTime: 13, Target: "d/f"},
		} {
			if err := w.AddEntry(e); err != nil {
				return err
			}
		}
		if err := w.AddEntry(manifest.Entry{Object: "d", Rank: -1, Type: manifest.TypeDir}); err == nil {
			return errors.New("a second entry for d was taken")
		}
		if err := w.AddEntry(manifest.Entry{Object: "../x", Rank: -1, Type: manifest.TypeFile}); err == nil {
			return errors.New("an entry ../x was taken")
		}
		_, err := w.WriteObject(ctx, "d/f", -1, bytes.NewReader(data))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	s, err := j.Open(ctx, c.Version)
	if err != nil {
		t.Fatal(err)
	}
	tree := s.Manifest().Tree(-1)
	if len(tree) != 3 {
		t.Fatalf("tree %+v", tree)
	}
	if f := tree[1]; f.Object != "d/f" || f.Size != int64(len(data)) || f.Mode != 0o600 || f.Inode != 99 || len(f.Blocks) != 4 {
		t.Fatalf("file %+v", f)
	}
	if d, l := tree[0], tree[2]; d.Type != manifest.TypeDir || d.Mode != 0o750 || l.Target != "d/f" || l.Size != 0 {
		t.Fatalf("dir %+v link %+v", d, l)
	}
}

// TestKnownBlocks: a writer over Known blocks (of a version committed
// before, not fetched again) references those its stores confirm and
// sends the others: the rest of a block lost from its store, and a
// block the list does not hold.
func TestKnownBlocks(t *testing.T) {
	ctx := context.Background()
	cl := versiontest.New(2)
	j := cl.Job("known", client.WriterOptions{BlockSize: 4096, Replicas: 1})
	data := randBytes(11, 8*4096)
	putFile(t, j, data)
	s, err := j.Open(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	known := s.Manifest().Blocks
	lost := known[3]
	for _, m := range cl.Mem {
		m.Delete(ctx, []storage.Hash{lost.Key}, time.Time{})
	}
	extra := randBytes(12, 4096)
	txn, err := j.Begin(ctx, version.Files, nil)
	if err != nil {
		t.Fatal(err)
	}
	w, err := j.NewWriter(ctx, version.Known(known), version.Hints{})
	if err != nil {
		t.Fatal(err)
	}
	refs := make([]version.Ref, 0, len(known))
	for _, b := range known {
		refs = append(refs, version.Ref{Object: "g", Rank: -1, Offset: b.Offset, Length: b.Length, Hash: b.Hash})
	}
	need, err := w.Plan(ctx, refs)
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range need {
		if n != (i == 3) {
			t.Fatalf("block %d: need %v; only the lost block 3 needs its data", i, n)
		}
	}
	if err := w.Put(ctx, refs[3], data[3*4096:4*4096], nil); err != nil {
		t.Fatal(err)
	}
	if err := w.Put(ctx, version.Ref{Object: "g", Rank: -1, Offset: int64(len(data))}, extra, nil); err != nil {
		t.Fatal(err)
	}
	part, err := w.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c, err := txn.Commit(ctx, nil, part)
	if err != nil {
		t.Fatal(err)
	}
	if c.NewBytes != 2*4096 {
		t.Fatalf("new bytes %d, want the lost block and the extra one (%d)", c.NewBytes, 2*4096)
	}
	if got := version.Known(nil).Bytes(); got != nil {
		t.Fatalf("a Known previous has bytes %d", len(got))
	}
}

// reporting is a catalog that takes reports of corrupt copies.
type reporting struct {
	*versiontest.Cluster
	got []catalog.CorruptCopy
}

func (r *reporting) ReportCorrupt(ctx context.Context, job string, copies []catalog.CorruptCopy) (catalog.CorruptReport, error) {
	r.got = append(r.got, copies...)
	return catalog.CorruptReport{Reported: len(copies), Dropped: len(copies)}, nil
}

// TestCorruptCopiesReported: a read that meets a corrupt copy reads the
// other one, and Job.ReportCorrupt hands the corrupt copy (store, key) to
// a catalog that takes reports, once.
func TestCorruptCopiesReported(t *testing.T) {
	ctx := context.Background()
	cl := versiontest.New(2)
	rc := &reporting{Cluster: cl}
	j := cl.Job("j", client.WriterOptions{BlockSize: 4096, Replicas: 2})
	j.Catalog = rc
	data := randBytes(8, 4*4096)
	v := putFile(t, j, data)
	m, _ := cl.Manifest(ctx, "j", v.Version)
	bad := m.Blocks[2]
	cl.Mem[bad.Stores[0]].Corrupt(bad.Key)

	s, err := j.Open(ctx, v.Version)
	if err != nil {
		t.Fatal(err)
	}
	r := j.NewReader()
	ext, _ := s.Extents(-1, "f")
	var out []byte
	for _, e := range ext {
		dst := make([]byte, e.Length)
		if err := r.ReadInto(ctx, s, e, dst); err != nil {
			t.Fatal(err)
		}
		out = append(out, dst...)
	}
	if !bytes.Equal(out, data) {
		t.Fatal("read past a corrupt copy differs")
	}
	j.ReportCorrupt(ctx, r)
	want := []catalog.CorruptCopy{{Store: bad.Stores[0], Key: bad.Key}}
	if !slices.Equal(rc.got, want) {
		t.Fatalf("reported %+v, want %+v", rc.got, want)
	}
}

// TestDropBytesKeepsTheDecodedVersion: once a version's encoding was
// shared, dropping it leaves what the writer and the reader use intact.
func TestDropBytesKeepsTheDecodedVersion(t *testing.T) {
	ctx := context.Background()
	cl := versiontest.New(2)
	j := cl.Job("j", client.WriterOptions{BlockSize: 4096, Replicas: 1})
	data := randBytes(3, 5*4096)
	v1 := putFile(t, j, data)
	snap, err := j.Open(ctx, v1.Version)
	if err != nil {
		t.Fatal(err)
	}
	prev := parsePrevious(t, snap.Bytes())
	snap.DropBytes()
	prev.DropBytes()
	if snap.Bytes() != nil || prev.Bytes() != nil {
		t.Fatal("Bytes after DropBytes is not nil")
	}
	if prev.Version() != v1.Version || snap.Version() != v1.Version {
		t.Fatalf("versions %d and %d after DropBytes, want %d", prev.Version(), snap.Version(), v1.Version)
	}
	if len(snap.Manifest().Blocks) != 5 {
		t.Fatalf("the snapshot lists %d blocks after DropBytes, want 5", len(snap.Manifest().Blocks))
	}
}
