package storage

import (
	"errors"
	"fmt"
)

// Sentinel errors shared by every BlockStore implementation. Implementations
// translate their own failures to these at their boundary (a TCP status code,
// an ENOSPC from the disk), so callers can test with errors.Is whatever store
// they talk to.
var (
	// ErrNotFound: the store does not hold a block with that hash.
	ErrNotFound = errors.New("storage: block not found")
	// ErrQuotaExceeded: the put would take the store beyond the space its
	// owner donated. Distinct from a full disk so a client can place the
	// block on another store.
	ErrQuotaExceeded = errors.New("storage: store quota exceeded")
	// ErrDiskFull: the store's disk has no space left (ENOSPC), below quota.
	ErrDiskFull = errors.New("storage: store disk full")
	// ErrNoSpace: no store will take a block for want of room: every store
	// that could was full or over its quota. Writers return it, wrapped,
	// when a version cannot be written because the cluster is full.
	ErrNoSpace = errors.New("storage: no store has space left")
	// ErrHashMismatch: a block's bytes do not hash to its name.
	ErrHashMismatch = errors.New("storage: block bytes do not match their hash")
	// ErrTooLarge: a block or frame is larger than the limit.
	ErrTooLarge = errors.New("storage: block too large")
	// ErrUnauthorized: the peer does not know the cluster token.
	ErrUnauthorized = errors.New("storage: wrong cluster token")
	// ErrClosed: the store or connection was closed.
	ErrClosed = errors.New("storage: closed")
	// ErrBadRequest: a malformed request reached a store.
	ErrBadRequest = errors.New("storage: bad request")
	// ErrNoLiveStore: no store is alive to write to (none registered, or
	// every one is dead or draining). Writers return it, wrapped.
	ErrNoLiveStore = errors.New("no live store")
)

// BlockError names the store and the block an operation failed on. Every
// error the client returns for a block is, or wraps, a *BlockError.
type BlockError struct {
	Op    string // "put", "get", "has", "delete"
	Store string // store ID or address
	Hash  Hash
	Err   error
}

func (e *BlockError) Error() string {
	// A store connection's own BlockError for the same operation and
	// block says it again, with a shorter name: say it once.
	inner := e.Err
	for {
		be, ok := inner.(*BlockError)
		if !ok || be.Op != e.Op || be.Hash != e.Hash {
			break
		}
		inner = be.Err
	}
	return fmt.Sprintf("%s block %s on store %s: %v", e.Op, e.Hash.Short(), e.Store, inner)
}

func (e *BlockError) Unwrap() error { return e.Err }
