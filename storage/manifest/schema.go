package manifest

import (
	"github.com/apache/arrow/go/v15/arrow"
)

// FormatVersion is the manifest format this package writes and reads,
// stored in the schema metadata under MetaFormat.
const FormatVersion = "1"

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
	numCols
)

// BatchRows is the number of blocks per record batch the encoder writes, so
// a huge manifest streams in pieces of bounded size.
const BatchRows = 1 << 16

var hashType = &arrow.FixedSizeBinaryType{ByteWidth: 32}

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
	}
}

// checkSchema reports whether s has the manifest columns with acceptable
// types. Nullability and list item names are not checked (pyarrow writes
// nullable fields by default); nulls are refused row by row instead. The
// object column may be plain utf8 or a dictionary of utf8 with integer
// indices.
func checkSchema(s *arrow.Schema) error {
	fs := s.Fields()
	if len(fs) != numCols {
		return corruptf("schema has %d columns, want %d (%s)", len(fs), numCols, columnList())
	}
	want := fields()
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
	case colObject:
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
	case colCodec:
		return t.ID() == arrow.STRING
	case colStores:
		l, ok := t.(*arrow.ListType)
		return ok && l.Elem().ID() == arrow.STRING
	}
	return false
}

func columnList() string {
	s := ""
	for i, f := range fields() {
		if i > 0 {
			s += ", "
		}
		s += f.Name
	}
	return s
}
