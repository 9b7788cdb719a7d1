package manifest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/ipc"
	"github.com/apache/arrow/go/v15/arrow/memory"
)

// Marshal returns the Arrow IPC stream encoding of m.
func Marshal(m *Manifest) ([]byte, error) {
	// 146-173 bytes a block (one to three stores; 33 of them the entry
	// columns, zeros on a region's rows): grown by doubling
	// instead of sized up front, the buffer would leave as much garbage
	// as the manifest's size.
	buf := bytes.NewBuffer(make([]byte, 0, 4096+176*len(m.Blocks)))
	if err := Encode(buf, m); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Encode writes m to w as an Arrow IPC stream: the schema (with the
// version-level fields in its metadata), then the blocks in record batches
// of at most BatchRows rows, then the end-of-stream marker. Encode does not
// validate m; call Validate first if m comes from outside.
func Encode(w io.Writer, m *Manifest) error {
	if m == nil {
		return fmt.Errorf("manifest: encode: nil manifest")
	}
	return encode(w, m, formatFor(m.Blocks))
}

// encode is Encode in a given format, which must hold m's rows.
func encode(w io.Writer, m *Manifest, format string) error {
	md, err := schemaMetadata(m, format)
	if err != nil {
		return err
	}
	if format != FormatErasure && formatFor(m.Blocks) == FormatErasure {
		return fmt.Errorf("manifest: encode: format %s cannot hold erasure-coded rows", format)
	}
	schema := arrow.NewSchema(fieldsOf(format), &md)
	mem := memory.NewGoAllocator()
	wr := ipc.NewWriter(w, ipc.WithSchema(schema), ipc.WithAllocator(mem))
	entries, err := entryIndex(m)
	if err != nil {
		wr.Close()
		return err
	}
	for start := 0; start < len(m.Blocks); start += BatchRows {
		end := min(start+BatchRows, len(m.Blocks))
		rec, err := buildRecord(mem, schema, m.Blocks[start:end], entries, format)
		if err != nil {
			wr.Close()
			return err
		}
		err = wr.Write(rec)
		rec.Release()
		if err != nil {
			wr.Close()
			return fmt.Errorf("manifest: encode: %w", err)
		}
	}
	if err := wr.Close(); err != nil {
		return fmt.Errorf("manifest: encode: %w", err)
	}
	return nil
}

func schemaMetadata(m *Manifest, format string) (arrow.Metadata, error) {
	if format == formatV1 && len(m.Entries) > 0 {
		return arrow.Metadata{}, fmt.Errorf("manifest: encode: format %s cannot hold entries", formatV1)
	}
	keys := []string{MetaFormat, MetaJob, MetaVersion, MetaKind, MetaLogicalBytes, MetaNewBytes, MetaSentBytes}
	vals := []string{
		format,
		m.Job,
		strconv.FormatInt(m.Version, 10),
		string(m.Kind),
		strconv.FormatInt(m.LogicalBytes, 10),
		strconv.FormatInt(m.NewBytes, 10),
		strconv.FormatInt(m.SentBytes, 10),
	}
	if !m.Created.IsZero() {
		keys = append(keys, MetaCreated)
		vals = append(vals, m.Created.UTC().Format(time.RFC3339Nano))
	}
	if len(m.Meta) > 0 {
		b, err := json.Marshal(m.Meta)
		if err != nil {
			return arrow.Metadata{}, fmt.Errorf("manifest: encode meta: %w", err)
		}
		keys = append(keys, MetaMeta)
		vals = append(vals, string(b))
	}
	return arrow.NewMetadata(keys, vals), nil
}

// buildRecord builds one record batch. A fresh builder per batch keeps each
// batch's object dictionary to the names that batch uses; the IPC writer
// emits it as a replacement dictionary ahead of the batch.
func buildRecord(mem memory.Allocator, schema *arrow.Schema, blocks []Block, entries map[objectKey]*Entry, format string) (arrow.Record, error) {
	rb := array.NewRecordBuilder(mem, schema)
	defer rb.Release()
	rb.Reserve(len(blocks))
	obj := rb.Field(colObject).(*array.BinaryDictionaryBuilder)
	rank := rb.Field(colRank).(*array.Int32Builder)
	off := rb.Field(colOffset).(*array.Int64Builder)
	length := rb.Field(colLength).(*array.Int64Builder)
	hash := rb.Field(colHash).(*array.FixedSizeBinaryBuilder)
	key := rb.Field(colKey).(*array.FixedSizeBinaryBuilder)
	stored := rb.Field(colStoredLength).(*array.Int64Builder)
	codec := rb.Field(colCodec).(*array.StringBuilder)
	stores := rb.Field(colStores).(*array.ListBuilder)
	storeVals := stores.ValueBuilder().(*array.StringBuilder)
	typ := rb.Field(colType).(*array.BinaryDictionaryBuilder)
	mode := rb.Field(colMode).(*array.Uint32Builder)
	mtime := rb.Field(colMTime).(*array.Int64Builder)
	ctime := rb.Field(colCTime).(*array.Int64Builder)
	inode := rb.Field(colInode).(*array.Uint64Builder)
	target := rb.Field(colTarget).(*array.StringBuilder)
	var dataShards *array.Uint8Builder
	var shards *array.ListBuilder
	var shardVals *array.FixedSizeBinaryBuilder
	if format == FormatErasure {
		dataShards = rb.Field(colDataShards).(*array.Uint8Builder)
		shards = rb.Field(colShards).(*array.ListBuilder)
		shardVals = shards.ValueBuilder().(*array.FixedSizeBinaryBuilder)
	}
	none := &Entry{}
	for i := range blocks {
		b := &blocks[i]
		if err := obj.AppendString(b.Object); err != nil {
			return nil, fmt.Errorf("manifest: encode object %q: %w", b.Object, err)
		}
		rank.Append(b.Rank)
		off.Append(b.Offset)
		length.Append(b.Length)
		hash.Append(b.Hash[:])
		key.Append(b.Key[:])
		stored.Append(b.StoredLength)
		codec.Append(string(b.Codec))
		stores.Append(true)
		for _, s := range b.Stores {
			storeVals.Append(s)
		}
		e := none
		if b.Offset == 0 && entries != nil {
			if x := entries[objectKey{b.Object, b.Rank}]; x != nil {
				e = x
			}
		}
		if err := typ.AppendString(string(e.Type)); err != nil {
			return nil, fmt.Errorf("manifest: encode type of %q: %w", b.Object, err)
		}
		mode.Append(e.Mode)
		mtime.Append(e.MTime)
		ctime.Append(e.CTime)
		inode.Append(e.Inode)
		target.Append(e.Target)
		if shards != nil {
			if b.DataShards < 0 || b.DataShards > 255 {
				return nil, fmt.Errorf("manifest: encode: block of %q at offset %d has %d data shards", b.Object, b.Offset, b.DataShards)
			}
			dataShards.Append(uint8(b.DataShards))
			shards.Append(true)
			for _, h := range b.Shards {
				shardVals.Append(h[:])
			}
		}
	}
	return rb.NewRecord(), nil
}

// objectKey names an object: its name and owning rank.
type objectKey struct {
	name string
	rank int32
}

// entryIndex maps each entry's object to it, nil when there are none. An
// entry whose object has no row, or two entries of one object, is an
// error: the encoding could not say it.
func entryIndex(m *Manifest) (map[objectKey]*Entry, error) {
	if len(m.Entries) == 0 {
		return nil, nil
	}
	idx := make(map[objectKey]*Entry, len(m.Entries))
	for i := range m.Entries {
		e := &m.Entries[i]
		k := objectKey{e.Object, e.Rank}
		if idx[k] != nil {
			return nil, fmt.Errorf("manifest: encode: two entries for %q rank %d", e.Object, e.Rank)
		}
		if e.Type == "" {
			return nil, fmt.Errorf("manifest: encode: entry %q rank %d has no type", e.Object, e.Rank)
		}
		idx[k] = e
	}
	found := 0
	for i := range m.Blocks {
		if b := &m.Blocks[i]; b.Offset == 0 && idx[objectKey{b.Object, b.Rank}] != nil {
			found++
		}
	}
	if found != len(idx) {
		return nil, fmt.Errorf("manifest: encode: %d of %d entries have no row at offset 0", len(idx)-found, len(idx))
	}
	return idx, nil
}
