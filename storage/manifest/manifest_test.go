package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/ipc"
	"github.com/apache/arrow/go/v15/arrow/memory"

	"github.com/ckptio/ckptio/storage"
)

// object appends the blocks of one object of size bytes cut in blocks of
// at most bs bytes, stored raw on the given stores.
func object(name string, rank int32, size, bs int64, stores ...string) []Block {
	if size == 0 {
		return []Block{{Object: name, Rank: rank, Codec: CodecRaw}}
	}
	var out []Block
	for off := int64(0); off < size; off += bs {
		n := min(bs, size-off)
		h := storage.Sum([]byte(fmt.Sprintf("%s/%d/%d", name, rank, off)))
		out = append(out, Block{
			Object: name, Rank: rank, Offset: off, Length: n,
			Hash: h, Key: h, StoredLength: n, Codec: CodecRaw, Stores: stores,
		})
	}
	return out
}

func sample() *Manifest {
	m := &Manifest{
		Job:     "heat",
		Version: 3,
		Created: time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC),
		Kind:    "mpi",
		Meta:    map[string]string{"step": "400", "ranks": "4"},
	}
	m.Blocks = append(m.Blocks, object("grid", 0, 10<<20, 4<<20, "s1", "s2")...)
	m.Blocks = append(m.Blocks, object("grid", 1, 10<<20, 4<<20, "s2", "s3")...)
	m.Blocks = append(m.Blocks, object("empty", 0, 0, 1)...)
	lz := object("état/données ✓", -1, 100, 64, "s1")
	for i := range lz {
		lz[i].Codec = CodecLZ4
		lz[i].StoredLength = 10
		lz[i].Key = storage.Sum([]byte{byte(i)})
	}
	m.Blocks = append(m.Blocks, lz...)
	m.LogicalBytes = m.Size()
	m.NewBytes, m.SentBytes = 1000, 2000
	return m
}

// equal compares manifests treating nil and empty slices and maps alike and
// times by instant.
func equal(t *testing.T, got, want *Manifest) {
	t.Helper()
	if !got.Created.Equal(want.Created) {
		t.Fatalf("created %v, want %v", got.Created, want.Created)
	}
	g, w := *got, *want
	g.Created, w.Created = time.Time{}, time.Time{}
	if len(g.Meta) == 0 {
		g.Meta = nil
	}
	if len(w.Meta) == 0 {
		w.Meta = nil
	}
	norm := func(bs []Block) []Block {
		out := make([]Block, len(bs))
		for i, b := range bs {
			if len(b.Stores) == 0 {
				b.Stores = nil
			}
			out[i] = b
		}
		return out
	}
	g.Blocks, w.Blocks = norm(g.Blocks), norm(w.Blocks)
	if len(g.Blocks) != len(w.Blocks) {
		t.Fatalf("%d blocks, want %d", len(g.Blocks), len(w.Blocks))
	}
	for i := range g.Blocks {
		if !reflect.DeepEqual(g.Blocks[i], w.Blocks[i]) {
			t.Fatalf("block %d: got %+v, want %+v", i, g.Blocks[i], w.Blocks[i])
		}
	}
	g.Blocks, w.Blocks = nil, nil
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("got %+v, want %+v", g, w)
	}
}

func roundTrip(t *testing.T, m *Manifest) *Manifest {
	t.Helper()
	b, err := Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, got, m)
	got2, err := Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	equal(t, got2, m)
	return got
}

func TestRoundTrip(t *testing.T) {
	many := &Manifest{Job: "many", Kind: "files"}
	for i := range 3000 {
		many.Blocks = append(many.Blocks, object(fmt.Sprintf("dir/file-%04d", i), -1, int64(i%7)*100, 256, "a")...)
	}
	tests := map[string]*Manifest{
		"sample":        sample(),
		"no blocks":     {Job: "j"},
		"only empty":    {Job: "j", Blocks: object("e", -1, 0, 1)},
		"no created":    {Job: "j", Kind: "files", Blocks: object("x", -1, 5, 2)},
		"many objects":  many,
		"empty meta":    {Job: "j", Meta: map[string]string{}},
		"no stores":     {Job: "j", Blocks: object("x", 2, 5, 5)},
		"unicode names": {Job: "日本", Kind: "files", Meta: map[string]string{"ключ": "значение 🙂"}, Blocks: append(object("𝔘𝔫𝔦", -1, 3, 1, "стор"), object("a\x00b", -1, 1, 1)...)},
	}
	for name, m := range tests {
		t.Run(name, func(t *testing.T) { roundTrip(t, m) })
	}
}

func TestRoundTripLarge(t *testing.T) {
	m := &Manifest{Job: "big", Kind: "mpi"}
	const rows = 200_000
	for r := int32(0); len(m.Blocks) < rows; r++ {
		m.Blocks = append(m.Blocks, object(fmt.Sprintf("region-%d", r%3), r, 1000*1024, 1024, "s1", "s2", "s3")...)
	}
	m.Blocks = m.Blocks[:rows]
	// The cut may leave the last object partial, which is still contiguous.
	m.LogicalBytes = m.Size()
	b, err := Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d rows in %d bytes (%.1f bytes/row)", rows, len(b), float64(len(b))/rows)
	rd, err := ipc.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	batches := 0
	for rd.Next() {
		if n := rd.Record().NumRows(); n > BatchRows {
			t.Fatalf("batch of %d rows", n)
		}
		batches++
	}
	rd.Release()
	if want := (rows + BatchRows - 1) / BatchRows; batches != want {
		t.Fatalf("%d batches, want %d", batches, want)
	}
	got, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, got, m)
}

func TestSchema(t *testing.T) {
	b, err := Marshal(sample())
	if err != nil {
		t.Fatal(err)
	}
	rd, err := ipc.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Release()
	var got []string
	for _, f := range rd.Schema().Fields() {
		got = append(got, f.Name+":"+f.Type.String())
	}
	want := []string{
		"object:dictionary<values=utf8, indices=int32, ordered=false>",
		"rank:int32", "offset:int64", "length:int64",
		"hash:fixed_size_binary[32]", "key:fixed_size_binary[32]",
		"stored_length:int64", "codec:utf8", "stores:list<item: utf8, nullable>",
		"type:dictionary<values=utf8, indices=int8, ordered=false>",
		"mode:uint32", "mtime_ns:int64", "ctime_ns:int64", "inode:uint64", "target:utf8",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("schema\n got %q\nwant %q", got, want)
	}
	md := rd.Schema().Metadata()
	wantMD := map[string]string{
		MetaFormat: FormatVersion, MetaJob: "heat", MetaVersion: "3", MetaKind: "mpi",
		MetaCreated:      "2025-03-01T12:00:00.123456789Z",
		MetaLogicalBytes: fmt.Sprint(sample().Size()), MetaNewBytes: "1000", MetaSentBytes: "2000",
		MetaMeta: `{"ranks":"4","step":"400"}`,
	}
	if !reflect.DeepEqual(md.ToMap(), wantMD) {
		t.Fatalf("metadata\n got %v\nwant %v", md.ToMap(), wantMD)
	}
}

// writeStream writes an IPC stream with the given fields and metadata and
// one batch filled by fill.
func writeStream(t *testing.T, fs []arrow.Field, md map[string]string, fill func(rb *array.RecordBuilder)) []byte {
	t.Helper()
	meta := arrow.MetadataFrom(md)
	schema := arrow.NewSchema(fs, &meta)
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(schema))
	rb := array.NewRecordBuilder(memory.NewGoAllocator(), schema)
	defer rb.Release()
	fill(rb)
	rec := rb.NewRecord()
	defer rec.Release()
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// pyarrowFields is the schema pyarrow produces for a table built from
// Python lists: nullable fields, plain utf8 object names, in format 1
// (pyarrowFields2: format 2).
func pyarrowFields(hashWidth int) []arrow.Field {
	return pyarrowFields2(hashWidth)[:numColsV1]
}

func pyarrowFields2(hashWidth int) []arrow.Field {
	fs := fields()[:numColsV2]
	fs[colObject].Type = arrow.BinaryTypes.String
	fs[colType].Type = arrow.BinaryTypes.String
	fs[colHash].Type = &arrow.FixedSizeBinaryType{ByteWidth: hashWidth}
	for i := range fs {
		fs[i].Nullable = true
	}
	return fs
}

func fillRow(rb *array.RecordBuilder, obj string, off, n int64, hash []byte, null bool) {
	typ := ""
	if off == 0 {
		typ = string(TypeFile)
	}
	fillRowTyped(rb, obj, off, n, hash, null, typ, 0)
}

// fillRowTyped is fillRow with the entry columns (if the schema has them)
// given.
func fillRowTyped(rb *array.RecordBuilder, obj string, off, n int64, hash []byte, null bool, typ string, mode uint32) {
	rb.Field(colObject).(*array.StringBuilder).Append(obj)
	rb.Field(colRank).(*array.Int32Builder).Append(-1)
	rb.Field(colOffset).(*array.Int64Builder).Append(off)
	rb.Field(colLength).(*array.Int64Builder).Append(n)
	rb.Field(colHash).(*array.FixedSizeBinaryBuilder).Append(hash)
	rb.Field(colKey).(*array.FixedSizeBinaryBuilder).Append(make([]byte, 32))
	rb.Field(colStoredLength).(*array.Int64Builder).Append(n)
	if null {
		rb.Field(colCodec).(*array.StringBuilder).AppendNull()
	} else {
		rb.Field(colCodec).(*array.StringBuilder).Append("raw")
	}
	lb := rb.Field(colStores).(*array.ListBuilder)
	lb.Append(true)
	lb.ValueBuilder().(*array.StringBuilder).Append("s1")
	if rb.Schema().NumFields() >= numColsV2 {
		rb.Field(colType).(*array.StringBuilder).Append(typ)
		rb.Field(colMode).(*array.Uint32Builder).Append(mode)
		rb.Field(colMTime).(*array.Int64Builder).Append(0)
		rb.Field(colCTime).(*array.Int64Builder).Append(0)
		rb.Field(colInode).(*array.Uint64Builder).Append(0)
		rb.Field(colTarget).(*array.StringBuilder).Append("")
	}
}

func TestDecodePlainUTF8Format2(t *testing.T) {
	b := writeStream(t, pyarrowFields2(32), map[string]string{MetaFormat: FormatVersion, MetaJob: "j", MetaKind: "files"}, func(rb *array.RecordBuilder) {
		fillRow(rb, "f", 0, 10, make([]byte, 32), false)
		fillRow(rb, "f", 10, 5, make([]byte, 32), false)
	})
	m, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Entries) != 1 || m.Entries[0].Type != TypeFile || m.Entries[0].Object != "f" {
		t.Fatalf("entries %+v", m.Entries)
	}
}

func TestDecodePlainUTF8(t *testing.T) {
	b := writeStream(t, pyarrowFields(32), map[string]string{MetaFormat: "1", MetaJob: "j"}, func(rb *array.RecordBuilder) {
		fillRow(rb, "f", 0, 10, make([]byte, 32), false)
		fillRow(rb, "f", 10, 5, make([]byte, 32), false)
	})
	m, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Blocks) != 2 || m.Blocks[1].Offset != 10 || m.Blocks[1].Stores[0] != "s1" || m.Job != "j" {
		t.Fatalf("decoded %+v", m)
	}
}

func TestDecodeErrors(t *testing.T) {
	valid, err := Marshal(sample())
	if err != nil {
		t.Fatal(err)
	}
	mustMarshal := func(m *Manifest) []byte {
		b, err := Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	withBlocks := func(f func(bs []Block) []Block) []byte {
		m := sample()
		m.LogicalBytes = 0
		m.Blocks = f(m.Blocks)
		return mustMarshal(m)
	}
	md := map[string]string{MetaFormat: "1", MetaJob: "j"}
	tests := []struct {
		name string
		in   []byte
		want error
		msg  string
	}{
		{"empty", nil, ErrCorrupt, "empty stream"},
		{"not arrow", []byte("hello, world, this is not arrow"), ErrCorrupt, "not an Arrow IPC stream"},
		{"truncated in body", valid[:len(valid)/2], ErrCorrupt, "truncated"},
		{"no eos", valid[:len(valid)-8], ErrCorrupt, "end-of-stream"},
		{"trailing", append(append([]byte{}, valid...), 1, 2, 3), ErrCorrupt, "after the end-of-stream"},
		{"huge header", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, ErrCorrupt, "message header of 2147483647 bytes"},
		{"hash width 16", writeStream(t, pyarrowFields(16), md, func(rb *array.RecordBuilder) {
			fillRow(rb, "f", 0, 10, make([]byte, 16), false)
		}), ErrCorrupt, `column "hash" has type fixed_size_binary[16]`},
		{"missing column", writeStream(t, pyarrowFields(32)[:8], md, func(rb *array.RecordBuilder) {}), ErrCorrupt, "8 columns"},
		{"no format", writeStream(t, pyarrowFields(32), map[string]string{MetaJob: "j"}, func(rb *array.RecordBuilder) {}), ErrCorrupt, MetaFormat},
		{"bad version", writeStream(t, pyarrowFields(32), map[string]string{MetaFormat: "1", MetaJob: "j", MetaVersion: "x"}, func(rb *array.RecordBuilder) {}), ErrCorrupt, "not an integer"},
		{"null codec", writeStream(t, pyarrowFields(32), md, func(rb *array.RecordBuilder) {
			fillRow(rb, "f", 0, 10, make([]byte, 32), true)
		}), ErrCorrupt, "nulls"},
		{"gap", withBlocks(func(bs []Block) []Block { return append(bs[:1], bs[2:]...) }), ErrInvalid, "gap of"},
		{"overlap", withBlocks(func(bs []Block) []Block { bs[1].Offset--; return bs }), ErrInvalid, "overlaps"},
		{"not from 0", withBlocks(func(bs []Block) []Block { return bs[1:] }), ErrInvalid, "gap of 4194304 bytes before the block at offset 4194304"},
		{"negative length", withBlocks(func(bs []Block) []Block { bs[0].Length = -1; return bs }), ErrInvalid, "negative"},
		{"unknown codec", withBlocks(func(bs []Block) []Block { bs[0].Codec = "zip"; return bs }), ErrInvalid, "unknown codec"},
		{"raw stored", withBlocks(func(bs []Block) []Block { bs[0].StoredLength++; return bs }), ErrInvalid, "raw block"},
		{"logical bytes", mustMarshal(&Manifest{Job: "j", LogicalBytes: 7, Blocks: object("x", -1, 5, 2)}), ErrInvalid, "add up to 5"},
		{"no job", mustMarshal(&Manifest{Blocks: object("x", -1, 5, 2)}), ErrInvalid, "no job"},
		// A block no store accepts nor reader decodes, committed by a
		// hostile client: refused at commit, not when a restore needs it.
		{"huge raw block", mustMarshal(&Manifest{Job: "j", Blocks: []Block{{Object: "x", Rank: -1,
			Length: math.MaxInt64, StoredLength: math.MaxInt64, Codec: CodecRaw}}}), ErrInvalid, "larger than"},
		{"huge stored block", withBlocks(func(bs []Block) []Block { bs[0].Codec, bs[0].StoredLength = CodecLZ4, 1<<40; return bs }), ErrInvalid, "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Unmarshal(tt.in)
			if err == nil {
				t.Fatalf("decoded %+v, want error", m)
			}
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("error %q, want %v containing %q", err, tt.want, tt.msg)
			}
		})
	}
}

func TestDecodeEveryTruncation(t *testing.T) {
	m := &Manifest{Job: "j", Meta: map[string]string{"a": "b"}}
	m.Blocks = append(object("a", 0, 100, 10, "s"), object("b", 1, 0, 1)...)
	b, err := Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n < len(b); n++ {
		if _, err := Decode(bytes.NewReader(b[:n])); err == nil {
			t.Fatalf("truncated to %d of %d bytes: no error", n, len(b))
		}
	}
	// Flip every byte in turn: never a panic.
	for i := range b {
		c := append([]byte{}, b...)
		c[i] ^= 0xa5
		_, _ = Unmarshal(c)
	}
}

func TestObjects(t *testing.T) {
	m := sample()
	got := m.Objects()
	want := []ObjectInfo{
		{Name: "état/données ✓", Rank: -1, Size: 100, Blocks: 2},
		{Name: "empty", Rank: 0, Size: 0, Blocks: 1},
		{Name: "grid", Rank: 0, Size: 10 << 20, Blocks: 3},
		{Name: "grid", Rank: 1, Size: 10 << 20, Blocks: 3},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("objects\n got %+v\nwant %+v", got, want)
	}
	bs := m.BlocksOf("grid", 1)
	if len(bs) != 3 || bs[2].Offset != 8<<20 || bs[2].Length != 2<<20 {
		t.Fatalf("BlocksOf: %+v", bs)
	}
	if bs := m.BlocksOf("grid", 7); bs != nil {
		t.Fatalf("BlocksOf unknown: %+v", bs)
	}
}

func TestValidateShuffled(t *testing.T) {
	m := sample()
	// Rows in any order are fine as long as each object tiles.
	for i, j := 0, len(m.Blocks)-1; i < j; i, j = i+1, j-1 {
		m.Blocks[i], m.Blocks[j] = m.Blocks[j], m.Blocks[i]
	}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	m.Blocks = append(m.Blocks, Block{Object: "grid", Rank: 0, Offset: 10 << 20, Codec: CodecRaw})
	if err := m.Validate(); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "zero-length") {
		t.Fatalf("zero-length block in a non-empty object: %v", err)
	}
}
