package wire

import (
	"encoding/binary"
	"encoding/json"
	"fmt"

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

// EncodeHashes encodes the hashes of a Has or Delete request. It refuses
// more than MaxBatch hashes; callers split larger batches.
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

// DecodeHashes decodes the hashes of a Has or Delete request.
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
