package manifest

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/ipc"
	"github.com/apache/arrow/go/v15/arrow/memory"

	"github.com/ckptio/ckptio/storage"
)

// Decoder limits. A stream that exceeds one fails with ErrTooLarge before
// the decoder allocates for it.
const (
	// MaxStreamBytes bounds the bytes Decode reads.
	MaxStreamBytes = 1 << 30
	// maxMessageMeta bounds one IPC message's flatbuffer header (the schema
	// message carries the version-level fields, Meta included).
	maxMessageMeta = 1 << 20
	// maxStringLen bounds an object name, a codec name or a store ID.
	maxStringLen = 4096
	// allocSlack and allocFactor bound what the Arrow reader may allocate:
	// allocFactor times the bytes read so far, plus allocSlack. An
	// uncompressed stream needs about one times; a decompression bomb or
	// buffers overlapping many times in a malformed stream are refused.
	allocSlack  = 1 << 20
	allocFactor = 16
)

// Unmarshal decodes a manifest from the Arrow IPC stream in data. Bytes
// after the end-of-stream marker are an error.
func Unmarshal(data []byte) (*Manifest, error) {
	m, n, err := decode(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	if n != int64(len(data)) {
		return nil, corruptf("%d bytes after the end-of-stream marker", int64(len(data))-n)
	}
	return m, nil
}

// Decode reads one manifest from the Arrow IPC stream in r, up to and
// including its end-of-stream marker, and validates it. It returns an error
// wrapping ErrCorrupt, ErrInvalid or ErrTooLarge, never panics, and bounds
// what it allocates by what it has read (and by MaxStreamBytes).
func Decode(r io.Reader) (*Manifest, error) {
	m, _, err := decode(r)
	return m, err
}

// decodeUnchecked is Decode without Validate: for a part of a version,
// whose figures the whole version's header gives.
func decodeUnchecked(r io.Reader) (*Manifest, error) {
	m, _, err := decodeStream(r, false)
	return m, err
}

func decode(r io.Reader) (m *Manifest, n int64, err error) {
	return decodeStream(r, true)
}

func decodeStream(r io.Reader, validate bool) (m *Manifest, n int64, err error) {
	mr := &messageReader{r: r, limit: MaxStreamBytes, refs: 1}
	alloc := &budgetAllocator{mem: memory.NewGoAllocator(), read: &mr.n}
	defer func() {
		if p := recover(); p != nil {
			m, err = nil, panicError(alloc, mr, p)
		}
	}()
	rd, err := ipc.NewReaderFromMessageReader(mr, ipc.WithAllocator(alloc))
	if err != nil {
		return nil, mr.n, readError(alloc, mr, err)
	}
	defer rd.Release()
	m, _, err = fromSchema(rd.Schema())
	if err != nil {
		return nil, mr.n, err
	}
	nf := len(rd.Schema().Fields())
	d := decoder{m: m, intern: make(map[string]string), entries: nf >= numColsV2, erasure: nf == numCols}
	for rd.Next() {
		if err := d.record(rd.Record()); err != nil {
			return nil, mr.n, err
		}
	}
	if err := rd.Err(); err != nil {
		return nil, mr.n, readError(alloc, mr, err)
	}
	if !mr.eos {
		return nil, mr.n, corruptf("stream ends without an end-of-stream marker after %d bytes (truncated?)", mr.n)
	}
	if !validate {
		return m, mr.n, nil
	}
	if err := m.Validate(); err != nil {
		return nil, mr.n, err
	}
	return m, mr.n, nil
}

func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

func readError(alloc *budgetAllocator, mr *messageReader, err error) error {
	switch {
	case alloc.exceeded.Load() || mr.tooLarge != nil:
		return tooLarge(alloc, mr)
	case mr.err != nil:
		return mr.err
	case mr.n == 0:
		return corruptf("empty stream")
	}
	return fmt.Errorf("%w: %w", ErrCorrupt, err)
}

func panicError(alloc *budgetAllocator, mr *messageReader, p any) error {
	if alloc.exceeded.Load() || mr.tooLarge != nil {
		return tooLarge(alloc, mr)
	}
	return corruptf("%v", p)
}

func tooLarge(alloc *budgetAllocator, mr *messageReader) error {
	if mr.tooLarge != nil {
		return mr.tooLarge
	}
	return fmt.Errorf("%w: arrow buffers would need more than %d bytes for a %d-byte stream (compressed or malformed)",
		ErrTooLarge, alloc.budget(), mr.n)
}

// fromSchema checks the schema and reads the version-level fields from its
// metadata.
func fromSchema(s *arrow.Schema) (*Manifest, string, error) {
	if s == nil {
		return nil, "", corruptf("no schema")
	}
	md := s.Metadata()
	get := func(k string) (string, bool) {
		i := md.FindKey(k)
		if i < 0 {
			return "", false
		}
		return md.Values()[i], true
	}
	f, ok := get(MetaFormat)
	if !ok {
		return nil, "", corruptf("schema metadata lacks %s (not a ckptio manifest?)", MetaFormat)
	}
	if formatRank(f) == 0 {
		return nil, "", corruptf("format version %q, this build reads %q, %q and %q (written by a newer ckptio?)", f, formatV1, FormatVersion, FormatErasure)
	}
	if err := checkSchema(s, f); err != nil {
		return nil, "", err
	}
	m := &Manifest{}
	m.Job, _ = get(MetaJob)
	kind, _ := get(MetaKind)
	m.Kind = Kind(kind)
	for _, x := range []struct {
		key string
		dst *int64
	}{{MetaVersion, &m.Version}, {MetaLogicalBytes, &m.LogicalBytes}, {MetaNewBytes, &m.NewBytes}, {MetaSentBytes, &m.SentBytes}} {
		v, ok := get(x.key)
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, "", corruptf("%s %q: not an integer", x.key, v)
		}
		*x.dst = n
	}
	if v, ok := get(MetaCreated); ok && v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return nil, "", corruptf("%s %q: not an RFC 3339 time", MetaCreated, v)
		}
		m.Created = t
	}
	if v, ok := get(MetaMeta); ok && v != "" {
		if err := json.Unmarshal([]byte(v), &m.Meta); err != nil {
			return nil, "", corruptf("%s: not a JSON object of strings: %v", MetaMeta, err)
		}
	}
	return m, f, nil
}

// decoder turns record batches into Blocks, interning the strings so a name
// repeated on every block of an object is held once.
type decoder struct {
	m       *Manifest
	intern  map[string]string
	row     int64 // rows decoded so far, for messages
	entries bool  // the stream has the entry columns (format 2)
	erasure bool  // the stream has the erasure columns (format 3)
}

func (d *decoder) str(s string) string {
	if v, ok := d.intern[s]; ok {
		return v
	}
	v := strings.Clone(s)
	d.intern[v] = v
	return v
}

func (d *decoder) record(rec arrow.Record) error {
	rows := int(rec.NumRows())
	if rows < 0 || int64(rows) != rec.NumRows() {
		return corruptf("record batch claims %d rows", rec.NumRows())
	}
	for i, c := range rec.Columns() {
		if c.Len() != rows {
			return corruptf("column %q has %d values in a batch of %d rows", rec.ColumnName(i), c.Len(), rows)
		}
		if c.NullN() != 0 {
			return corruptf("column %q has %d nulls", rec.ColumnName(i), c.NullN())
		}
	}
	objects, err := d.strings(ColObject, rec.Column(colObject))
	if err != nil {
		return err
	}
	rank := rec.Column(colRank).(*array.Int32)
	off := rec.Column(colOffset).(*array.Int64)
	length := rec.Column(colLength).(*array.Int64)
	hash := rec.Column(colHash).(*array.FixedSizeBinary)
	key := rec.Column(colKey).(*array.FixedSizeBinary)
	stored := rec.Column(colStoredLength).(*array.Int64)
	codec := rec.Column(colCodec).(*array.String)
	if err := checkOffsets(ColCodec, codec); err != nil {
		return err
	}
	stores := rec.Column(colStores).(*array.List)
	storeVals, ok := stores.ListValues().(*array.String)
	if !ok {
		return corruptf("column %q: list values are %s, want utf8", ColStores, stores.ListValues().DataType())
	}
	if err := checkOffsets(ColStores, storeVals); err != nil {
		return err
	}
	if storeVals.NullN() != 0 {
		return corruptf("column %q has null store IDs", ColStores)
	}
	var dataShards *array.Uint8
	var shards *array.List
	var shardVals *array.FixedSizeBinary
	if d.erasure {
		dataShards = rec.Column(colDataShards).(*array.Uint8)
		shards = rec.Column(colShards).(*array.List)
		if shardVals, ok = shards.ListValues().(*array.FixedSizeBinary); !ok {
			return corruptf("column %q: list values are %s, want fixed_size_binary(32)", ColShards, shards.ListValues().DataType())
		}
		if shardVals.NullN() != 0 {
			return corruptf("column %q has null shard keys", ColShards)
		}
	}
	prevShardEnd := int64(-1)
	var ents *entryCols
	if d.entries {
		if ents, err = d.entryColumns(rec); err != nil {
			return err
		}
	}
	prevEnd := int64(-1)
	d.m.Blocks = slices.Grow(d.m.Blocks, rows)
	for i := 0; i < rows; i++ {
		b := Block{
			Object:       objects(i),
			Rank:         rank.Value(i),
			Offset:       off.Value(i),
			Length:       length.Value(i),
			StoredLength: stored.Value(i),
		}
		h, k := hash.Value(i), key.Value(i)
		if len(h) != storage.HashSize || len(k) != storage.HashSize {
			return corruptf("row %d: hash of %d bytes, key of %d, want %d", d.row, len(h), len(k), storage.HashSize)
		}
		copy(b.Hash[:], h)
		copy(b.Key[:], k)
		c := codec.Value(i)
		if len(c) > maxStringLen {
			return corruptf("row %d: codec name of %d bytes", d.row, len(c))
		}
		b.Codec = Codec(d.str(c))
		start, end := stores.ValueOffsets(i)
		if start < 0 || start < prevEnd || start > end || end > int64(storeVals.Len()) {
			return corruptf("row %d: store list [%d, %d) out of order or out of range", d.row, start, end)
		}
		prevEnd = end
		if end > start {
			b.Stores = make([]string, 0, end-start)
			for j := start; j < end; j++ {
				s := storeVals.Value(int(j))
				if len(s) > maxStringLen {
					return corruptf("row %d: store ID of %d bytes", d.row, len(s))
				}
				b.Stores = append(b.Stores, d.str(s))
			}
		}
		if ents != nil {
			if err := ents.row(d, i, &b); err != nil {
				return err
			}
		}
		if shards != nil {
			b.DataShards = int(dataShards.Value(i))
			start, end := shards.ValueOffsets(i)
			if start < 0 || start < prevShardEnd || start > end || end > int64(shardVals.Len()) {
				return corruptf("row %d: shard list [%d, %d) out of order or out of range", d.row, start, end)
			}
			prevShardEnd = end
			if end > start {
				b.Shards = make([]storage.Hash, end-start)
				for j := start; j < end; j++ {
					v := shardVals.Value(int(j))
					if len(v) != storage.HashSize {
						return corruptf("row %d: shard key of %d bytes, want %d", d.row, len(v), storage.HashSize)
					}
					copy(b.Shards[j-start][:], v)
				}
			}
		}
		d.m.Blocks = append(d.m.Blocks, b)
		d.row++
	}
	return nil
}

// entryCols are the entry columns of one record batch.
type entryCols struct {
	typ          func(int) string
	mode         *array.Uint32
	mtime, ctime *array.Int64
	inode        *array.Uint64
	target       *array.String
}

func (d *decoder) entryColumns(rec arrow.Record) (*entryCols, error) {
	typ, err := d.strings(ColType, rec.Column(colType))
	if err != nil {
		return nil, err
	}
	target := rec.Column(colTarget).(*array.String)
	if err := checkOffsets(ColTarget, target); err != nil {
		return nil, err
	}
	return &entryCols{
		typ:    typ,
		mode:   rec.Column(colMode).(*array.Uint32),
		mtime:  rec.Column(colMTime).(*array.Int64),
		ctime:  rec.Column(colCTime).(*array.Int64),
		inode:  rec.Column(colInode).(*array.Uint64),
		target: target,
	}, nil
}

// row adds the entry of row i, whose block is b, if it has one.
func (c *entryCols) row(d *decoder, i int, b *Block) error {
	t := c.typ(i)
	if t == "" {
		if c.mode.Value(i) != 0 || c.mtime.Value(i) != 0 || c.ctime.Value(i) != 0 || c.inode.Value(i) != 0 || c.target.Value(i) != "" {
			return corruptf("row %d: entry fields without a type", d.row)
		}
		return nil
	}
	if b.Offset != 0 {
		return corruptf("row %d: entry of %q on the block at offset %d, not 0", d.row, b.Object, b.Offset)
	}
	target := c.target.Value(i)
	if len(target) > maxStringLen {
		return corruptf("row %d: symlink target of %d bytes", d.row, len(target))
	}
	d.m.Entries = append(d.m.Entries, Entry{
		Object: b.Object, Rank: b.Rank, Type: EntryType(t),
		Mode: c.mode.Value(i), MTime: c.mtime.Value(i), CTime: c.ctime.Value(i), Inode: c.inode.Value(i),
		Target: strings.Clone(target),
	})
	return nil
}

// strings returns a function giving the string of row i of the column
// name, for a plain utf8 column or a dictionary of utf8; it panics (which
// decode recovers as ErrCorrupt) on a value the format refuses.
func (d *decoder) strings(name string, col arrow.Array) (func(int) string, error) {
	switch a := col.(type) {
	case *array.String:
		if err := checkOffsets(name, a); err != nil {
			return nil, err
		}
		return func(i int) string {
			s := a.Value(i)
			if len(s) > maxStringLen {
				panic(fmt.Sprintf("row %d: %s of %d bytes", d.row, name, len(s)))
			}
			return d.str(s)
		}, nil
	case *array.Dictionary:
		dict, ok := a.Dictionary().(*array.String)
		if !ok {
			return nil, corruptf("column %q: dictionary of %s, want utf8", name, a.Dictionary().DataType())
		}
		if err := checkOffsets(name, dict); err != nil {
			return nil, err
		}
		names := make([]string, dict.Len())
		done := make([]bool, dict.Len())
		return func(i int) string {
			idx := a.GetValueIndex(i)
			if idx < 0 || idx >= dict.Len() {
				panic(fmt.Sprintf("row %d: %s dictionary index %d out of range [0, %d)", d.row, name, idx, dict.Len()))
			}
			if !done[idx] {
				if dict.IsNull(idx) {
					panic(fmt.Sprintf("row %d: null %s", d.row, name))
				}
				s := dict.Value(idx)
				if len(s) > maxStringLen {
					panic(fmt.Sprintf("row %d: %s of %d bytes", d.row, name, len(s)))
				}
				names[idx], done[idx] = d.str(s), true
			}
			return names[idx]
		}, nil
	}
	return nil, corruptf("column %q has type %s", name, col.DataType())
}

// checkOffsets refuses a string array whose offsets go backwards or past
// its data, so the strings it yields never add up to more than its buffer.
func checkOffsets(name string, a *array.String) error {
	offs := a.ValueOffsets()
	for i, o := range offs {
		if o < 0 || (i > 0 && o < offs[i-1]) {
			return corruptf("column %q: string offsets go backwards at %d", name, i)
		}
	}
	return nil
}

// messageReader reads Arrow IPC stream messages from r like the one in
// package ipc, but checks each length against what is left of the limit
// before it allocates, and reads bodies in chunks so a length the stream
// does not back with bytes costs nothing.
type messageReader struct {
	r        io.Reader
	n        int64 // bytes consumed
	limit    int64
	eos      bool
	msg      *ipc.Message
	refs     int64
	err      error // the first error of this reader, returned as is
	tooLarge error
}

var _ ipc.MessageReader = (*messageReader)(nil)

const ipcContinuation = 0xFFFFFFFF

func (mr *messageReader) Message() (*ipc.Message, error) {
	if mr.eos {
		return nil, io.EOF
	}
	var hdr [4]byte
	if err := mr.readFull(hdr[:], true); err != nil {
		return nil, err // io.EOF without a marker: decode reports the truncation
	}
	l := binary.LittleEndian.Uint32(hdr[:])
	if l == ipcContinuation {
		if err := mr.readFull(hdr[:], false); err != nil {
			return nil, err
		}
		l = binary.LittleEndian.Uint32(hdr[:])
	}
	if l == 0 {
		mr.eos = true
		return nil, io.EOF
	}
	if l > maxMessageMeta {
		return nil, mr.fail(corruptf("message header of %d bytes at byte %d (limit %d): not an Arrow IPC stream?", l, mr.n-4, maxMessageMeta))
	}
	meta, err := mr.readN(int64(l))
	if err != nil {
		return nil, err
	}
	if err := checkMessageHeader(meta); err != nil {
		return nil, mr.fail(corruptf("message at byte %d: %v", mr.n-int64(len(meta)), err))
	}
	metaBuf := memory.NewBufferBytes(meta)
	probe := ipc.NewMessage(metaBuf, memory.NewBufferBytes(nil))
	bodyLen := probe.BodyLen()
	probe.Release()
	if bodyLen < 0 {
		return nil, mr.fail(corruptf("message body length %d", bodyLen))
	}
	body, err := mr.readN(bodyLen)
	if err != nil {
		return nil, err
	}
	if mr.msg != nil {
		mr.msg.Release()
	}
	mr.msg = ipc.NewMessage(metaBuf, memory.NewBufferBytes(body))
	return mr.msg, nil
}

// fail records an error of the message reader, which the Arrow reader
// wraps in its own words, so decode can return it as it was.
func (mr *messageReader) fail(err error) error {
	if errors.Is(err, ErrTooLarge) {
		mr.tooLarge = err
	} else if mr.err == nil {
		mr.err = err
	}
	return err
}

// readFull reads len(b) bytes. With atStart, a stream that ends before the
// first byte returns io.EOF; any other short read is a truncation.
func (mr *messageReader) readFull(b []byte, atStart bool) error {
	if mr.n+int64(len(b)) > mr.limit {
		return mr.fail(fmt.Errorf("%w: stream longer than %d bytes", ErrTooLarge, mr.limit))
	}
	n, err := io.ReadFull(mr.r, b)
	mr.n += int64(n)
	if atStart && n == 0 && err == io.EOF {
		return io.EOF
	}
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return mr.fail(corruptf("stream truncated at byte %d", mr.n))
		}
		return mr.fail(fmt.Errorf("manifest: read: %w", err))
	}
	return nil
}

// readN reads n bytes, growing the buffer as bytes arrive.
func (mr *messageReader) readN(n int64) ([]byte, error) {
	if n > mr.limit-mr.n {
		return nil, mr.fail(fmt.Errorf("%w: a message of %d bytes at byte %d would pass the %d-byte limit", ErrTooLarge, n, mr.n, mr.limit))
	}
	const chunk = 1 << 20
	buf := make([]byte, 0, min(n, chunk))
	for int64(len(buf)) < n {
		step := min(n-int64(len(buf)), chunk)
		if cap(buf)-len(buf) < int(step) {
			buf = append(buf[:cap(buf)], make([]byte, step)...)[:len(buf)]
		}
		if err := mr.readFull(buf[len(buf):len(buf)+int(step)], false); err != nil {
			return nil, err
		}
		buf = buf[:len(buf)+int(step)]
	}
	return buf, nil
}

func (mr *messageReader) Retain() { atomic.AddInt64(&mr.refs, 1) }

func (mr *messageReader) Release() {
	if atomic.AddInt64(&mr.refs, -1) == 0 && mr.msg != nil {
		mr.msg.Release()
		mr.msg = nil
	}
}

// budgetAllocator refuses (by panicking, which Decode recovers) to hold
// more than allocFactor times the bytes read so far plus allocSlack.
type budgetAllocator struct {
	mem      memory.Allocator
	read     *int64
	live     int64
	exceeded atomic.Bool
}

func (a *budgetAllocator) budget() int64 { return allocFactor*(*a.read) + allocSlack }

func (a *budgetAllocator) grow(delta int) {
	if delta > 0 && a.live+int64(delta) > a.budget() {
		a.exceeded.Store(true)
		panic(fmt.Sprintf("%v: allocation of %d bytes refused", ErrTooLarge, delta))
	}
	a.live += int64(delta)
}

func (a *budgetAllocator) Allocate(size int) []byte {
	if size < 0 {
		panic("negative allocation")
	}
	a.grow(size)
	return a.mem.Allocate(size)
}

func (a *budgetAllocator) Reallocate(size int, b []byte) []byte {
	if size < 0 {
		panic("negative allocation")
	}
	a.grow(size - len(b))
	return a.mem.Reallocate(size, b)
}

func (a *budgetAllocator) Free(b []byte) {
	a.live -= int64(len(b))
	a.mem.Free(b)
}

// validUTF8 reports whether s is valid UTF-8 (Arrow utf8 columns must be).
func validUTF8(s string) bool { return utf8.ValidString(s) }
