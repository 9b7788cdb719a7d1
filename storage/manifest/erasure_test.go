package manifest

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v15/arrow/ipc"

	"github.com/ckptio/ckptio/storage"
)

// erasureSample is sample() with one object's blocks erasure-coded rs:4+2,
// one of their shards held by no store.
func erasureSample() *Manifest {
	m := sample()
	rows := object("coded", 2, 3000, 1000)
	for i := range rows {
		b := &rows[i]
		b.DataShards = 4
		b.Shards = make([]storage.Hash, 6)
		b.Stores = []string{"s1", "s2", "s3", "s4", "s5", "s6"}
		for j := range b.Shards {
			b.Shards[j] = storage.Sum([]byte{byte(i), byte(j)})
		}
	}
	rows[1].Stores[3] = ""
	m.Blocks = append(m.Blocks, rows...)
	m.LogicalBytes = m.Size()
	return m
}

func formatOf(t *testing.T, b []byte) string {
	t.Helper()
	rd, err := ipc.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Release()
	v, _ := rd.Schema().Metadata().GetValue(MetaFormat)
	return v
}

func TestErasureRowsRoundTrip(t *testing.T) {
	m := erasureSample()
	b, err := Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if f := formatOf(t, b); f != FormatErasure {
		t.Fatalf("a manifest with erasure rows is in format %q, want %q", f, FormatErasure)
	}
	got, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, got, m)
	var coded int
	for _, r := range got.Blocks {
		if r.Erasure() {
			coded++
			if r.DataShards != 4 || len(r.Shards) != 6 || len(r.Stores) != 6 {
				t.Fatalf("row %+v lost its shards", r)
			}
		}
	}
	if coded != 3 {
		t.Fatalf("%d erasure rows decoded, want 3", coded)
	}
	// A replicated manifest stays in format 2, readable by older builds.
	b2, err := Marshal(sample())
	if err != nil {
		t.Fatal(err)
	}
	if f := formatOf(t, b2); f != FormatVersion {
		t.Fatalf("a replicated manifest is in format %q, want %q", f, FormatVersion)
	}
}

func TestErasureRowsValidated(t *testing.T) {
	for _, c := range []struct {
		name string
		mod  func(b *Block)
		want string
	}{
		{"no parity", func(b *Block) { b.Shards = b.Shards[:4]; b.Stores = b.Stores[:4] }, "data shards"},
		{"too many data shards", func(b *Block) { b.DataShards = 17 }, "data shards"},
		{"shards without K", func(b *Block) { b.DataShards = 0 }, "data shards"},
		{"store count", func(b *Block) { b.Stores = b.Stores[:5] }, "store entries"},
		{"zero shard key", func(b *Block) { b.Shards[2] = storage.Hash{} }, "zero key"},
		{"two shards on one store", func(b *Block) { b.Stores[5] = "s1" }, "two shards"},
		{"empty block", func(b *Block) { b.Length, b.StoredLength = 0, 0 }, "empty block"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := erasureSample()
			i := len(m.Blocks) - 1
			if c.name == "empty block" {
				// An empty object is one row: make the last object so.
				m.Blocks = m.Blocks[:i-2]
				m.Blocks = append(m.Blocks, erasureSample().Blocks[i])
				i = len(m.Blocks) - 1
				m.Blocks[i].Offset = 0
			}
			c.mod(&m.Blocks[i])
			m.LogicalBytes = 0
			err := m.Validate()
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Validate = %v, want ErrInvalid naming %q", err, c.want)
			}
		})
	}
}

// The parts of one version in formats 2 and 3 splice into format 3; the
// replicated rows keep their copies.
func TestSpliceMixesReplicatedAndErasureParts(t *testing.T) {
	coded := erasureSample()
	coded.Blocks = coded.Blocks[len(coded.Blocks)-3:]
	plain := sample()
	p1, err := Marshal(plain)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := Marshal(coded)
	if err != nil {
		t.Fatal(err)
	}
	hdr := &Manifest{Job: "heat", Kind: "mpi"}
	parts := [][]byte{p1, p2}
	out, err := Splice(hdr, parts...)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(parts[0], p1) {
		t.Fatal("Splice rewrote its caller's parts")
	}
	if f := formatOf(t, out); f != FormatErasure {
		t.Fatalf("spliced format %q, want %q", f, FormatErasure)
	}
	got, err := Unmarshal(out)
	if err != nil {
		t.Fatal(err)
	}
	want := append(append([]Block(nil), plain.Blocks...), coded.Blocks...)
	if len(got.Blocks) != len(want) {
		t.Fatalf("%d rows, want %d", len(got.Blocks), len(want))
	}
	for i := range want {
		if got.Blocks[i].Key != want[i].Key || got.Blocks[i].DataShards != want[i].DataShards ||
			len(got.Blocks[i].Shards) != len(want[i].Shards) || strings.Join(got.Blocks[i].Stores, ",") != strings.Join(want[i].Stores, ",") {
			t.Fatalf("row %d: %+v, want %+v", i, got.Blocks[i], want[i])
		}
	}
	// Format 1 cannot join format 3: it is refused, not garbled.
	v1, err := os.ReadFile("testdata/format1-mpi.arrow")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Splice(hdr, p2, v1); !errors.Is(err, ErrInvalid) {
		t.Fatalf("splice of formats 3 and 1: err = %v, want ErrInvalid", err)
	}
}
