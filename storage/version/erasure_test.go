package version_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/client"
	"github.com/ckptio/ckptio/storage/erasure"
	"github.com/ckptio/ckptio/storage/version"
	"github.com/ckptio/ckptio/storage/version/versiontest"
)

// TestErasureCodedVersions: an rs:4+2 job records its scheme, reuses a
// coded block only when all its shards are confirmed (by Put and by
// Plan), and a change of redundancy writes the next version in full.
func TestErasureCodedVersions(t *testing.T) {
	ctx := context.Background()
	cl := versiontest.New(8)
	sc := erasure.Scheme{Data: 4, Parity: 2}
	j := cl.Job("j", client.WriterOptions{BlockSize: 4096, Redundancy: sc})
	data := randBytes(21, 32*4096)
	v1 := putFile(t, j, data)
	if v1.Redundancy != sc || v1.SentBytes != int64(len(data))*6/4 || v1.NewBytes != int64(len(data)) {
		t.Fatalf("v1: %+v, want rs:4+2 with every shard sent (%d) and the stored bytes new once", v1, int64(len(data))*6/4)
	}
	m1, _ := cl.Manifest(ctx, "j", v1.Version)
	if got, _ := catalog.ParseRedundancy(m1.Meta); got != sc {
		t.Fatalf("v1 meta %v, want redundancy %s", m1.Meta, sc)
	}
	if !bytes.Equal(readBack(t, j, v1.Version), data) {
		t.Fatal("v1 differs after read")
	}
	// One changed block: only its shards are sent.
	edited := bytes.Clone(data)
	edited[5*4096] ^= 1
	v2 := putFile(t, j, edited)
	if v2.SentBytes != 4096*6/4 {
		t.Fatalf("v2 sent %d bytes, want the 6 shards of one block (%d)", v2.SentBytes, 4096*6/4)
	}
	// A block with one shard lost is written whole again, through Put
	// and through Plan.
	m2, _ := cl.Manifest(ctx, "j", v2.Version)
	b := m2.Blocks[0]
	cl.Mem[b.Stores[3]].Delete(ctx, []storage.Hash{b.Shards[3]}, time.Time{})
	v3 := putFile(t, j, edited)
	if v3.SentBytes != 4096*6/4 {
		t.Fatalf("v3 sent %d bytes, want the block missing a shard sent again (%d)", v3.SentBytes, 4096*6/4)
	}
	m3, _ := cl.Manifest(ctx, "j", v3.Version)
	b = m3.Blocks[1]
	cl.Mem[b.Stores[0]].Delete(ctx, []storage.Hash{b.Shards[0]}, time.Time{})
	v4 := writePlanned(t, j, edited, 4096)
	if v4.SentBytes != 4096*6/4 {
		t.Fatalf("planned v4 sent %d bytes, want one block's shards (%d)", v4.SentBytes, 4096*6/4)
	}
	if !bytes.Equal(readBack(t, j, v4.Version), edited) {
		t.Fatal("v4 differs after read")
	}
	// Back to replicas: nothing is reused from the coded version.
	r := cl.Job("j", client.WriterOptions{BlockSize: 4096, Replicas: 2})
	v5 := putFile(t, r, edited)
	if v5.Redundancy != (erasure.Scheme{}) || v5.SentBytes != 2*int64(len(edited)) {
		t.Fatalf("v5 (2 replicas after rs:4+2): %+v, want every block sent twice", v5)
	}
	m5, _ := cl.Manifest(ctx, "j", v5.Version)
	if _, ok := m5.Meta[catalog.MetaRedundancy]; ok {
		t.Fatalf("replicated v5 carries meta %v", m5.Meta)
	}
	for _, b := range m5.Blocks {
		if b.Erasure() {
			t.Fatal("replicated v5 has a coded row")
		}
	}
}

// TestCommitRefusesMixedRedundancy: parts written with different
// redundancy do not make one version.
func TestCommitRefusesMixedRedundancy(t *testing.T) {
	ctx := context.Background()
	cl := versiontest.New(6)
	coded := cl.Job("j", client.WriterOptions{BlockSize: 4096, Redundancy: erasure.Scheme{Data: 2, Parity: 1}})
	plain := cl.Job("j", client.WriterOptions{BlockSize: 4096, Replicas: 1})
	txn, err := coded.Begin(ctx, version.Files, nil)
	if err != nil {
		t.Fatal(err)
	}
	var parts []*version.Part
	for i, j := range []*version.Job{coded, plain} {
		w, err := j.NewWriter(ctx, nil, version.Hints{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.WriteObject(ctx, string(rune('a'+i)), -1, bytes.NewReader(randBytes(int64(i), 5000))); err != nil {
			t.Fatal(err)
		}
		p, err := w.Close(ctx)
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, p)
	}
	if _, err := txn.Commit(ctx, nil, parts...); err == nil || !bytes.Contains([]byte(err.Error()), []byte("different redundancy (rs:2+1 and replicas)")) {
		t.Fatalf("err = %v, want a refusal of mixed redundancy", err)
	}
}
