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
