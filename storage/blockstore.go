package storage

import "context"

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
//     without using more space and reports created == false. When Put
//     returns nil the block is durable: it survives a crash of the store
//     process or of its machine.
//   - Get returns the block's bytes or ErrNotFound. A block whose stored
//     bytes no longer hash to h is reported with ErrHashMismatch, never
//     returned.
//   - Has answers for a batch: one bool per hash, in order.
//   - Delete removes the blocks it holds and ignores the others; it returns
//     the bytes freed. Deleting is idempotent.
//   - Stat reports usage. Used counts the bytes of blocks held.
//   - All methods are safe for concurrent use by many goroutines; puts of
//     the same hash from two goroutines both succeed and store it once.
//   - data passed to Put is not retained after Put returns; the slice Get
//     returns belongs to the caller.
type BlockStore interface {
	Put(ctx context.Context, h Hash, data []byte) (created bool, err error)
	Get(ctx context.Context, h Hash) ([]byte, error)
	Has(ctx context.Context, hs []Hash) ([]bool, error)
	Delete(ctx context.Context, hs []Hash) (freed int64, err error)
	Stat(ctx context.Context) (Stat, error)
	Close() error
}

// Stat is a store's usage, as reported to the manager in heartbeats.
type Stat struct {
	ID     string `json:"id"`     // stable store identity, kept in its directory
	Used   int64  `json:"used"`   // bytes of blocks held
	Quota  int64  `json:"quota"`  // bytes donated; 0 means unlimited
	Blocks int64  `json:"blocks"` // number of blocks held
	// DiskFree is the free space of the filesystem under the store, which
	// may be less than Quota-Used on a desktop whose owner filled it.
	DiskFree int64 `json:"disk_free"`
}

// Free returns the bytes the store can still accept: the smaller of the
// quota left and the disk's free space.
func (s Stat) Free() int64 {
	free := s.DiskFree
	if s.Quota > 0 {
		if q := s.Quota - s.Used; q < free || free <= 0 {
			free = q
		}
	}
	if free < 0 {
		free = 0
	}
	return free
}
