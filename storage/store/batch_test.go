package store_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/memstore"
	"github.com/ckptio/ckptio/storage/store"
	"github.com/ckptio/ckptio/storage/storetest"
	"github.com/ckptio/ckptio/storage/wire"
)

// putBlocks sends one PutBlocks request and decodes its reply.
func putBlocks(t *testing.T, addr string, items []wire.PutItem) []wire.PutOutcome {
	t.Helper()
	nc := rawConn(t, addr)
	head, err := wire.EncodePutBlocksHead(items)
	if err != nil {
		t.Fatal(err)
	}
	parts := [][]byte{head}
	for _, it := range items {
		parts = append(parts, it.Data)
	}
	send(t, nc, 7, wire.OpPutBlocks, parts...)
	f := recv(t, nc)
	if f.ID != 7 || f.Op != wire.OpPutBlocks || f.Status != wire.StatusOK {
		t.Fatalf("put-blocks reply %+v %q", f.Header, f.Payload)
	}
	outs, err := wire.DecodePutBlocksReply(f.Payload, len(items))
	if err != nil {
		t.Fatal(err)
	}
	ping(t, nc, 8)
	return outs
}

// A batch's blocks are each stored or refused as a PutBlock would be, and
// each answered in its place: a refused block does not fail the others.
func TestPutBlocksAnswersEachBlock(t *testing.T) {
	ms := memstore.New("m", 2500)
	addr, _ := serve(t, ms, store.Options{})
	a, ha := storetest.Block(1, 1000)
	b, hb := storetest.Block(2, 1000)
	c, hc := storetest.Block(3, 1000) // over the quota once a and b are in
	var bad storage.Hash
	items := []wire.PutItem{{Hash: ha, Data: a}, {Hash: bad, Data: b}, {Hash: hb, Data: b}, {Hash: ha, Data: a}}
	outs := putBlocks(t, addr, items)
	if !outs[0].Created && !outs[3].Created || outs[0].Created && outs[3].Created {
		t.Fatalf("the same block twice in a batch: created %v and %v, want exactly one", outs[0].Created, outs[3].Created)
	}
	if err := outs[1].Err(); !errors.Is(err, storage.ErrHashMismatch) {
		t.Fatalf("block named by the wrong hash: %v, want ErrHashMismatch", err)
	}
	if err := outs[2].Err(); err != nil || !outs[2].Created {
		t.Fatalf("good block: %+v", outs[2])
	}
	outs = putBlocks(t, addr, []wire.PutItem{{Hash: hc, Data: c}, {Hash: hb, Data: b}})
	if err := outs[0].Err(); !errors.Is(err, storage.ErrQuotaExceeded) {
		t.Fatalf("block over the quota: %v, want ErrQuotaExceeded", err)
	}
	if err := outs[1].Err(); err != nil || outs[1].Created {
		t.Fatalf("block already held: %+v, want stored, not created", outs[1])
	}
	for _, h := range []storage.Hash{ha, hb} {
		if _, err := ms.Get(t.Context(), h); err != nil {
			t.Fatalf("block %s not stored: %v", h.Short(), err)
		}
	}
}

// Malformed batches are answered BadRequest (TooLarge for a block above
// the limit) and the connection stays usable.
func TestBadPutBlocksKeepConnection(t *testing.T) {
	addr, _ := serve(t, memstore.New("m", 0), store.Options{})
	nc := rawConn(t, addr)
	data, h := storetest.Block(1, 100)
	head, err := wire.EncodePutBlocksHead([]wire.PutItem{{Hash: h, Data: data}})
	if err != nil {
		t.Fatal(err)
	}
	huge := append([]byte(nil), head...)
	huge[4+storage.HashSize] = 0xff // length far above MaxBlockSize
	cases := []struct {
		name  string
		parts [][]byte
		want  wire.Status
	}{
		{"empty", nil, wire.StatusBadRequest},
		{"no blocks", [][]byte{{0, 0, 0, 0}}, wire.StatusBadRequest},
		{"head cut short", [][]byte{head[:20]}, wire.StatusBadRequest},
		{"bytes missing", [][]byte{head, data[:50]}, wire.StatusBadRequest},
		{"bytes left over", [][]byte{head, data, {1}}, wire.StatusBadRequest},
		{"block too large", [][]byte{huge, data}, wire.StatusTooLarge},
	}
	for i, tc := range cases {
		id := uint64(10 + i)
		send(t, nc, id, wire.OpPutBlocks, tc.parts...)
		if f := recv(t, nc); f.ID != id || f.Status != tc.want || len(f.Payload) == 0 {
			t.Fatalf("%s: reply %+v, want %s with a message", tc.name, f.Header, tc.want)
		}
	}
	ping(t, nc, 99)
}

// The Observer hears of each block of a batch as of a PutBlock, so that
// put metrics count blocks, batched or not; a refused block counts as a
// refused put.
func TestPutBlocksObservedPerBlock(t *testing.T) {
	rec := &recorder{}
	addr, _ := serve(t, memstore.New("m", 0), store.Options{Observer: rec})
	a, ha := storetest.Block(1, 1000)
	b, hb := storetest.Block(2, 500)
	var bad storage.Hash
	putBlocks(t, addr, []wire.PutItem{{Hash: ha, Data: a}, {Hash: hb, Data: b}, {Hash: bad, Data: b}})
	var puts []observed
	for _, c := range rec.take() {
		if c.op == wire.OpPutBlocks {
			t.Fatalf("a batch answered OK observed as %+v; want its blocks only", c)
		}
		if c.op == wire.OpPutBlock {
			puts = append(puts, c)
		}
	}
	want := []observed{
		{wire.OpPutBlock, wire.StatusOK, storage.HashSize + 1000, 1},
		{wire.OpPutBlock, wire.StatusOK, storage.HashSize + 500, 1},
		{wire.OpPutBlock, wire.StatusHashMismatch, storage.HashSize + 500, 1},
	}
	if !slices.Equal(puts, want) {
		t.Fatalf("observed %+v, want %+v", puts, want)
	}
}
