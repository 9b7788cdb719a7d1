package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/memstore"
)

func TestCheckSpace(t *testing.T) {
	targets, _ := memTargets(3, 1000)
	if err := CheckSpace(targets, nil, 3000); err != nil {
		t.Fatalf("3000 bytes into 3x1000 free: %v", err)
	}
	err := CheckSpace(targets[:2], targets[2:], 2001)
	var se *SpaceError
	if !errors.As(err, &se) || !errors.Is(err, storage.ErrNoSpace) {
		t.Fatalf("err = %v, want a *SpaceError wrapping ErrNoSpace", err)
	}
	if se.Need != 2001 || se.Free != 2000 || se.Stores != 3 ||
		!strings.HasPrefix(err.Error(), "cluster out of space: need 2.0 KiB, free 2.0 KiB on 3 stores (fix: ") {
		t.Fatalf("err = %q (%+v)", err, se)
	}
}

// TestFullStoreWarnsOnceAndCreatedListsNewBlocks: a store that refuses
// every put for quota is reported to OnFull once and logs nothing at
// warn level per block; Close says once that it filled up; Created lists
// exactly the blocks the other stores did not hold before.
func TestFullStoreWarnsOnceAndCreatedListsNewBlocks(t *testing.T) {
	ctx := context.Background()
	targets, stores := memTargets(3, 0)
	stores["st-1"].SetFaults(memstore.Faults{Put: func(storage.Hash) error { return storage.ErrQuotaExceeded }})
	// One block is held already: not created by this writer.
	data := randBytes(5, 40_000)
	held := storage.Sum(data[:1000])
	if _, err := stores["st-0"].Put(ctx, held, data[:1000]); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.WarnLevel)
	var full atomic.Int32
	w, _ := NewWriter(targets, WriterOptions{BlockSize: 1000, Replicas: 1, Window: 8, Logger: zap.New(core),
		OnFull: func(id string) {
			if id != "st-1" {
				t.Errorf("OnFull(%s)", id)
			}
			full.Add(1)
		}})
	if _, err := w.WriteObject(ctx, "f", -1, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	res, err := w.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := full.Load(); n != 1 {
		t.Fatalf("OnFull called %d times, want once", n)
	}
	if logs.Len() != 1 || !strings.Contains(logs.All()[0].Message, "1 of 3 stores filled up") {
		t.Fatalf("warnings: %v", logs.All())
	}
	created := w.Created()
	var n int
	for id, hs := range created {
		for _, h := range hs {
			n++
			if h == held && id == "st-0" {
				t.Fatalf("block held before listed as created on %s", id)
			}
		}
	}
	want := 0
	for _, b := range res.Blocks {
		if !(b.Key == held && b.Stores[0] == "st-0") {
			want++
		}
	}
	if n != want || len(created["st-1"]) != 0 {
		t.Fatalf("created %d blocks (%v on st-1), want %d", n, len(created["st-1"]), want)
	}
}

// TestReaderTriesDeadStoresLastAndSummarises: a block's copy on a store
// marked dead is tried after the others, and a failing first copy is
// counted, not logged per block, in one summary.
func TestReaderTriesDeadStoresLastAndSummarises(t *testing.T) {
	ctx := context.Background()
	targets, stores := memTargets(3, 0)
	w, _ := NewWriter(targets, WriterOptions{BlockSize: 1000, Replicas: 3})
	data := randBytes(6, 20_000)
	if _, err := w.WriteObject(ctx, "f", -1, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	res, err := w.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var asked atomic.Int32
	stores["st-0"].SetFaults(memstore.Faults{Get: func(storage.Hash) error { asked.Add(1); return errors.New("dead store asked") }})
	stores["st-1"].SetFaults(memstore.Faults{Get: func(storage.Hash) error { return storage.ErrNotFound }})
	resolve := func(_ context.Context, id string) (storage.BlockStore, string, error) {
		return stores[id], "addr-" + id, nil
	}
	core, logs := observer.New(zap.WarnLevel)
	r := NewReader(resolve, ReaderOptions{Logger: zap.New(core), Dead: func(id string) (string, bool) { return "addr-" + id, id == "st-0" }})
	for _, b := range res.Blocks {
		b.Stores = []string{"st-0", "st-1", "st-2"}
		got, err := r.ReadBlock(ctx, b)
		if err != nil || !bytes.Equal(got, data[b.Offset:b.Offset+b.Length]) {
			t.Fatalf("block at %d: %v", b.Offset, err)
		}
	}
	if asked.Load() != 0 {
		t.Fatalf("the dead store was asked %d times with live copies left", asked.Load())
	}
	if logs.Len() != 0 {
		t.Fatalf("per-block warnings: %v", logs.All())
	}
	n := len(res.Blocks)
	want := fmt.Sprintf("%d blocks read from another copy; store st-0 (addr-st-0) unreachable: the manager marks it dead (%d blocks); ", n, n)
	sum := r.DegradedSummary()
	if !strings.HasPrefix(sum, want) ||
		!strings.HasSuffix(sum, fmt.Sprintf("store st-1 (addr-st-1) unreachable: %v (%d blocks)", storage.ErrNotFound, n)) {
		t.Fatalf("summary %q, want it to start %q", sum, want)
	}
}

// staleLister is a manager whose figures are a heartbeat old: it says
// every store is full.
type staleLister struct{ ids []string }

func (l staleLister) Stores(context.Context) ([]catalog.StoreInfo, error) {
	var out []catalog.StoreInfo
	for _, id := range l.ids {
		out = append(out, catalog.StoreInfo{Heartbeat: catalog.Heartbeat{ID: id, Addr: id,
			Usage: storage.Usage{Quota: 1000, Used: 1000}}, Alive: true})
	}
	return out, nil
}

// TestPoolRereadsUsageOfFullStores: a store the manager says is full is
// asked for its usage itself before a writer is refused (GC may have
// freed it since the heartbeat); one the writer marked full after a
// quota refusal is asked again too, and stays a target only with room.
func TestPoolRereadsUsageOfFullStores(t *testing.T) {
	ctx := context.Background()
	stores := map[string]*memstore.Store{"st-0": memstore.New("st-0", 1000), "st-1": memstore.New("st-1", 1000)}
	if _, err := stores["st-1"].Put(ctx, storage.Sum(make([]byte, 1000)), make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	p := NewPool(staleLister{[]string{"st-0", "st-1"}}, func(_ context.Context, addr string) (storage.BlockStore, error) {
		return stores[addr], nil
	}, nil)
	targets, full, err := p.Targets(ctx)
	if err != nil || len(targets) != 1 || targets[0].ID != "st-0" || targets[0].Free != 1000 || len(full) != 1 || full[0].ID != "st-1" {
		t.Fatalf("targets %+v, full %+v, err %v: want st-0 with its own 1000 bytes free", targets, full, err)
	}
	// st-0 fills (as a writer's quota refusal tells): the pool asks it
	// again rather than take it as a target.
	if _, err := stores["st-0"].Put(ctx, storage.Sum(make([]byte, 999)), make([]byte, 999)); err != nil {
		t.Fatal(err)
	}
	p.MarkFull("st-0")
	targets, _, err = p.Targets(ctx)
	if err != nil || len(targets) != 1 || targets[0].Free != 1 {
		t.Fatalf("after MarkFull: targets %+v, err %v: want st-0 with 1 byte free", targets, err)
	}
	if _, err := stores["st-0"].Put(ctx, storage.Sum([]byte("x")), []byte("x")); err != nil {
		t.Fatal(err)
	}
	p.MarkFull("st-0")
	_, _, err = p.Targets(ctx)
	var se *SpaceError
	if !errors.As(err, &se) || se.Stores != 2 || !strings.HasPrefix(err.Error(), "cluster out of space: free 0 B on 2 stores") {
		t.Fatalf("all full: %v", err)
	}
}
