package manifest

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/erasure"
)

// ObjectInfo summarises one object of a manifest.
type ObjectInfo struct {
	Name   string
	Rank   int32
	Size   int64 // logical bytes: the sum of the lengths of its blocks
	Blocks int   // rows, including the single row of an empty object
}

// Objects returns one entry per (object, rank) pair, ordered by rank then
// name.
func (m *Manifest) Objects() []ObjectInfo {
	type key struct {
		name string
		rank int32
	}
	idx := make(map[key]int)
	var out []ObjectInfo
	for i := range m.Blocks {
		b := &m.Blocks[i]
		k := key{b.Object, b.Rank}
		j, ok := idx[k]
		if !ok {
			j = len(out)
			idx[k] = j
			out = append(out, ObjectInfo{Name: b.Object, Rank: b.Rank})
		}
		out[j].Size += b.Length
		out[j].Blocks++
	}
	slices.SortFunc(out, func(a, b ObjectInfo) int {
		if c := cmp.Compare(a.Rank, b.Rank); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
	return out
}

// BlocksOf returns a copy of the blocks of one object, ordered by offset;
// nil if the manifest has no such object.
func (m *Manifest) BlocksOf(object string, rank int32) []Block {
	var out []Block
	for i := range m.Blocks {
		if b := &m.Blocks[i]; b.Object == object && b.Rank == rank {
			out = append(out, *b)
		}
	}
	slices.SortFunc(out, func(a, b Block) int { return cmp.Compare(a.Offset, b.Offset) })
	return out
}

// Size returns the sum of the blocks' logical lengths.
func (m *Manifest) Size() int64 {
	var n int64
	for i := range m.Blocks {
		n += m.Blocks[i].Length
	}
	return n
}

// Validate checks the rules of the format and returns an error wrapping
// ErrInvalid that names the first object and block breaking one:
//
//   - Job is set; Version and the byte counts are not negative; LogicalBytes
//     is 0 (not filled in) or the sum of the block lengths.
//   - Every block has an object name, valid UTF-8 strings, a non-negative
//     offset, length and stored length, a known codec (raw, lz4, aesgcm or
//     lz4+aesgcm; an empty object's row may have none), and for CodecRaw a
//     stored length equal to its length; neither length is more than
//     storage.MaxBlockSize; store IDs are not empty.
//   - The blocks of an object (same name and rank) tile it: sorted by
//     offset, the first starts at 0 and each starts where the previous one
//     ends, with no gap and no overlap.
//   - A zero-length block is the only block of its (empty) object.
//   - Entries: one per object at most, each for an object with blocks, a
//     clean relative path (CheckPath), a known type, mode <= MaxMode; a
//     directory or symlink is one empty row; a symlink has a target; no
//     entry is inside an entry that is not a directory.
func (m *Manifest) Validate() error {
	if m.Job == "" {
		return invalidf("no job name")
	}
	if !validUTF8(m.Job) || !validUTF8(string(m.Kind)) {
		return invalidf("job or kind is not valid UTF-8")
	}
	if m.Version < 0 || m.LogicalBytes < 0 || m.NewBytes < 0 || m.SentBytes < 0 {
		return invalidf("negative version or byte count (version %d, logical %d, new %d, sent %d)",
			m.Version, m.LogicalBytes, m.NewBytes, m.SentBytes)
	}
	for k, v := range m.Meta {
		if !validUTF8(k) || !validUTF8(v) {
			return invalidf("meta %q is not valid UTF-8", k)
		}
	}
	for i := range m.Blocks {
		if err := checkBlock(&m.Blocks[i]); err != nil {
			return fmt.Errorf("%w: block %d: %s", ErrInvalid, i, err)
		}
	}
	order := make([]int, len(m.Blocks))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(i, j int) int {
		a, b := &m.Blocks[i], &m.Blocks[j]
		if c := cmp.Compare(a.Rank, b.Rank); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Object, b.Object); c != 0 {
			return c
		}
		return cmp.Compare(a.Offset, b.Offset)
	})
	var total int64
	for k := 0; k < len(order); {
		first := &m.Blocks[order[k]]
		end := int64(0)
		n := 0
		for ; k < len(order); k++ {
			b := &m.Blocks[order[k]]
			if b.Object != first.Object || b.Rank != first.Rank {
				break
			}
			switch {
			case b.Offset < end && n > 0:
				return invalidf("object %q rank %d: block at offset %d overlaps the block ending at %d", b.Object, b.Rank, b.Offset, end)
			case b.Offset != end:
				return invalidf("object %q rank %d: gap of %d bytes before the block at offset %d (previous data ends at %d)",
					b.Object, b.Rank, b.Offset-end, b.Offset, end)
			case b.Length == 0 && (n > 0 || (k+1 < len(order) && sameObject(&m.Blocks[order[k+1]], b))):
				return invalidf("object %q rank %d: zero-length block at offset %d in an object with other blocks", b.Object, b.Rank, b.Offset)
			}
			end = b.Offset + b.Length
			n++
		}
		if end > math.MaxInt64-total {
			return invalidf("total size overflows")
		}
		total += end
	}
	if m.LogicalBytes != 0 && m.LogicalBytes != total {
		return invalidf("logical_bytes is %d but the blocks add up to %d", m.LogicalBytes, total)
	}
	return m.validateEntries()
}

func sameObject(a, b *Block) bool { return a.Object == b.Object && a.Rank == b.Rank }

func checkBlock(b *Block) error {
	switch {
	case b.Object == "":
		return fmt.Errorf("no object name")
	case !validUTF8(b.Object):
		return fmt.Errorf("object name %q is not valid UTF-8", b.Object)
	case len(b.Object) > maxStringLen:
		return fmt.Errorf("object name of %d bytes (limit %d)", len(b.Object), maxStringLen)
	case b.Offset < 0 || b.Length < 0 || b.StoredLength < 0:
		return fmt.Errorf("object %q rank %d: negative offset, length or stored length (%d, %d, %d)",
			b.Object, b.Rank, b.Offset, b.Length, b.StoredLength)
	case b.Offset > math.MaxInt64-b.Length:
		return fmt.Errorf("object %q rank %d: offset %d + length %d overflows", b.Object, b.Rank, b.Offset, b.Length)
	case b.Length > storage.MaxBlockSize || b.StoredLength > storage.MaxBlockSize:
		return fmt.Errorf("object %q rank %d offset %d: block of %d bytes (%d stored) larger than a store accepts (%d)",
			b.Object, b.Rank, b.Offset, b.Length, b.StoredLength, storage.MaxBlockSize)
	}
	switch b.Codec {
	case CodecRaw:
		if b.StoredLength != b.Length {
			return fmt.Errorf("object %q rank %d offset %d: raw block stores %d bytes for %d logical",
				b.Object, b.Rank, b.Offset, b.StoredLength, b.Length)
		}
	case CodecLZ4, CodecAESGCM, CodecLZ4AESGCM:
	case "":
		if b.Length != 0 {
			return fmt.Errorf("object %q rank %d offset %d: no codec", b.Object, b.Rank, b.Offset)
		}
	default:
		return fmt.Errorf("object %q rank %d offset %d: unknown codec %q", b.Object, b.Rank, b.Offset, b.Codec)
	}
	if b.DataShards != 0 || len(b.Shards) != 0 {
		return checkShards(b)
	}
	for _, s := range b.Stores {
		if s == "" || !validUTF8(s) || len(s) > maxStringLen {
			return fmt.Errorf("object %q rank %d offset %d: bad store ID %q", b.Object, b.Rank, b.Offset, s)
		}
	}
	return nil
}

// checkShards checks an erasure-coded row: K within bounds, 1 to
// erasure.MaxParity parity shards, non-zero shard keys, one store entry
// per shard ("" for a shard no store holds) and no store holding two
// shards of the row.
func checkShards(b *Block) error {
	at := fmt.Sprintf("object %q rank %d offset %d", b.Object, b.Rank, b.Offset)
	k, m := b.DataShards, len(b.Shards)-b.DataShards
	if err := (erasure.Scheme{Data: k, Parity: m}).Check(); err != nil {
		return fmt.Errorf("%s: %d data shards of %d: %v", at, k, len(b.Shards), err)
	}
	if b.Length == 0 || b.StoredLength == 0 {
		return fmt.Errorf("%s: an empty block cannot be erasure-coded", at)
	}
	if len(b.Stores) != len(b.Shards) {
		return fmt.Errorf("%s: %d shards but %d store entries (want one per shard)", at, len(b.Shards), len(b.Stores))
	}
	for i, h := range b.Shards {
		if h.IsZero() {
			return fmt.Errorf("%s: shard %d has a zero key", at, i)
		}
	}
	for i, s := range b.Stores {
		if s == "" {
			continue
		}
		if !validUTF8(s) || len(s) > maxStringLen {
			return fmt.Errorf("%s: bad store ID %q", at, s)
		}
		for _, t := range b.Stores[:i] {
			if t == s {
				return fmt.Errorf("%s: store %q holds two shards of one block (shards go on distinct stores)", at, s)
			}
		}
	}
	return nil
}

// The codecs of client-side encryption (storage/crypt): the block's bytes,
// lz4-compressed first or not, sealed with AES-256-GCM under a key derived
// from the job's key and Block.Hash.
const (
	CodecAESGCM    Codec = "aesgcm"     // raw bytes, encrypted
	CodecLZ4AESGCM Codec = "lz4+aesgcm" // one LZ4 block, encrypted
)

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}
