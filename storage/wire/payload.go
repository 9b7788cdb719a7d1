package wire

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/ckptio/ckptio/storage"
)

// Payload encoders and decoders, one pair per op and direction. Decoders
// check the layout and return errors wrapping ErrMalformed; the slices they
// return alias the payload.

// DecodePut splits a PutBlock request into the block's hash and bytes.
func DecodePut(p []byte) (storage.Hash, []byte, error) {
	var h storage.Hash
	if len(p) < storage.HashSize {
		return h, nil, fmt.Errorf("%w: put payload of %d bytes, shorter than a hash", ErrMalformed, len(p))
	}
	copy(h[:], p)
	data := p[storage.HashSize:]
	if len(data) > storage.MaxBlockSize {
		return h, nil, fmt.Errorf("wire: put %s: %d bytes, limit %d: %w",
			h.Short(), len(data), storage.MaxBlockSize, storage.ErrTooLarge)
	}
	return h, data, nil
}

// EncodeCreated encodes a PutBlock reply.
func EncodeCreated(created bool) []byte {
	if created {
		return []byte{1}
	}
	return []byte{0}
}

// DecodeCreated decodes a PutBlock reply.
func DecodeCreated(p []byte) (bool, error) {
	if len(p) != 1 || p[0] > 1 {
		return false, fmt.Errorf("%w: put reply of %d bytes, want 1 byte 0 or 1", ErrMalformed, len(p))
	}
	return p[0] == 1, nil
}

// DecodeHash decodes a GetBlock request.
func DecodeHash(p []byte) (storage.Hash, error) {
	var h storage.Hash
	if len(p) != storage.HashSize {
		return h, fmt.Errorf("%w: get payload of %d bytes, want a %d-byte hash", ErrMalformed, len(p), storage.HashSize)
	}
	copy(h[:], p)
	return h, nil
}

// EncodeHashes encodes the hashes of a Has request, or a List reply. It
// refuses more than MaxBatch hashes; callers split larger batches.
func EncodeHashes(hs []storage.Hash) ([]byte, error) {
	if len(hs) > MaxBatch {
		return nil, fmt.Errorf("%w: %d hashes in one request, limit %d", ErrMalformed, len(hs), MaxBatch)
	}
	p := make([]byte, 0, len(hs)*storage.HashSize)
	for i := range hs {
		p = append(p, hs[i][:]...)
	}
	return p, nil
}

// DecodeHashes decodes the hashes of a Has request.
func DecodeHashes(p []byte) ([]storage.Hash, error) {
	if len(p)%storage.HashSize != 0 {
		return nil, fmt.Errorf("%w: hash list of %d bytes, not a multiple of %d", ErrMalformed, len(p), storage.HashSize)
	}
	n := len(p) / storage.HashSize
	if n > MaxBatch {
		return nil, fmt.Errorf("%w: %d hashes in one request, limit %d", ErrMalformed, n, MaxBatch)
	}
	hs := make([]storage.Hash, n)
	for i := range hs {
		copy(hs[i][:], p[i*storage.HashSize:])
	}
	return hs, nil
}

// EncodeHas encodes a Has reply.
func EncodeHas(held []bool) []byte {
	p := make([]byte, len(held))
	for i, ok := range held {
		if ok {
			p[i] = 1
		}
	}
	return p
}

// DecodeHas decodes a Has reply to a request for n hashes.
func DecodeHas(p []byte, n int) ([]bool, error) {
	if len(p) != n {
		return nil, fmt.Errorf("%w: has reply of %d bytes for %d hashes", ErrMalformed, len(p), n)
	}
	held := make([]bool, n)
	for i, b := range p {
		if b > 1 {
			return nil, fmt.Errorf("%w: has reply byte %d is %d, want 0 or 1", ErrMalformed, i, b)
		}
		held[i] = b == 1
	}
	return held, nil
}

// notSinceSize is the length of the notSince field of a Delete request.
const notSinceSize = 8

// EncodeDelete encodes a Delete request: notSince as Unix nanoseconds (0
// for the zero time, which deletes unconditionally) and the hashes. A
// nonzero time before 1970 is sent as 1 ns after, which deletes as little.
// It refuses more than MaxBatch hashes.
func EncodeDelete(notSince time.Time, hs []storage.Hash) ([]byte, error) {
	if len(hs) > MaxBatch {
		return nil, fmt.Errorf("%w: %d hashes in one request, limit %d", ErrMalformed, len(hs), MaxBatch)
	}
	var ns uint64
	switch {
	case notSince.IsZero():
	case notSince.After(time.Unix(0, math.MaxInt64)):
		ns = math.MaxInt64
	default:
		ns = uint64(max(notSince.UnixNano(), 1))
	}
	p := make([]byte, 0, notSinceSize+len(hs)*storage.HashSize)
	p = binary.BigEndian.AppendUint64(p, ns)
	for i := range hs {
		p = append(p, hs[i][:]...)
	}
	return p, nil
}

// DecodeDelete decodes a Delete request.
func DecodeDelete(p []byte) (notSince time.Time, hs []storage.Hash, err error) {
	if len(p) < notSinceSize {
		return time.Time{}, nil, fmt.Errorf("%w: delete payload of %d bytes, shorter than its %d-byte time",
			ErrMalformed, len(p), notSinceSize)
	}
	ns := binary.BigEndian.Uint64(p)
	if ns > math.MaxInt64 {
		return time.Time{}, nil, fmt.Errorf("%w: delete not since %d ns, beyond the largest time", ErrMalformed, ns)
	}
	if hs, err = DecodeHashes(p[notSinceSize:]); err != nil {
		return time.Time{}, nil, err
	}
	if ns != 0 {
		notSince = time.Unix(0, int64(ns))
	}
	return notSince, hs, nil
}

// listSize is the length of a List request: cursor and max.
const listSize = storage.HashSize + 4

// EncodeList encodes a List request for at most limit hashes after after.
// A limit above MaxBatch is sent as is; the server answers at most MaxBatch
// hashes.
func EncodeList(after storage.Hash, limit int) []byte {
	p := make([]byte, 0, listSize)
	p = append(p, after[:]...)
	return binary.BigEndian.AppendUint32(p, uint32(min(max(limit, 0), math.MaxUint32)))
}

// DecodeList decodes a List request. It caps limit at MaxBatch, the most
// hashes a reply carries.
func DecodeList(p []byte) (after storage.Hash, limit int, err error) {
	if len(p) != listSize {
		return after, 0, fmt.Errorf("%w: list payload of %d bytes, want %d", ErrMalformed, len(p), listSize)
	}
	copy(after[:], p)
	return after, int(min(binary.BigEndian.Uint32(p[storage.HashSize:]), MaxBatch)), nil
}

// DecodeListReply decodes the reply to a List request for at most limit
// hashes after after, checking that they are in ascending order after the
// cursor: a walk driven by them always advances.
func DecodeListReply(p []byte, after storage.Hash, limit int) ([]storage.Hash, error) {
	if len(p)%storage.HashSize != 0 {
		return nil, fmt.Errorf("%w: list reply of %d bytes, not a multiple of %d", ErrMalformed, len(p), storage.HashSize)
	}
	n := len(p) / storage.HashSize
	if n > limit || n > MaxBatch {
		return nil, fmt.Errorf("%w: list reply of %d hashes, asked for at most %d", ErrMalformed, n, min(limit, MaxBatch))
	}
	hs := make([]storage.Hash, n)
	prev := after
	for i := range hs {
		copy(hs[i][:], p[i*storage.HashSize:])
		if bytes.Compare(hs[i][:], prev[:]) <= 0 {
			return nil, fmt.Errorf("%w: list reply hash %d is not after the one before it", ErrMalformed, i)
		}
		prev = hs[i]
	}
	return hs, nil
}

// EncodeFreed encodes a Delete reply.
func EncodeFreed(freed int64) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(max(freed, 0)))
}

// DecodeFreed decodes a Delete reply.
func DecodeFreed(p []byte) (int64, error) {
	if len(p) != 8 {
		return 0, fmt.Errorf("%w: delete reply of %d bytes, want 8", ErrMalformed, len(p))
	}
	v := binary.BigEndian.Uint64(p)
	if v > 1<<63-1 {
		return 0, fmt.Errorf("%w: delete reply frees %d bytes", ErrMalformed, v)
	}
	return int64(v), nil
}

// EncodeStat encodes a Stat reply.
func EncodeStat(st storage.Stat) ([]byte, error) {
	return json.Marshal(st)
}

// DecodeStat decodes a Stat reply.
func DecodeStat(p []byte) (storage.Stat, error) {
	var st storage.Stat
	if err := json.Unmarshal(p, &st); err != nil {
		return storage.Stat{}, fmt.Errorf("%w: stat reply: %v", ErrMalformed, err)
	}
	return st, nil
}
