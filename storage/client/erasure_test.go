package client

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/erasure"
	"github.com/ckptio/ckptio/storage/manifest"
	"github.com/ckptio/ckptio/storage/memstore"
)

// writeCoded writes data as object "o" with scheme sc over n memory stores.
func writeCoded(t *testing.T, n int, sc erasure.Scheme, data []byte) (Result, map[string]*memstore.Store) {
	t.Helper()
	targets, stores := memTargets(n, 0)
	w, err := NewWriter(targets, WriterOptions{BlockSize: 4096, Redundancy: sc})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteObject(context.Background(), "o", -1, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	res, err := w.Close(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return res, stores
}

func TestErasureCodedRoundTripSurvivesMLostShards(t *testing.T) {
	ctx := context.Background()
	sc := erasure.Scheme{Data: 4, Parity: 2}
	data := randBytes(11, 10*4096+123)
	res, stores := writeCoded(t, 8, sc, data)
	if res.Redundancy != sc {
		t.Fatalf("result redundancy %v, want %v", res.Redundancy, sc)
	}
	var stored int64
	for _, b := range res.Blocks {
		if !b.Erasure() || b.DataShards != 4 || len(b.Shards) != 6 || len(b.Stores) != 6 {
			t.Fatalf("block at %d: %d data shards of %d on %v, want 4 of 6 on 6 stores", b.Offset, b.DataShards, len(b.Shards), b.Stores)
		}
		seen := map[string]bool{}
		for _, id := range b.Stores {
			if id == "" || seen[id] {
				t.Fatalf("block at %d: shards on %v, want 6 distinct stores", b.Offset, b.Stores)
			}
			seen[id] = true
		}
		stored += b.StoredLength
	}
	if err := (&manifest.Manifest{Job: "j", Kind: manifest.KindFiles, Blocks: res.Blocks}).Validate(); err != nil {
		t.Fatalf("the writer's rows do not validate: %v", err)
	}
	if res.NewBytes != stored {
		t.Errorf("NewBytes %d, want the stored bytes once (%d)", res.NewBytes, stored)
	}
	if lo, hi := stored*6/4, stored*6/4+int64(len(res.Blocks))*6; res.SentBytes < lo || res.SentBytes > hi {
		t.Errorf("SentBytes %d, want about 1.5× the stored %d (every shard)", res.SentBytes, stored)
	}
	read := func() ([]byte, error) {
		var out buf
		r := NewReader(storeFunc(stores), ReaderOptions{})
		err := r.ReadObject(ctx, res.Blocks, &out)
		return out.b, err
	}
	if got, err := read(); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("intact read: %v (equal %v)", err, bytes.Equal(got, data))
	}
	// Lose two stores outright: every block still has 4 shards.
	lost := []string{res.Blocks[0].Stores[0], res.Blocks[0].Stores[5]}
	for _, id := range lost {
		stores[id].SetFaults(memstore.Faults{Get: func(storage.Hash) error { return storage.ErrClosed }})
	}
	if got, err := read(); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read with stores %v down: %v", lost, err)
	}
	// A corrupt shard counts as missing: with a third bad shard on block
	// 0, it is unreadable and the error says so.
	b := res.Blocks[0]
	for i, id := range b.Stores {
		if id != lost[0] && id != lost[1] {
			stores[id].Corrupt(b.Shards[i])
			break
		}
	}
	_, err := read()
	if !errors.Is(err, erasure.ErrTooFewShards) || !strings.Contains(err.Error(), "3 of 6 shards (rs:4+2) readable, need 4") {
		t.Fatalf("err = %v, want too few shards", err)
	}
}

func TestErasureCodedWriterNeedsKPlusMStores(t *testing.T) {
	targets, _ := memTargets(5, 0)
	_, err := NewWriter(targets, WriterOptions{Redundancy: erasure.Scheme{Data: 4, Parity: 2}})
	if err == nil || !strings.Contains(err.Error(), "only 5 stores") {
		t.Fatalf("err = %v, want a refusal naming the 5 stores", err)
	}
	targets, _ = memTargets(8, 0)
	if _, err := NewWriter(targets, WriterOptions{Redundancy: erasure.Scheme{Data: 4, Parity: 2}, Replicas: 2}); err == nil {
		t.Fatal("rs:4+2 with 2 replicas accepted")
	}
}

func TestErasureCodedShardMovesOffARefusingStore(t *testing.T) {
	targets, stores := memTargets(7, 0)
	stores["st-3"].SetFaults(memstore.Faults{Put: func(storage.Hash) error { return storage.ErrQuotaExceeded }})
	w, err := NewWriter(targets, WriterOptions{BlockSize: 4096, Redundancy: erasure.Scheme{Data: 4, Parity: 2}})
	if err != nil {
		t.Fatal(err)
	}
	data := randBytes(12, 5*4096)
	if _, err := w.WriteObject(context.Background(), "o", -1, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	res, err := w.Close(context.Background())
	if err != nil {
		t.Fatalf("one full store of seven failed the write: %v", err)
	}
	for _, b := range res.Blocks {
		for _, id := range b.Stores {
			if id == "st-3" {
				t.Fatalf("block at %d has a shard recorded on the refusing store", b.Offset)
			}
		}
	}
	var out buf
	if err := NewReader(storeFunc(stores), ReaderOptions{}).ReadObject(context.Background(), res.Blocks, &out); err != nil || !bytes.Equal(out.b, data) {
		t.Fatalf("read back: %v", err)
	}
	// A second refusing store leaves 5 for 6 shards: the write fails and
	// says why.
	stores["st-4"].SetFaults(memstore.Faults{Put: func(storage.Hash) error { return storage.ErrQuotaExceeded }})
	w, _ = NewWriter(targets, WriterOptions{BlockSize: 4096, Redundancy: erasure.Scheme{Data: 4, Parity: 2}})
	w.WriteObject(context.Background(), "p", -1, bytes.NewReader(randBytes(13, 4096)))
	if _, err := w.Close(context.Background()); err == nil || !strings.Contains(err.Error(), "shards") && !errors.Is(err, storage.ErrNoSpace) {
		t.Fatalf("err = %v, want a failure naming the shards", err)
	}
}
