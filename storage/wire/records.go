package wire

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"

	"github.com/ckptio/ckptio/storage"
)

// Catalog records: small named documents a store keeps beside its blocks
// (the manager's copy of its catalog, storage/manager/records.go). See the
// package documentation, "Catalog records".

// Record limits.
const (
	// MaxRecordName is the longest record name, in bytes.
	MaxRecordName = 255
	// MaxRecordSize is the largest record.
	MaxRecordSize = storage.MaxBlockSize
	// MaxRecordList is the most names a ListRecords reply carries.
	MaxRecordList = 4096
)

// ValidRecordName reports whether name may name a record: 1 to
// MaxRecordName bytes of ASCII letters, digits, '.', '_', '-' and '/',
// in '/'-separated parts none of which is empty, "." or "..".
func ValidRecordName(name string) error {
	if name == "" || len(name) > MaxRecordName {
		return fmt.Errorf("%w: record name of %d bytes, want 1 to %d", ErrMalformed, len(name), MaxRecordName)
	}
	for _, part := range strings.Split(name, "/") {
		if part == "" || part == "." || part == ".." {
			return fmt.Errorf("%w: record name %q has an empty, \".\" or \"..\" part", ErrMalformed, name)
		}
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' || c == '/') {
			return fmt.Errorf("%w: record name %q holds byte 0x%02x", ErrMalformed, name, c)
		}
	}
	return nil
}

// EncodePutRecord encodes a PutRecord request.
func EncodePutRecord(name string, data []byte) ([]byte, error) {
	if err := ValidRecordName(name); err != nil {
		return nil, err
	}
	if len(data) > MaxRecordSize {
		return nil, fmt.Errorf("wire: record %s: %d bytes, limit %d: %w", name, len(data), MaxRecordSize, storage.ErrTooLarge)
	}
	p := make([]byte, 0, 1+len(name)+len(data))
	p = append(p, byte(len(name)))
	p = append(p, name...)
	return append(p, data...), nil
}

// DecodePutRecord splits a PutRecord request into the record's name and
// bytes; data aliases p.
func DecodePutRecord(p []byte) (name string, data []byte, err error) {
	if len(p) < 1 || len(p) < 1+int(p[0]) {
		return "", nil, fmt.Errorf("%w: put-record payload of %d bytes, shorter than its name", ErrMalformed, len(p))
	}
	name = string(p[1 : 1+int(p[0])])
	if err := ValidRecordName(name); err != nil {
		return "", nil, err
	}
	data = p[1+int(p[0]):]
	if len(data) > MaxRecordSize {
		return "", nil, fmt.Errorf("wire: record %s: %d bytes, limit %d: %w", name, len(data), MaxRecordSize, storage.ErrTooLarge)
	}
	return name, data, nil
}

// DecodeRecordName decodes a GetRecord request: the name is the payload.
func DecodeRecordName(p []byte) (string, error) {
	name := string(p)
	return name, ValidRecordName(name)
}

// EncodeListRecords encodes a ListRecords request for at most limit names
// after after ("" starts at the beginning).
func EncodeListRecords(after string, limit int) []byte {
	p := binary.BigEndian.AppendUint32(nil, uint32(min(max(limit, 0), math.MaxUint32)))
	return append(p, after...)
}

// DecodeListRecords decodes a ListRecords request; limit is capped at
// MaxRecordList.
func DecodeListRecords(p []byte) (after string, limit int, err error) {
	if len(p) < 4 || len(p) > 4+MaxRecordName {
		return "", 0, fmt.Errorf("%w: list-records payload of %d bytes, want 4 to %d", ErrMalformed, len(p), 4+MaxRecordName)
	}
	after = string(p[4:])
	if after != "" {
		if err := ValidRecordName(after); err != nil {
			return "", 0, err
		}
	}
	return after, int(min(binary.BigEndian.Uint32(p), MaxRecordList)), nil
}

// EncodeRecordNames encodes a ListRecords reply: each name as its length
// (1 byte) and its bytes.
func EncodeRecordNames(names []string) ([]byte, error) {
	if len(names) > MaxRecordList {
		return nil, fmt.Errorf("wire: %d record names, limit %d", len(names), MaxRecordList)
	}
	var p []byte
	for _, n := range names {
		if err := ValidRecordName(n); err != nil {
			return nil, err
		}
		p = append(p, byte(len(n)))
		p = append(p, n...)
	}
	return p, nil
}

// DecodeRecordNames decodes the reply to a ListRecords request for at
// most limit names after after, checking that each is a valid name, after
// the one before it: a walk driven by them always advances.
func DecodeRecordNames(p []byte, after string, limit int) ([]string, error) {
	var out []string
	prev := after
	for len(p) > 0 {
		n := int(p[0])
		if len(p) < 1+n {
			return nil, fmt.Errorf("%w: list-records reply ends inside a name", ErrMalformed)
		}
		name := string(p[1 : 1+n])
		if err := ValidRecordName(name); err != nil {
			return nil, err
		}
		if name <= prev {
			return nil, fmt.Errorf("%w: list-records reply name %q is not after %q", ErrMalformed, name, prev)
		}
		if len(out) >= min(limit, MaxRecordList) {
			return nil, fmt.Errorf("%w: list-records reply of more than %d names", ErrMalformed, min(limit, MaxRecordList))
		}
		out = append(out, name)
		prev = name
		p = p[1+n:]
	}
	return out, nil
}
