package storage

import (
	"context"
	"time"
)

// MaxBlockSize is the largest block any store accepts. Chunkers cut blocks no
// larger than this; the wire layer sizes its frame limit from it.
const MaxBlockSize = 16 << 20

// BlockStore is a content-addressed set of blocks within a quota: what a
// scavenged desktop donates.
//
// Contract, for every implementation (storetest.Run checks it):
//   - Put stores data under h. It fails with ErrHashMismatch unless
//     Sum(data) == h, and with ErrQuotaExceeded when the block would take
//     Used beyond Quota. Putting a block the store already holds succeeds
//     without using more space, touches the block (below) and reports
//     created == false. When Put returns nil the block is durable: it
//     survives a crash of the store process or of its machine.
//   - Get returns the block's bytes or ErrNotFound. A block whose stored
//     bytes no longer hash to h is reported with ErrHashMismatch, never
//     returned. Get does not touch the block.
//   - Has answers for a batch: one bool per hash, in order. It touches
//     every block it reports held.
//   - Delete removes the blocks among hs that it holds and whose last touch
//     is before notSince, and ignores the others; a zero notSince removes
//     them whatever their touch. It returns the bytes freed, which leave
//     Stat.Used at once. Deleting is idempotent.
//   - List returns up to max of the hashes held that are greater than after
//     (bytewise), in ascending order; the zero Hash as after starts at the
//     beginning. Only an empty result means there are no more: a store may
//     return fewer than max before the end (over the wire, at most
//     wire.MaxBatch). Walking with after set to the last hash of the
//     previous page visits every block held throughout the walk exactly
//     once; a block put or deleted during the walk may or may not be seen.
//     max <= 0 returns nothing. List does not touch.
//   - Stat reports usage. Used counts the bytes of blocks held.
//   - All methods are safe for concurrent use by many goroutines; puts of
//     the same hash from two goroutines both succeed and store it once.
//   - data passed to Put is not retained after Put returns; the slice Get
//     returns belongs to the caller.
//
// Touches protect blocks from garbage collection. A store remembers, per
// block, when it last touched it: when Put stored it or was asked to store
// it again, or when Has reported it held. A writer relies on a block from
// the moment Has or Put tells it the block is there. The collector picks
// T0, the start of the oldest checkpoint still being written, and removes a
// block it found unreferenced with Delete(ctx, hs, T0): a block any writer
// touched at or after T0 stays. A store orders each touch and each Delete's
// check-and-remove of the same block one after the other, so a Has or Put
// that reports a block held either comes before the Delete, which then
// sees the touch, or after it, and then the block is still there or is
// reported missing (Has false, Put stores it again with created == true).
//
// Touch times are kept in memory only: a store counts every block it holds
// as touched when it opens, which protects them all until a later
// collection. They are read from the store's own clock; a collector on
// another machine allows for skew between the clocks by choosing notSince
// that much earlier.
type BlockStore interface {
	Put(ctx context.Context, h Hash, data []byte) (created bool, err error)
	Get(ctx context.Context, h Hash) ([]byte, error)
	Has(ctx context.Context, hs []Hash) ([]bool, error)
	Delete(ctx context.Context, hs []Hash, notSince time.Time) (freed int64, err error)
	List(ctx context.Context, after Hash, max int) ([]Hash, error)
	Stat(ctx context.Context) (Stat, error)
	Close() error
}

// GetIntoer is implemented by BlockStores that can read a block into the
// caller's buffer (storage/remote, straight from the connection). GetInto
// returns dst[:n] when the block fits in cap(dst), a new slice otherwise;
// dst is not touched after GetInto returns.
type GetIntoer interface {
	GetInto(ctx context.Context, h Hash, dst []byte) ([]byte, error)
}

// Usage is a store's space: what it reports in Stat, what it heartbeats to
// the manager (catalog.Heartbeat) and what the catalog lists
// (catalog.StoreInfo), which embed it.
type Usage struct {
	Used   int64 `json:"used"`   // bytes of blocks held
	Quota  int64 `json:"quota"`  // bytes donated; 0 means unlimited
	Blocks int64 `json:"blocks"` // number of blocks held
	// DiskFree is the free space of the filesystem under the store, which
	// may be less than Quota-Used on a desktop whose owner filled it.
	DiskFree int64 `json:"disk_free"`
}

// Free returns the bytes the store can still accept: the smaller of the
// quota left and the disk's free space.
func (u Usage) Free() int64 {
	free := u.DiskFree
	if u.Quota > 0 {
		if q := u.Quota - u.Used; q < free || free <= 0 {
			free = q
		}
	}
	if free < 0 {
		free = 0
	}
	return free
}

// Stat is a store's answer to Stat: its identity, usage and clock.
type Stat struct {
	ID string `json:"id"` // stable store identity, kept in its directory
	Usage
	// Now is the store's clock when it answered: touch times are on this
	// clock, so a garbage collector maps its horizon onto it. Zero when the
	// store does not say.
	Now time.Time `json:"now,omitempty"`
}
