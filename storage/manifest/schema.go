package manifest

import (
	"github.com/apache/arrow/go/v15/arrow"
)

// FormatVersion is the manifest format this package writes, stored in the
// schema metadata under MetaFormat. It also reads format "1", which has
// no entry columns.
const FormatVersion = "2"

// formatV1 is the first format: the block columns only.
const formatV1 = "1"

// FormatErasure is the format of a manifest with erasure-coded rows: format
// 2 plus the data_shards and shards columns. The encoder writes it only
// when some row is erasure-coded, so a replicated manifest stays readable
// by a build that knows formats 1 and 2.
const FormatErasure = "3"

// Schema metadata keys (see the package documentation).
const (
	MetaFormat       = "ckptio.format"
	MetaJob          = "ckptio.job"
	MetaVersion      = "ckptio.version"
	MetaCreated      = "ckptio.created"
	MetaKind         = "ckptio.kind"
	MetaLogicalBytes = "ckptio.logical_bytes"
	MetaNewBytes     = "ckptio.new_bytes"
	MetaSentBytes    = "ckptio.sent_bytes"
	MetaMeta         = "ckptio.meta"
)

// Column names, in schema order.
const (
	ColObject       = "object"
	ColRank         = "rank"
	ColOffset       = "offset"
	ColLength       = "length"
	ColHash         = "hash"
	ColKey          = "key"
	ColStoredLength = "stored_length"
	ColCodec        = "codec"
	ColStores       = "stores"
	// Entry columns (format 2): set on the row at offset 0 of an object
	// that is a file, directory or symlink; zero ("" and 0) elsewhere.
	ColType   = "type"
	ColMode   = "mode"
	ColMTime  = "mtime_ns"
	ColCTime  = "ctime_ns"
	ColInode  = "inode"
	ColTarget = "target"
	// Erasure columns (format 3): K and the K+M shard keys of an
	// erasure-coded row; 0 and an empty list on a replicated one.
	ColDataShards = "data_shards"
	ColShards     = "shards"
)

// Column indices, in schema order.
const (
	colObject = iota
	colRank
	colOffset
	colLength
	colHash
	colKey
	colStoredLength
	colCodec
	colStores
	colType
	colMode
	colMTime
	colCTime
	colInode
	colTarget
	colDataShards
	colShards
	numCols
)

// numColsV1 is the number of columns of format 1: the block columns.
const numColsV1 = colType

// numColsV2 is the number of columns of format 2: the entry columns added.
const numColsV2 = colDataShards

// BatchRows is the number of blocks per record batch the encoder writes, so
// a huge manifest streams in pieces of bounded size.
const BatchRows = 1 << 16

var hashType = &arrow.FixedSizeBinaryType{ByteWidth: 32}

// typeType is the type of the type column: a dictionary with int8 indices
// (four values at most).
var typeType = &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int8, ValueType: arrow.BinaryTypes.String}

// objectType is the type the encoder writes for the object column: strings
// dictionary-encoded with int32 indices (one dictionary per record batch).
var objectType = &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}

// fields returns the columns the encoder writes, in order.
func fields() []arrow.Field {
	return []arrow.Field{
		{Name: ColObject, Type: objectType},
		{Name: ColRank, Type: arrow.PrimitiveTypes.Int32},
		{Name: ColOffset, Type: arrow.PrimitiveTypes.Int64},
		{Name: ColLength, Type: arrow.PrimitiveTypes.Int64},
		{Name: ColHash, Type: hashType},
		{Name: ColKey, Type: hashType},
		{Name: ColStoredLength, Type: arrow.PrimitiveTypes.Int64},
		{Name: ColCodec, Type: arrow.BinaryTypes.String},
		{Name: ColStores, Type: arrow.ListOf(arrow.BinaryTypes.String)},
		{Name: ColType, Type: typeType},
		{Name: ColMode, Type: arrow.PrimitiveTypes.Uint32},
		{Name: ColMTime, Type: arrow.PrimitiveTypes.Int64},
		{Name: ColCTime, Type: arrow.PrimitiveTypes.Int64},
		{Name: ColInode, Type: arrow.PrimitiveTypes.Uint64},
		{Name: ColTarget, Type: arrow.BinaryTypes.String},
		{Name: ColDataShards, Type: arrow.PrimitiveTypes.Uint8},
		{Name: ColShards, Type: arrow.ListOf(hashType)},
	}
}

// fieldsOf returns the columns of a format.
func fieldsOf(format string) []arrow.Field {
	switch format {
	case formatV1:
		return fields()[:numColsV1]
	case FormatVersion:
		return fields()[:numColsV2]
	}
	return fields()
}

// formatRank orders the formats: each one's columns are a prefix of the
// next one's.
func formatRank(format string) int {
	switch format {
	case formatV1:
		return 1
	case FormatVersion:
		return 2
	case FormatErasure:
		return 3
	}
	return 0
}

// formatFor is the format the encoder writes for blocks: the erasure
// format when one of them is erasure-coded, else FormatVersion.
func formatFor(blocks []Block) string {
	for i := range blocks {
		if blocks[i].Erasure() || len(blocks[i].Shards) > 0 {
			return FormatErasure
		}
	}
	return FormatVersion
}

// checkSchema reports whether s has the manifest columns with acceptable
// types. Nullability and list item names are not checked (pyarrow writes
// nullable fields by default); nulls are refused row by row instead. The
// object column may be plain utf8 or a dictionary of utf8 with integer
// indices.
func checkSchema(s *arrow.Schema, format string) error {
	fs := s.Fields()
	want := fieldsOf(format)
	if len(fs) != len(want) {
		return corruptf("schema of format %s has %d columns, want %d (%s)", format, len(fs), len(want), columnList(want))
	}
	for i, f := range fs {
		if f.Name != want[i].Name {
			return corruptf("column %d is %q, want %q", i, f.Name, want[i].Name)
		}
		if !typeOK(i, f.Type) {
			return corruptf("column %q has type %s, want %s", f.Name, f.Type, want[i].Type)
		}
	}
	return nil
}

func typeOK(col int, t arrow.DataType) bool {
	switch col {
	case colObject, colType:
		if t.ID() == arrow.STRING {
			return true
		}
		d, ok := t.(*arrow.DictionaryType)
		if !ok || d.ValueType.ID() != arrow.STRING {
			return false
		}
		switch d.IndexType.ID() {
		case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64:
			return true
		}
		return false
	case colRank:
		return t.ID() == arrow.INT32
	case colOffset, colLength, colStoredLength:
		return t.ID() == arrow.INT64
	case colHash, colKey:
		f, ok := t.(*arrow.FixedSizeBinaryType)
		return ok && f.ByteWidth == 32
	case colCodec, colTarget:
		return t.ID() == arrow.STRING
	case colMode:
		return t.ID() == arrow.UINT32
	case colMTime, colCTime:
		return t.ID() == arrow.INT64
	case colInode:
		return t.ID() == arrow.UINT64
	case colStores:
		l, ok := t.(*arrow.ListType)
		return ok && l.Elem().ID() == arrow.STRING
	case colDataShards:
		return t.ID() == arrow.UINT8
	case colShards:
		l, ok := t.(*arrow.ListType)
		if !ok {
			return false
		}
		f, ok := l.Elem().(*arrow.FixedSizeBinaryType)
		return ok && f.ByteWidth == 32
	}
	return false
}

func columnList(fs []arrow.Field) string {
	s := ""
	for i, f := range fs {
		if i > 0 {
			s += ", "
		}
		s += f.Name
	}
	return s
}
