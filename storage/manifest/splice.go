package manifest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/ipc"
	"github.com/apache/arrow/go/v15/arrow/memory"
)

// A checkpoint's manifest is encoded once, by the writers of its blocks:
// each writes its blocks as a manifest of their own (Marshal), and the
// version is put together by Splice, which encodes only the version-level
// fields (the schema message, a few hundred bytes) and copies the parts'
// record batches as they are. The manager stamps the version number the
// same way at commit. The result is an ordinary manifest stream (doc.go):
// a schema message, the parts' dictionary and record batch messages in
// order, the end-of-stream marker.

// Splice returns the encoding of a manifest whose version-level fields are
// hdr's (hdr.Blocks is ignored) and whose blocks are those of parts, in
// order. Each part is the encoding of a manifest (Marshal, or a manifest a
// manager stored); its version-level fields are dropped. Splice checks the
// framing of every message and that each part has one schema message, at
// its start, and an end-of-stream marker; it does not decode the blocks,
// so a part whose batches are corrupt makes a corrupt result: whoever
// trusts it decodes it first (the manager does, at commit).
func Splice(hdr *Manifest, parts ...[]byte) ([]byte, error) {
	// The parts' batches keep their columns: the result is in their
	// format. A part by an older writer is in format 1; parts of one
	// version in formats 2 and 3 (a leader whose blocks are all
	// replicated beside one with erasure-coded rows) are joined in format
	// 3, the format-2 ones decoded and encoded again.
	format := FormatVersion
	formats := make([]string, len(parts))
	for i, p := range parts {
		_, f, err := header(p)
		if err != nil {
			return nil, fmt.Errorf("manifest: splice: part %d: %w", i, err)
		}
		formats[i] = f
		switch {
		case i == 0:
			format = f
		case f == format:
		case f == formatV1 || format == formatV1:
			return nil, fmt.Errorf("%w: splice: part %d is in format %s, part 0 in %s", ErrInvalid, i, f, formats[0])
		case formatRank(f) > formatRank(format):
			format = f
		}
	}
	size := len(eos)
	spans := make([][2]int, len(parts))
	parts = slices.Clone(parts) // the caller's slice is not rewritten
	for i, p := range parts {
		if formats[i] != format {
			up, err := reformat(p, format)
			if err != nil {
				return nil, fmt.Errorf("manifest: splice: part %d: %w", i, err)
			}
			parts[i] = up
		}
	}
	for i, p := range parts {
		first, end, err := batches(p)
		if err != nil {
			return nil, fmt.Errorf("manifest: splice: part %d: %w", i, err)
		}
		spans[i] = [2]int{first, end}
		size += end - first
	}
	head, err := schemaMessage(hdr, format)
	if err != nil {
		return nil, err
	}
	size += len(head)
	if int64(size) > MaxStreamBytes {
		return nil, fmt.Errorf("%w: spliced manifest of %d bytes (limit %d)", ErrTooLarge, size, int64(MaxStreamBytes))
	}
	out := make([]byte, 0, size)
	out = append(out, head...)
	for i, p := range parts {
		out = append(out, p[spans[i][0]:spans[i][1]]...)
	}
	return append(out, eos...), nil
}

// reformat encodes the part p again in format, whose columns extend p's.
func reformat(p []byte, format string) ([]byte, error) {
	m, err := decodeUnchecked(bytes.NewReader(p))
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := encode(&buf, m, format); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Header decodes the version-level fields of an encoded manifest: its
// schema message only, not its blocks (Blocks is nil). It is what a
// writer reads of a part to sum the figures of a version.
func Header(data []byte) (*Manifest, error) {
	m, _, err := header(data)
	return m, err
}

// header is Header that also returns the format.
func header(data []byte) (*Manifest, string, error) {
	mr := &messageReader{r: bytes.NewReader(data), limit: MaxStreamBytes, refs: 1}
	msg, err := mr.Message()
	if err != nil {
		if mr.err != nil || mr.tooLarge != nil {
			return nil, "", err
		}
		return nil, "", corruptf("no schema message")
	}
	if msg.Type() != ipc.MessageSchema {
		return nil, "", corruptf("the stream starts with a %s message, not a schema", msg.Type())
	}
	// A schema message on its own, then an end-of-stream marker, is a
	// manifest without blocks: the ipc reader decodes its schema.
	head := data[:mr.n]
	rd, err := ipc.NewReader(bytes.NewReader(append(head[:len(head):len(head)], eos...)))
	if err != nil {
		return nil, "", fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	defer rd.Release()
	return fromSchema(rd.Schema())
}

// eos is the end-of-stream marker: a continuation and a zero length.
var eos = []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}

// schemaMessage encodes the schema message of m's version-level fields.
func schemaMessage(m *Manifest, format string) ([]byte, error) {
	md, err := schemaMetadata(m, format)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	wr := ipc.NewWriter(&buf, ipc.WithSchema(arrow.NewSchema(fieldsOf(format), &md)), ipc.WithAllocator(memory.NewGoAllocator()))
	if err := wr.Close(); err != nil {
		return nil, fmt.Errorf("manifest: encode: %w", err)
	}
	b := buf.Bytes()
	if !bytes.HasSuffix(b, eos) {
		return nil, fmt.Errorf("manifest: encode: the Arrow writer ended a stream without the end-of-stream marker")
	}
	return b[:len(b)-len(eos)], nil
}

// batches walks the messages of the encoded manifest p and returns where
// the messages after its schema start and where its end-of-stream marker
// starts. It checks each message's framing and header like the decoder,
// without copying or decoding the bodies.
func batches(p []byte) (first, end int, err error) {
	defer func() {
		if r := recover(); r != nil {
			first, end, err = 0, 0, corruptf("%v", r)
		}
	}()
	off := 0
	for n := 0; ; n++ {
		start := off
		if len(p)-off < 4 {
			return 0, 0, corruptf("stream truncated at byte %d", off)
		}
		l := binary.LittleEndian.Uint32(p[off:])
		off += 4
		if l == ipcContinuation {
			if len(p)-off < 4 {
				return 0, 0, corruptf("stream truncated at byte %d", off)
			}
			l = binary.LittleEndian.Uint32(p[off:])
			off += 4
		}
		if l == 0 {
			if n == 0 {
				return 0, 0, corruptf("no schema message")
			}
			if off != len(p) {
				return 0, 0, corruptf("%d bytes after the end-of-stream marker", len(p)-off)
			}
			return first, start, nil
		}
		if l > maxMessageMeta || int(l) > len(p)-off {
			return 0, 0, corruptf("message header of %d bytes at byte %d, %d bytes left", l, off, len(p)-off)
		}
		meta := p[off : off+int(l)]
		off += int(l)
		if err := checkMessageHeader(meta); err != nil {
			return 0, 0, corruptf("message at byte %d: %v", start, err)
		}
		msg := ipc.NewMessage(memory.NewBufferBytes(meta), memory.NewBufferBytes(nil))
		bodyLen, typ := msg.BodyLen(), msg.Type()
		msg.Release()
		if bodyLen < 0 || bodyLen > int64(len(p)-off) {
			return 0, 0, corruptf("message body of %d bytes at byte %d, %d bytes left", bodyLen, off, len(p)-off)
		}
		off += int(bodyLen)
		switch {
		case n == 0 && typ != ipc.MessageSchema:
			return 0, 0, corruptf("the stream starts with a %s message, not a schema", typ)
		case n == 0:
			first = off
		case typ == ipc.MessageSchema:
			return 0, 0, corruptf("a second schema message at byte %d", start)
		}
	}
}
