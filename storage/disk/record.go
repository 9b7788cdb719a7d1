package disk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/ckptio/ckptio/storage"
)

// A pack record is a 64-byte header followed, for a put, by the block's
// bytes. All integers are little-endian.
//
//	off size field
//	  0    4 magic "CKR1"
//	  4    1 kind: 1 put, 2 delete
//	  5    3 zero
//	  8    4 length of the data that follows (put); 0 (delete)
//	 12    4 delete: the pack holding the deleted put record; put: 0
//	 16    8 delete: the offset of the deleted put record; put: 0
//	 24   32 block hash
//	 56    4 CRC-32C (Castagnoli) of bytes 0..56
//	 60    4 put: CRC-32C of the data; delete: 0
const (
	recHeaderSize = 64
	recMagic      = "CKR1"
	recPut        = 1
	recDel        = 2
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errBadRecord: a pack record's header or data does not check out.
var errBadRecord = errors.New("bad pack record")

// recHeader is a decoded record header.
type recHeader struct {
	kind   byte
	length uint32
	tpack  uint32 // delete: the pack of the deleted put
	toff   uint64 // delete: the offset of the deleted put
	hash   storage.Hash
	dcrc   uint32 // put: CRC-32C of the data
}

// marshal writes the header into b[:recHeaderSize].
func (r *recHeader) marshal(b []byte) {
	_ = b[recHeaderSize-1]
	copy(b[0:4], recMagic)
	b[4] = r.kind
	b[5], b[6], b[7] = 0, 0, 0
	binary.LittleEndian.PutUint32(b[8:], r.length)
	binary.LittleEndian.PutUint32(b[12:], r.tpack)
	binary.LittleEndian.PutUint64(b[16:], r.toff)
	copy(b[24:56], r.hash[:])
	binary.LittleEndian.PutUint32(b[56:], crc32c(b[:56]))
	binary.LittleEndian.PutUint32(b[60:], r.dcrc)
}

// parseHeader decodes and checks a record header. It does not check the
// data; see checkData.
func parseHeader(b []byte) (recHeader, error) {
	var r recHeader
	if len(b) < recHeaderSize {
		return r, fmt.Errorf("%w: short header (%d bytes)", errBadRecord, len(b))
	}
	if string(b[0:4]) != recMagic {
		return r, fmt.Errorf("%w: bad magic %q", errBadRecord, b[0:4])
	}
	if got, want := binary.LittleEndian.Uint32(b[56:]), crc32c(b[:56]); got != want {
		return r, fmt.Errorf("%w: header checksum %08x, want %08x", errBadRecord, got, want)
	}
	r.kind = b[4]
	r.length = binary.LittleEndian.Uint32(b[8:])
	r.tpack = binary.LittleEndian.Uint32(b[12:])
	r.toff = binary.LittleEndian.Uint64(b[16:])
	copy(r.hash[:], b[24:56])
	r.dcrc = binary.LittleEndian.Uint32(b[60:])
	if b[5] != 0 || b[6] != 0 || b[7] != 0 {
		return r, fmt.Errorf("%w: nonzero padding", errBadRecord)
	}
	switch r.kind {
	case recPut:
		if r.length > storage.MaxBlockSize || r.tpack != 0 || r.toff != 0 {
			return r, fmt.Errorf("%w: bad put header (length %d)", errBadRecord, r.length)
		}
	case recDel:
		if r.length != 0 || r.dcrc != 0 || r.tpack == 0 {
			return r, fmt.Errorf("%w: bad delete header", errBadRecord)
		}
	default:
		return r, fmt.Errorf("%w: unknown kind %d", errBadRecord, r.kind)
	}
	return r, nil
}

// checkData reports whether data is what a put record's header promises.
func (r *recHeader) checkData(data []byte) error {
	if len(data) != int(r.length) {
		return fmt.Errorf("%w: %d data bytes, header says %d", errBadRecord, len(data), r.length)
	}
	if got := crc32c(data); got != r.dcrc {
		return fmt.Errorf("%w: data checksum %08x, want %08x", errBadRecord, got, r.dcrc)
	}
	return nil
}

func crc32c(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }
