package client

import (
	"bytes"
	"context"
	"math/rand"
	"net"
	"runtime"
	"sync"
	"testing"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/codec"
	"github.com/ckptio/ckptio/storage/manifest"
	"github.com/ckptio/ckptio/storage/memstore"
	"github.com/ckptio/ckptio/storage/remote"
	"github.com/ckptio/ckptio/storage/store"
)

// kept is a memstore whose Get returns its own copy without allocating,
// so that allocations measured in this process are the client's.
type kept struct {
	*memstore.Store
	mu     sync.Mutex
	blocks map[storage.Hash][]byte
}

func (k *kept) Put(ctx context.Context, h storage.Hash, data []byte) (bool, error) {
	created, err := k.Store.Put(ctx, h, data)
	if err == nil {
		k.mu.Lock()
		k.blocks[h] = append([]byte(nil), data...)
		k.mu.Unlock()
	}
	return created, err
}

func (k *kept) Get(ctx context.Context, h storage.Hash) ([]byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if b, ok := k.blocks[h]; ok {
		return b, nil
	}
	return k.Store.Get(ctx, h)
}

// TestReadBlockIntoOverTCP: blocks read through a store daemon's
// connection land in the caller's buffer, raw and compressed ones alike,
// and raw ones without a buffer allocated per block.
func TestReadBlockIntoOverTCP(t *testing.T) {
	ctx := context.Background()
	tok := []byte("0123456789abcdef0123456789abcdef")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := store.NewServer(&kept{Store: memstore.New("st", 0), blocks: map[storage.Hash][]byte{}}, tok, store.Options{})
	go srv.Serve(ctx, ln)
	t.Cleanup(func() { srv.Close() })
	rs, err := remote.Dial(ctx, ln.Addr().String(), tok, remote.Options{NoVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rs.Close() })
	targets := []Target{{ID: "st", Addr: "tcp", Free: 1 << 40, Store: rs}}

	const bs, n = 64 << 10, 32
	noise := make([]byte, n*bs)
	rand.New(rand.NewSource(3)).Read(noise)
	text := bytes.Repeat([]byte("temperature 21.5 pressure 1013 "), n*bs/31+1)[:n*bs]
	w, err := NewWriter(targets, WriterOptions{BlockSize: bs, Encode: codec.Encode, Replicas: 1})
	if err != nil {
		t.Fatal(err)
	}
	w.WriteObject(ctx, "noise", 0, bytes.NewReader(noise))
	w.WriteObject(ctx, "text", 0, bytes.NewReader(text))
	res, err := w.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r := NewReader(func(ctx context.Context, id string) (storage.BlockStore, string, error) { return rs, "tcp", nil }, ReaderOptions{})
	objects := map[string][]byte{"noise": noise, "text": text}
	codecs := map[manifest.Codec]int{}
	dst := make([]byte, bs)
	for _, b := range res.Blocks {
		codecs[b.Codec]++
		if err := r.ReadBlockInto(ctx, b, dst[:b.Length]); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(dst[:b.Length], objects[b.Object][b.Offset:b.Offset+b.Length]) {
			t.Fatalf("block of %s at %d read back different", b.Object, b.Offset)
		}
	}
	if codecs[manifest.CodecRaw] == 0 || codecs[manifest.CodecLZ4] == 0 {
		t.Fatalf("codecs %v: want raw and lz4 blocks", codecs)
	}
	if raceEnabled {
		return
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for _, b := range res.Blocks {
		if b.Object == "noise" {
			if err := r.ReadBlockInto(ctx, b, dst[:b.Length]); err != nil {
				t.Fatal(err)
			}
		}
	}
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > n*bs/8 {
		t.Fatalf("reading %d raw blocks of %d KiB into a buffer allocated %d KiB", n, bs>>10, got>>10)
	}
}
