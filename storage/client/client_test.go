package client

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/codec"
	"github.com/ckptio/ckptio/storage/manifest"
	"github.com/ckptio/ckptio/storage/memstore"
)

func memTargets(n int, quota int64) ([]Target, map[string]*memstore.Store) {
	var ts []Target
	m := map[string]*memstore.Store{}
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("st-%d", i)
		s := memstore.New(id, quota)
		m[id] = s
		free := quota
		if free == 0 {
			free = 1 << 40
		}
		ts = append(ts, Target{ID: id, Addr: "mem", Free: free, Store: s})
	}
	return ts, m
}

func storeFunc(m map[string]*memstore.Store) StoreFunc {
	return func(ctx context.Context, id string) (storage.BlockStore, string, error) {
		s, ok := m[id]
		if !ok {
			return nil, "", fmt.Errorf("unknown store %s", id)
		}
		return s, "mem", nil
	}
}

type buf struct {
	mu sync.Mutex
	b  []byte
}

func (w *buf) WriteAt(p []byte, off int64) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if need := int(off) + len(p); need > len(w.b) {
		w.b = append(w.b, make([]byte, need-len(w.b))...)
	}
	copy(w.b[off:], p)
	return len(p), nil
}

func randBytes(seed int64, n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

func TestWriteReadRoundTripSpreadsBlocks(t *testing.T) {
	ctx := context.Background()
	targets, stores := memTargets(4, 0)
	w, err := NewWriter(targets, WriterOptions{BlockSize: 4096, Window: 2, Replicas: 1})
	if err != nil {
		t.Fatal(err)
	}
	objs := map[string][]byte{"a": randBytes(1, 100_000), "b": randBytes(2, 4096), "empty": nil}
	for name, data := range objs {
		if _, err := w.WriteObject(ctx, name, -1, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
	}
	res, err := w.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Logical != 104_096 || res.NewBytes != res.SentBytes || res.SentBytes != 104_096 {
		t.Fatalf("result figures: %+v", res)
	}
	used := map[string]int{}
	for _, b := range res.Blocks {
		for _, s := range b.Stores {
			used[s]++
		}
	}
	if len(used) != 4 {
		t.Fatalf("blocks on %d stores, want all 4: %v", len(used), used)
	}
	for id, n := range used {
		if n < 2 || n > 12 {
			t.Errorf("store %s holds %d of 27 blocks; want an even spread", id, n)
		}
	}
	r := NewReader(storeFunc(stores), ReaderOptions{})
	m := &manifest.Manifest{Blocks: res.Blocks}
	for name, data := range objs {
		var out buf
		if err := r.ReadObject(ctx, blocksOf(m, name), &out); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.b, data) {
			t.Fatalf("object %s differs after round trip", name)
		}
	}
}

func blocksOf(m *manifest.Manifest, name string) []manifest.Block {
	var out []manifest.Block
	for _, b := range m.Blocks {
		if b.Object == name {
			out = append(out, b)
		}
	}
	return out
}

func TestWriterMovesBlocksOffAFullStore(t *testing.T) {
	ctx := context.Background()
	targets, stores := memTargets(3, 0)
	stores["st-1"].SetFaults(memstore.Faults{Put: func(storage.Hash) error { return storage.ErrQuotaExceeded }})
	w, _ := NewWriter(targets, WriterOptions{BlockSize: 1000})
	if _, err := w.WriteObject(ctx, "f", -1, bytes.NewReader(randBytes(3, 50_000))); err != nil {
		t.Fatal(err)
	}
	res, err := w.Close(ctx)
	if err != nil {
		t.Fatalf("one full store out of three failed the write: %v", err)
	}
	for _, b := range res.Blocks {
		if b.Stores[0] == "st-1" {
			t.Fatalf("block %d recorded on the refusing store", b.Offset)
		}
	}
}

func TestWriterFailsNamingStoresWhenNoneTakesABlock(t *testing.T) {
	ctx := context.Background()
	targets, stores := memTargets(2, 0)
	for _, s := range stores {
		s.SetFaults(memstore.Faults{Put: func(storage.Hash) error { return storage.ErrDiskFull }})
	}
	w, _ := NewWriter(targets, WriterOptions{BlockSize: 1000})
	w.WriteObject(ctx, "f", -1, bytes.NewReader(randBytes(4, 5000)))
	_, err := w.Close(ctx)
	if err == nil || !strings.Contains(err.Error(), "cluster out of space: the 2 stores filled up during the write (disks full)") {
		t.Fatalf("err = %v, want the one out-of-space line", err)
	}
	if !errors.Is(err, storage.ErrNoSpace) {
		t.Fatalf("err = %v: every store was full, want storage.ErrNoSpace", err)
	}
	if _, err := w.WriteObject(ctx, "g", -1, bytes.NewReader([]byte("x"))); err == nil {
		t.Fatal("writer error is not sticky")
	}
}

func TestWriterRefusesNoStores(t *testing.T) {
	if _, err := NewWriter(nil, WriterOptions{}); err == nil || !strings.Contains(err.Error(), "ckpt stores") {
		t.Fatalf("err = %v", err)
	}
}

func TestReaderDetectsCorruptionAndUsesOtherCopy(t *testing.T) {
	ctx := context.Background()
	data := randBytes(5, 3000)
	h := storage.Sum(data)
	_, stores := memTargets(2, 0)
	for _, s := range stores {
		if _, err := s.Put(ctx, h, data); err != nil {
			t.Fatal(err)
		}
	}
	stores["st-0"].Corrupt(h)
	b := manifest.Block{Object: "o", Length: 3000, Hash: h, Key: h, StoredLength: 3000, Codec: manifest.CodecRaw, Stores: []string{"st-0", "st-1"}}
	r := NewReader(storeFunc(stores), ReaderOptions{})
	got, err := r.ReadBlock(ctx, b)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read with one good copy: %v", err)
	}
	stores["st-1"].Corrupt(h)
	_, err = r.ReadBlock(ctx, b)
	var be *storage.BlockError
	if !errors.Is(err, storage.ErrHashMismatch) || !errors.As(err, &be) || !strings.Contains(err.Error(), "st-1") {
		t.Fatalf("err = %v, want hash mismatch naming the stores", err)
	}
}

func TestWriterBoundsOutstandingPuts(t *testing.T) {
	ctx := context.Background()
	gate := make(chan struct{})
	var mu sync.Mutex
	inflight, peak := 0, 0
	targets, stores := memTargets(2, 0)
	for _, s := range stores {
		s.SetFaults(memstore.Faults{Put: func(storage.Hash) error {
			mu.Lock()
			inflight++
			if inflight > peak {
				peak = inflight
			}
			mu.Unlock()
			<-gate
			mu.Lock()
			inflight--
			mu.Unlock()
			return nil
		}})
	}
	w, _ := NewWriter(targets, WriterOptions{BlockSize: 100, Window: 3, Replicas: 1})
	done := make(chan error)
	go func() {
		_, err := w.WriteObject(ctx, "o", -1, bytes.NewReader(randBytes(6, 5000)))
		done <- err
	}()
	for i := 0; i < 50; i++ {
		gate <- struct{}{}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// memstore serialises puts under its lock, so at most one per store is
	// inside the hook; the window bounds how many goroutines wait.
	if peak > 2 {
		t.Fatalf("peak %d puts inside stores", peak)
	}
}

// TestReplicasOnDistinctStores: with r=2 every block has two copies on two
// different stores; a store that refuses moves its copy elsewhere; fewer
// live stores than copies is refused unless optimistic.
func TestReplicasOnDistinctStores(t *testing.T) {
	ctx := context.Background()
	targets, stores := memTargets(4, 0)
	stores["st-2"].SetFaults(memstore.Faults{Put: func(storage.Hash) error { return storage.ErrDiskFull }})
	w, err := NewWriter(targets, WriterOptions{BlockSize: 1000, Replicas: 2})
	if err != nil {
		t.Fatal(err)
	}
	data := randBytes(9, 40_000)
	w.WriteObject(ctx, "f", -1, bytes.NewReader(data))
	res, err := w.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.SentBytes != 2*40_000 || res.NewBytes != 40_000 {
		t.Fatalf("sent %d new %d; want every byte sent twice and counted new once", res.SentBytes, res.NewBytes)
	}
	for _, b := range res.Blocks {
		if len(b.Stores) != 2 || b.Stores[0] == b.Stores[1] || b.Stores[0] == "st-2" || b.Stores[1] == "st-2" {
			t.Fatalf("block at %d on %v", b.Offset, b.Stores)
		}
	}
	// Either copy alone restores the data.
	for _, lost := range []string{"st-0", "st-1", "st-3"} {
		m := map[string]*memstore.Store{}
		for id, s := range stores {
			if id != lost {
				m[id] = s
			}
		}
		var out buf
		if err := NewReader(storeFunc(m), ReaderOptions{}).ReadObject(ctx, res.Blocks, &out); err != nil || !bytes.Equal(out.b, data) {
			t.Fatalf("without %s: %v", lost, err)
		}
	}
	if _, err := NewWriter(targets[:1], WriterOptions{Replicas: 2}); err == nil || !strings.Contains(err.Error(), "only 1 stores are live") {
		t.Fatalf("2 copies on 1 store: %v", err)
	}
	if _, err := NewWriter(targets[:1], WriterOptions{Replicas: 2, Optimistic: true}); err != nil {
		t.Fatalf("optimistic with 1 store: %v", err)
	}
}

// TestCompressionAdapts: blocks of an object that compresses are stored
// lz4; an object whose blocks do not compress stops paying for it, except
// for a probe every 16th block.
func TestCompressionAdapts(t *testing.T) {
	ctx := context.Background()
	targets, _ := memTargets(1, 0)
	w, _ := NewWriter(targets, WriterOptions{BlockSize: 4096, Encode: countingEncode(), Replicas: 1})
	text := bytes.Repeat([]byte("temperature 21.5 pressure 1013 "), 64*4096/31)
	w.WriteObject(ctx, "text", 0, bytes.NewReader(text))
	w.WriteObject(ctx, "noise", 0, bytes.NewReader(randBytes(10, 64*4096)))
	res, err := w.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	codecs := map[string]map[manifest.Codec]int{"text": {}, "noise": {}}
	for _, b := range res.Blocks {
		codecs[b.Object][b.Codec]++
	}
	if codecs["text"][manifest.CodecRaw] > 1 {
		t.Fatalf("compressible object stored raw: %v", codecs["text"])
	}
	if n := encodes.Load(); n > 64+64/16+4 {
		t.Fatalf("%d blocks went through the compressor; the noise should have stopped after a few", n)
	}
}

var encodes atomic.Int64

func countingEncode() func(dst, b []byte) ([]byte, manifest.Codec) {
	encodes.Store(0)
	return func(dst, b []byte) ([]byte, manifest.Codec) {
		encodes.Add(1)
		return codec.Encode(dst, b)
	}
}

// TestCompressionNeedsAnEighth: a float64 field with noise in its low bits
// (the benchmarks' workload) shrinks under lz4 by 5-20% per 64 KiB block,
// by less than an eighth overall; after its first blocks it is stored raw
// except for the probes, whichever way single blocks go.
func TestCompressionNeedsAnEighth(t *testing.T) {
	ctx := context.Background()
	targets, _ := memTargets(1, 0)
	w, _ := NewWriter(targets, WriterOptions{BlockSize: 64 << 10, Encode: countingEncode(), Replicas: 1})
	const blocks, period = 128, 1 << 20
	field := make([]byte, blocks*64<<10)
	rng := rand.New(rand.NewSource(1))
	for k := range len(field) / 8 {
		x := float64(k%period) / period
		v := 300 + 200*x*(1-x) + 1e-3*(rng.Float64()-0.5)
		binary.LittleEndian.PutUint64(field[8*k:], math.Float64bits(v))
	}
	var total, saved, over int
	for off := 0; off < len(field); off += 64 << 10 {
		stored, _ := codec.Encode(nil, field[off:off+64<<10])
		total += 64 << 10
		saved += 64<<10 - len(stored)
		if (64<<10-len(stored))*10 > 64<<10 {
			over++
		}
	}
	if saved*8 >= total || over == 0 {
		t.Fatalf("test data: lz4 saves %d of %d bytes, %d blocks more than a tenth: want less than an eighth overall, some blocks more than a tenth", saved, total, over)
	}
	encodes.Store(0)
	w.WriteObject(ctx, "field", 0, bytes.NewReader(field))
	if _, err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// The first block, then probes at growing intervals (16 doubling to
	// 128): blocks written while the first is compressed wait for its
	// verdict instead of all trying.
	if n := encodes.Load(); n > 2+blocks/32 {
		t.Fatalf("%d of %d blocks went through the compressor; want the first and the probes only", n, blocks)
	}
}

// discard is a store that takes every block without keeping it.
type discard struct{ *memstore.Store }

func (discard) Put(ctx context.Context, h storage.Hash, data []byte) (bool, error) { return true, nil }

// TestCompressedBlocksLeaveNoGarbage: the buffer a block is compressed
// into is recycled once the block is stored, so a writer's garbage does
// not grow by a block per compressed block (a leader's heap would grow by
// the checkpoint's size before the collector ran).
func TestCompressedBlocksLeaveNoGarbage(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	ctx := context.Background()
	targets := []Target{{ID: "d", Addr: "discard", Free: 1 << 40, Store: discard{memstore.New("d", 0)}}}
	const blocks, bs = 256, 64 << 10
	text := bytes.Repeat([]byte("temperature 21.5 pressure 1013 "), blocks*bs/31+1)[:blocks*bs]
	for i := 0; i < len(text); i += bs {
		binary.LittleEndian.PutUint64(text[i:], uint64(i)) // no two blocks alike
	}
	w, err := NewWriter(targets, WriterOptions{BlockSize: bs, Encode: codec.Encode, Replicas: 1})
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := 0; i < len(text); i += bs {
		ref := manifest.Block{Object: "text", Offset: int64(i)}
		if err := w.PutBlock(ctx, ref, text[i:i+bs], nil); err != nil {
			t.Fatal(err)
		}
	}
	res, err := w.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if res.Blocks[0].Codec != manifest.CodecLZ4 {
		t.Fatalf("test data stored as %q, want lz4", res.Blocks[0].Codec)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > blocks*bs/8 {
		t.Fatalf("writing %d compressible blocks of %d KiB allocated %d KiB; want under an eighth of the data", blocks, bs>>10, got>>10)
	}
}

// TestPutBlockCountsHeldCopies: copies the caller says are held (an
// earlier version's, confirmed) count toward the replicas when the block
// encodes to the same key, and only the missing ones are put; a stale key
// is ignored.
func TestPutBlockCountsHeldCopies(t *testing.T) {
	ctx := context.Background()
	targets, stores := memTargets(4, 0)
	data := randBytes(11, 4096)
	h := storage.Sum(data)
	if _, err := stores["st-0"].Put(ctx, h, data); err != nil {
		t.Fatal(err)
	}
	w, err := NewWriter(targets, WriterOptions{BlockSize: 4096, Replicas: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.PutBlock(ctx, manifest.Block{Object: "held", Rank: -1, Key: h, Stores: []string{"st-0"}}, data, nil); err != nil {
		t.Fatal(err)
	}
	other := randBytes(12, 4096)
	stale := storage.Sum([]byte("another block"))
	if err := w.PutBlock(ctx, manifest.Block{Object: "stale", Rank: -1, Key: stale, Stores: []string{"st-0"}}, other, nil); err != nil {
		t.Fatal(err)
	}
	res, err := w.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.SentBytes != 4096+2*4096 {
		t.Fatalf("sent %d bytes; want one copy of the held block and two of the other", res.SentBytes)
	}
	for _, b := range res.Blocks {
		if len(b.Stores) != 2 {
			t.Fatalf("%s: stores %v, want 2", b.Object, b.Stores)
		}
		if b.Object == "held" && !slices.Contains(b.Stores, "st-0") {
			t.Fatalf("held block listed on %v, without the store that holds it", b.Stores)
		}
		for _, id := range b.Stores {
			if has, _ := stores[id].Has(ctx, []storage.Hash{b.Key}); !has[0] {
				t.Fatalf("%s listed on %s, which does not hold it", b.Object, id)
			}
		}
	}
}
