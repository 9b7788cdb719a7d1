// Package memstore is an in-memory storage.BlockStore: the fake that unit
// tests use in place of a desktop store, and the reference the conformance
// suite is written against. It can inject faults (Faults) so error paths are
// testable without a real disk filling up or a machine dying.
package memstore

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ckptio/ckptio/storage"
)

// Faults makes a Store fail on purpose. A nil func never fails.
type Faults struct {
	// Put, when it returns an error, fails the put with it before storing.
	Put func(h storage.Hash) error
	// Get, when it returns an error, fails the get with it.
	Get func(h storage.Hash) error
	// Delete, when it returns an error, fails the delete with it before
	// removing anything.
	Delete func(hs []storage.Hash) error
	// List, when it returns an error, fails the list with it.
	List func(after storage.Hash) error
}

// Store is an in-memory BlockStore. The zero value is not usable; call New.
type Store struct {
	id    string
	quota int64
	now   func() time.Time // the clock of touch times and Stat.Now

	mu struct {
		sync.Mutex
		blocks map[storage.Hash]*block
		used   int64
		faults Faults
		closed bool
	}
}

// block is a held block and when it was last touched.
type block struct {
	data    []byte
	touched time.Time
}

// New returns an empty store with the given identity and quota (0 = none),
// whose clock is time.Now.
func New(id string, quota int64) *Store {
	return NewWithClock(id, quota, nil)
}

// NewWithClock is New with the clock touch times and Stat.Now are read
// from; nil means time.Now. Tests give a fake clock (storetest.Clock) so
// that touches differ without waiting for the real one to move.
func NewWithClock(id string, quota int64, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	s := &Store{id: id, quota: quota, now: now}
	s.mu.blocks = make(map[storage.Hash]*block)
	return s
}

// SetFaults replaces the store's fault hooks.
func (s *Store) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.faults = f
}

// Corrupt flips a byte of a held block, to test that corruption is detected.
// It reports whether the block was held.
func (s *Store) Corrupt(h storage.Hash) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.mu.blocks[h]
	if !ok || len(b.data) == 0 {
		return false
	}
	b.data[0] ^= 0xff
	return true
}

func (s *Store) checkLocked() error {
	if s.mu.closed {
		return storage.ErrClosed
	}
	return nil
}

// Put implements storage.BlockStore.
func (s *Store) Put(ctx context.Context, h storage.Hash, data []byte) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if len(data) > storage.MaxBlockSize {
		return false, fmt.Errorf("memstore: %d bytes: %w", len(data), storage.ErrTooLarge)
	}
	if storage.Sum(data) != h {
		return false, fmt.Errorf("memstore: put %s: %w", h.Short(), storage.ErrHashMismatch)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkLocked(); err != nil {
		return false, err
	}
	if f := s.mu.faults.Put; f != nil {
		if err := f(h); err != nil {
			return false, err
		}
	}
	if b, ok := s.mu.blocks[h]; ok {
		b.touched = s.now()
		return false, nil
	}
	if s.quota > 0 && s.mu.used+int64(len(data)) > s.quota {
		return false, fmt.Errorf("memstore: put %s (%d bytes, %d of %d used): %w",
			h.Short(), len(data), s.mu.used, s.quota, storage.ErrQuotaExceeded)
	}
	s.mu.blocks[h] = &block{data: append([]byte(nil), data...), touched: s.now()}
	s.mu.used += int64(len(data))
	return true, nil
}

// Get implements storage.BlockStore.
func (s *Store) Get(ctx context.Context, h storage.Hash) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkLocked(); err != nil {
		return nil, err
	}
	if f := s.mu.faults.Get; f != nil {
		if err := f(h); err != nil {
			return nil, err
		}
	}
	b, ok := s.mu.blocks[h]
	if !ok {
		return nil, fmt.Errorf("memstore: get %s: %w", h.Short(), storage.ErrNotFound)
	}
	if storage.Sum(b.data) != h {
		return nil, fmt.Errorf("memstore: get %s: %w", h.Short(), storage.ErrHashMismatch)
	}
	return append([]byte(nil), b.data...), nil
}

// Has implements storage.BlockStore.
func (s *Store) Has(ctx context.Context, hs []storage.Hash) ([]bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkLocked(); err != nil {
		return nil, err
	}
	now := s.now()
	out := make([]bool, len(hs))
	for i, h := range hs {
		if b, ok := s.mu.blocks[h]; ok {
			b.touched = now
			out[i] = true
		}
	}
	return out, nil
}

// Delete implements storage.BlockStore.
func (s *Store) Delete(ctx context.Context, hs []storage.Hash, notSince time.Time) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkLocked(); err != nil {
		return 0, err
	}
	if f := s.mu.faults.Delete; f != nil {
		if err := f(hs); err != nil {
			return 0, err
		}
	}
	var freed int64
	for _, h := range hs {
		b, ok := s.mu.blocks[h]
		if !ok || (!notSince.IsZero() && !b.touched.Before(notSince)) {
			continue
		}
		freed += int64(len(b.data))
		delete(s.mu.blocks, h)
	}
	s.mu.used -= freed
	return freed, nil
}

// List implements storage.BlockStore. It scans every block and sorts those
// after the cursor: O(n + k log k) for n blocks held, k of them after the
// cursor, which is fine for a fake and wasteful for a large store.
func (s *Store) List(ctx context.Context, after storage.Hash, max int) ([]storage.Hash, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkLocked(); err != nil {
		return nil, err
	}
	if f := s.mu.faults.List; f != nil {
		if err := f(after); err != nil {
			return nil, err
		}
	}
	if max <= 0 {
		return nil, nil
	}
	var out []storage.Hash
	for h := range s.mu.blocks {
		if bytes.Compare(h[:], after[:]) > 0 {
			out = append(out, h)
		}
	}
	slices.SortFunc(out, func(a, b storage.Hash) int { return bytes.Compare(a[:], b[:]) })
	return out[:min(max, len(out))], nil
}

// Stat implements storage.BlockStore.
func (s *Store) Stat(ctx context.Context) (storage.Stat, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkLocked(); err != nil {
		return storage.Stat{}, err
	}
	free := int64(1 << 50)
	if s.quota > 0 {
		free = s.quota - s.mu.used
	}
	return storage.Stat{ID: s.id, Usage: storage.Usage{Used: s.mu.used, Quota: s.quota,
		Blocks: int64(len(s.mu.blocks)), DiskFree: free}, Now: s.now()}, nil
}

// Close implements storage.BlockStore.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.closed = true
	return nil
}
