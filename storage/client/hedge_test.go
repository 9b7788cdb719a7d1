package client

import (
	"bytes"
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/erasure"
	"github.com/ckptio/ckptio/storage/manifest"
	"github.com/ckptio/ckptio/storage/memstore"
)

// stalled is a store whose Gets never answer until their ctx ends: a
// stopped store process behind an open connection.
type stalled struct {
	*memstore.Store
	asked  atomic.Int32
	events chan struct{} // one per Get
}

func (s *stalled) Get(ctx context.Context, h storage.Hash) ([]byte, error) {
	s.asked.Add(1)
	s.events <- struct{}{}
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestHedgedReadPassesAStalledStore (finding F2): a block whose first
// copy is on a store that never answers is read from its second copy once
// the hedge delay passes, into the caller's buffer or not, and the
// summary names the slow store; later reads ask it last.
func TestHedgedReadPassesAStalledStore(t *testing.T) {
	ctx := context.Background()
	data := randBytes(9, 5000)
	h := storage.Sum(data)
	_, mem := memTargets(2, 0)
	for _, s := range mem {
		if _, err := s.Put(ctx, h, data); err != nil {
			t.Fatal(err)
		}
	}
	slow := &stalled{Store: mem["st-0"], events: make(chan struct{}, 100)}
	stores := func(ctx context.Context, id string) (storage.BlockStore, string, error) {
		if id == "st-0" {
			return slow, "10.0.0.1:7070", nil
		}
		return mem[id], "", nil
	}
	b := manifest.Block{Object: "o", Length: 5000, Hash: h, Key: h, StoredLength: 5000, Codec: manifest.CodecRaw, Stores: []string{"st-0", "st-1"}}
	r := NewReader(stores, ReaderOptions{HedgeAfter: time.Millisecond})
	got, err := r.ReadBlock(ctx, b)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read past a stalled first copy: %v", err)
	}
	dst := make([]byte, 5000)
	if err := r.ReadBlockInto(ctx, b, dst); err != nil || !bytes.Equal(dst, data) {
		t.Fatalf("read into a buffer past a stalled first copy: %v", err)
	}
	if sum := r.DegradedSummary(); !strings.Contains(sum, "store st-0") || !strings.Contains(sum, "no answer within 1ms") {
		t.Fatalf("summary %q, want the slow store named", sum)
	}
	// The slow store is asked last now: the next reads do not wait on it.
	// A later hedge would ask the slow store too: on a loaded machine 1ms
	// may pass before the fast stores answer. Only the order is tested
	// from here.
	r.opts.HedgeAfter = time.Hour
	asked := slow.asked.Load()
	for range 5 {
		if _, err := r.ReadBlock(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	if n := slow.asked.Load(); n != asked {
		t.Fatalf("the slow store was asked %d more times; want it asked last (not at all while the other copy answers)", n-asked)
	}
	// Without hedging the read would wait on it: with the context ended
	// it fails instead of hanging.
	r = NewReader(stores, ReaderOptions{HedgeAfter: -1})
	for len(slow.events) > 0 {
		<-slow.events
	}
	cctx, cancel := context.WithCancel(ctx)
	go func() {
		<-slow.events // the read is waiting on the stalled store
		cancel()
	}()
	if _, err := r.ReadBlock(cctx, b); err == nil {
		t.Fatal("an unhedged read of a stalled copy returned data")
	}
}

// TestHedgedCodedReadPassesAStalledStore: an erasure-coded block one of
// whose data shards is on a store that never answers is read from a
// parity shard once the hedge delay passes, the summary names the slow
// store, and later reads ask it last; without hedging the read waits on
// it.
func TestHedgedCodedReadPassesAStalledStore(t *testing.T) {
	ctx := context.Background()
	sc := erasure.Scheme{Data: 4, Parity: 2}
	data := randBytes(12, 4000)
	res, mem := writeCoded(t, 6, sc, data)
	if len(res.Blocks) != 1 {
		t.Fatalf("%d blocks, want 1", len(res.Blocks))
	}
	b := res.Blocks[0]
	first := b.Stores[0] // data shard 0
	slow := &stalled{Store: mem[first], events: make(chan struct{}, 100)}
	stores := func(ctx context.Context, id string) (storage.BlockStore, string, error) {
		if id == first {
			return slow, "10.0.0.1:7070", nil
		}
		return mem[id], "", nil
	}
	r := NewReader(stores, ReaderOptions{HedgeAfter: time.Millisecond})
	got, err := r.ReadBlock(ctx, b)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("coded read past a stalled data shard: %v", err)
	}
	if sum := r.DegradedSummary(); !strings.Contains(sum, "store "+first) || !strings.Contains(sum, "no answer within 1ms") {
		t.Fatalf("summary %q, want the slow store named", sum)
	}
	// A later hedge would ask the slow store too: on a loaded machine 1ms
	// may pass before the fast stores answer. Only the order is tested
	// from here.
	r.opts.HedgeAfter = time.Hour
	asked := slow.asked.Load()
	for range 5 {
		if got, err := r.ReadBlock(ctx, b); err != nil || !bytes.Equal(got, data) {
			t.Fatal(err)
		}
	}
	if n := slow.asked.Load(); n != asked {
		t.Fatalf("the slow store was asked %d more times; want it asked last (not at all while 4 other shards answer)", n-asked)
	}
	r = NewReader(stores, ReaderOptions{HedgeAfter: -1})
	for len(slow.events) > 0 {
		<-slow.events
	}
	cctx, cancel := context.WithCancel(ctx)
	go func() {
		<-slow.events
		cancel()
	}()
	if _, err := r.ReadBlock(cctx, b); err == nil {
		t.Fatal("an unhedged coded read of a stalled shard returned data")
	}
}
