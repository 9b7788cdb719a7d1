package wire

import (
	"encoding/binary"
	"fmt"

	"github.com/ckptio/ckptio/storage"
)

// PutBlocks (doc.go, "Batches"): many blocks in one frame, so that a
// store reads them with one request, verifies and stores them in one
// group commit, and answers them in one reply.

// MaxPutBatch is the most blocks one PutBlocks request carries.
const MaxPutBatch = 1024

// putItemHead is the bytes each block takes in a PutBlocks request's
// head: its hash and its length (u32).
const putItemHead = storage.HashSize + 4

// PutItem is one block of a PutBlocks request.
type PutItem struct {
	Hash storage.Hash
	Data []byte
}

// EncodePutBlocksHead encodes the head of a PutBlocks request: the count
// and each block's hash and length. The blocks' bytes follow it in the
// frame, in order, as parts of their own (WriteFrame), so they are not
// copied.
func EncodePutBlocksHead(items []PutItem) ([]byte, error) {
	if len(items) == 0 || len(items) > MaxPutBatch {
		return nil, fmt.Errorf("%w: put batch of %d blocks, want 1 to %d", ErrMalformed, len(items), MaxPutBatch)
	}
	p := make([]byte, 4, 4+len(items)*putItemHead)
	binary.BigEndian.PutUint32(p, uint32(len(items)))
	for _, it := range items {
		if len(it.Data) > storage.MaxBlockSize {
			return nil, fmt.Errorf("wire: put %s: %d bytes, limit %d: %w",
				it.Hash.Short(), len(it.Data), storage.MaxBlockSize, storage.ErrTooLarge)
		}
		p = append(p, it.Hash[:]...)
		p = binary.BigEndian.AppendUint32(p, uint32(len(it.Data)))
	}
	return p, nil
}

// PutBlocksSize is the payload bytes of a PutBlocks request for n blocks
// of data bytes in all.
func PutBlocksSize(n, data int) int { return 4 + n*putItemHead + data }

// DecodePutBlocks splits a PutBlocks request into its blocks, which alias
// p. The lengths must add up to exactly the bytes after the head.
func DecodePutBlocks(p []byte) ([]PutItem, error) {
	if len(p) < 4 {
		return nil, fmt.Errorf("%w: put batch of %d bytes, shorter than its count", ErrMalformed, len(p))
	}
	n := int(binary.BigEndian.Uint32(p))
	if n == 0 || n > MaxPutBatch {
		return nil, fmt.Errorf("%w: put batch of %d blocks, want 1 to %d", ErrMalformed, n, MaxPutBatch)
	}
	head := 4 + n*putItemHead
	if len(p) < head {
		return nil, fmt.Errorf("%w: put batch of %d blocks in %d bytes, shorter than its head (%d)", ErrMalformed, n, len(p), head)
	}
	items := make([]PutItem, n)
	data := p[head:]
	for i := range items {
		e := p[4+i*putItemHead:]
		copy(items[i].Hash[:], e)
		l := uint64(binary.BigEndian.Uint32(e[storage.HashSize:]))
		if l > storage.MaxBlockSize {
			return nil, fmt.Errorf("wire: put %s: %d bytes, limit %d: %w",
				items[i].Hash.Short(), l, storage.MaxBlockSize, storage.ErrTooLarge)
		}
		if l > uint64(len(data)) {
			return nil, fmt.Errorf("%w: put batch: block %d of %d announces %d bytes, %d left", ErrMalformed, i+1, n, l, len(data))
		}
		items[i].Data = data[:l:l]
		data = data[l:]
	}
	if len(data) != 0 {
		return nil, fmt.Errorf("%w: put batch: %d bytes after its %d blocks", ErrMalformed, len(data), n)
	}
	return items, nil
}

// PutOutcome is what a store answers for one block of a PutBlocks
// request: stored (Status OK; Created when it did not hold it before) or
// refused with a status and a message, as PutBlock would be.
type PutOutcome struct {
	Status  Status
	Created bool
	Message string
}

// Err returns the outcome's error: nil when stored, else what ErrorFor
// makes of the status and message.
func (o PutOutcome) Err() error { return ErrorFor(o.Status, []byte(o.Message)) }

// OutcomeOf is the PutOutcome of a put that returned created and err.
func OutcomeOf(created bool, err error) PutOutcome {
	if err != nil {
		return PutOutcome{Status: StatusFor(err), Message: Message(err.Error())}
	}
	return PutOutcome{Created: created}
}

// EncodePutBlocksReply encodes a PutBlocks reply: per block, in request
// order, status (1) | created (1) | message length (u16) | message.
func EncodePutBlocksReply(outs []PutOutcome) []byte {
	n := 0
	for _, o := range outs {
		n += 4 + len(o.Message)
	}
	p := make([]byte, 0, n)
	for _, o := range outs {
		created := byte(0)
		if o.Created && o.Status == StatusOK {
			created = 1
		}
		msg := ""
		if o.Status != StatusOK {
			msg = Message(o.Message)
		}
		p = append(p, byte(o.Status), created)
		p = binary.BigEndian.AppendUint16(p, uint16(len(msg)))
		p = append(p, msg...)
	}
	return p
}

// DecodePutBlocksReply decodes the reply to a PutBlocks request of n
// blocks.
func DecodePutBlocksReply(p []byte, n int) ([]PutOutcome, error) {
	outs := make([]PutOutcome, n)
	for i := range outs {
		if len(p) < 4 {
			return nil, fmt.Errorf("%w: put batch reply ends at block %d of %d", ErrMalformed, i+1, n)
		}
		st, created, l := Status(p[0]), p[1], int(binary.BigEndian.Uint16(p[2:]))
		p = p[4:]
		switch {
		case created > 1 || (created == 1 && st != StatusOK):
			return nil, fmt.Errorf("%w: put batch reply: block %d: created flag %d with status %d", ErrMalformed, i+1, created, st)
		case l > MaxMessage || l > len(p):
			return nil, fmt.Errorf("%w: put batch reply: block %d: message of %d bytes, %d left (limit %d)", ErrMalformed, i+1, l, len(p), MaxMessage)
		case st == StatusOK && l != 0:
			return nil, fmt.Errorf("%w: put batch reply: block %d: stored, with a message", ErrMalformed, i+1)
		case st != StatusOK && l == 0:
			return nil, fmt.Errorf("%w: put batch reply: block %d: status %d without a message", ErrMalformed, i+1, st)
		}
		outs[i] = PutOutcome{Status: st, Created: created == 1, Message: Message(string(p[:l]))}
		p = p[l:]
	}
	if len(p) != 0 {
		return nil, fmt.Errorf("%w: put batch reply: %d bytes after its %d blocks", ErrMalformed, len(p), n)
	}
	return outs, nil
}

// GetBlocks (doc.go, "Batches"): many blocks asked in one frame and
// answered in one reply.

// MaxGetBatch is the most blocks one GetBlocks request asks for.
const MaxGetBatch = 1024

// EncodeGetBlocks encodes a GetBlocks request: the hashes.
func EncodeGetBlocks(hs []storage.Hash) ([]byte, error) {
	if len(hs) == 0 || len(hs) > MaxGetBatch {
		return nil, fmt.Errorf("%w: get batch of %d blocks, want 1 to %d", ErrMalformed, len(hs), MaxGetBatch)
	}
	return EncodeHashes(hs)
}

// DecodeGetBlocks decodes a GetBlocks request.
func DecodeGetBlocks(p []byte) ([]storage.Hash, error) {
	if len(p)%storage.HashSize != 0 {
		return nil, fmt.Errorf("%w: get batch of %d bytes, not a multiple of %d", ErrMalformed, len(p), storage.HashSize)
	}
	if n := len(p) / storage.HashSize; n == 0 || n > MaxGetBatch {
		return nil, fmt.Errorf("%w: get batch of %d blocks, want 1 to %d", ErrMalformed, n, MaxGetBatch)
	}
	return DecodeHashes(p)
}

// GetOutcome is what a store answers for one block of a GetBlocks
// request: its bytes (Status OK) or a status and a message, as GetBlock
// would be answered.
type GetOutcome struct {
	Status  Status
	Data    []byte
	Message string
}

// Err returns the outcome's error: nil when the bytes came.
func (o GetOutcome) Err() error { return ErrorFor(o.Status, []byte(o.Message)) }

// getItemHead is the bytes each block takes in a GetBlocks reply's head:
// status (1) and the length of what follows for it (u32).
const getItemHead = 5

// GetBlocksReplySize is the payload of a GetBlocks reply for n blocks
// whose bodies (bytes or messages) are body bytes in all.
func GetBlocksReplySize(n, body int) int { return n*getItemHead + body }

// EncodeGetBlocksReplyHead encodes the head of a GetBlocks reply; the
// bodies follow it in order as parts of their own: a block's bytes, or
// a refused block's message (GetBlocksBody).
func EncodeGetBlocksReplyHead(outs []GetOutcome) []byte {
	p := make([]byte, 0, len(outs)*getItemHead)
	for _, o := range outs {
		p = append(p, byte(o.Status))
		p = binary.BigEndian.AppendUint32(p, uint32(len(GetBlocksBody(o))))
	}
	return p
}

// GetBlocksBody is the part that follows the head for o.
func GetBlocksBody(o GetOutcome) []byte {
	if o.Status == StatusOK {
		return o.Data
	}
	msg := Message(o.Message)
	if msg == "" {
		msg = o.Status.String()
	}
	return []byte(msg)
}

// DecodeGetBlocksReply decodes the reply to a GetBlocks request of n
// blocks. The blocks' bytes alias p.
func DecodeGetBlocksReply(p []byte, n int) ([]GetOutcome, error) {
	head := n * getItemHead
	if n < 1 || len(p) < head {
		return nil, fmt.Errorf("%w: get batch reply of %d bytes, shorter than the head of its %d blocks", ErrMalformed, len(p), n)
	}
	outs := make([]GetOutcome, n)
	body := p[head:]
	for i := range outs {
		e := p[i*getItemHead:]
		st, l := Status(e[0]), uint64(binary.BigEndian.Uint32(e[1:]))
		switch {
		case l > uint64(len(body)):
			return nil, fmt.Errorf("%w: get batch reply: block %d of %d announces %d bytes, %d left", ErrMalformed, i+1, n, l, len(body))
		case st != StatusOK && (l == 0 || l > MaxMessage):
			return nil, fmt.Errorf("%w: get batch reply: block %d: status %d with a message of %d bytes (1 to %d)", ErrMalformed, i+1, st, l, MaxMessage)
		case st == StatusOK && l > storage.MaxBlockSize:
			return nil, fmt.Errorf("%w: get batch reply: block %d of %d bytes, limit %d", ErrMalformed, i+1, l, storage.MaxBlockSize)
		}
		if st == StatusOK {
			outs[i] = GetOutcome{Data: body[:l:l]}
		} else {
			outs[i] = GetOutcome{Status: st, Message: Message(string(body[:l]))}
		}
		body = body[l:]
	}
	if len(body) != 0 {
		return nil, fmt.Errorf("%w: get batch reply: %d bytes after its %d blocks", ErrMalformed, len(body), n)
	}
	return outs, nil
}
