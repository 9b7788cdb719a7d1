package client

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/ckptio/ckptio/storage"
)

// SpaceError is the one error a write gets when the cluster cannot take
// it: before anything is sent (the pre-check, CheckSpace) or when the
// stores fill up during the write. It wraps storage.ErrNoSpace.
type SpaceError struct {
	Need   int64 // bytes the write needs, copies counted; 0 when unknown
	Free   int64 // bytes the stores can still take
	Stores int   // alive stores that are not draining
	// Sent is set when the stores filled up during the write: the stored
	// bytes sent before they did.
	Sent   int64
	During bool
	// Causes are the stores' refusals during the write, one of each
	// kind (storage.ErrQuotaExceeded, storage.ErrDiskFull).
	Causes []error
}

const spaceFix = "fix: free space with 'ckpt retain' and 'ckpt gc', or add stores"

func (e *SpaceError) Error() string {
	if e.During {
		var why []string
		for _, c := range e.Causes {
			switch {
			case errors.Is(c, storage.ErrQuotaExceeded):
				why = append(why, "quotas reached")
			case errors.Is(c, storage.ErrDiskFull):
				why = append(why, "disks full")
			}
		}
		return fmt.Sprintf("cluster out of space: the %d stores filled up during the write (%s) after %s were sent; nothing was committed (%s)",
			e.Stores, strings.Join(why, ", "), storage.FormatSize(e.Sent), spaceFix)
	}
	if e.Need <= 0 {
		return fmt.Sprintf("cluster out of space: free %s on %d stores (%s)", storage.FormatSize(e.Free), e.Stores, spaceFix)
	}
	return fmt.Sprintf("cluster out of space: need %s, free %s on %d stores (%s)",
		storage.FormatSize(e.Need), storage.FormatSize(e.Free), e.Stores, spaceFix)
}

func (e *SpaceError) Unwrap() []error { return append([]error{storage.ErrNoSpace}, e.Causes...) }

// CheckSpace is the pre-check of a write: it fails with a *SpaceError
// when need bytes (logical bytes to send times the copies of each block:
// an upper bound, before compression and deduplication) exceed the free
// space of targets, the alive stores that are not draining. full are the
// alive stores without room; they count in the stores named.
func CheckSpace(targets, full []Target, need int64) error {
	var free int64
	for _, t := range targets {
		free += t.Free
	}
	if need <= free {
		return nil
	}
	return &SpaceError{Need: need, Free: free, Stores: len(targets) + len(full)}
}

// Restat re-reads the usage of each target from the store itself (Stat),
// not from the manager, whose figures are a heartbeat old, and returns the
// targets with their Free updated, those without room apart. A store that
// does not answer keeps the manager's figure.
func (p *Pool) Restat(ctx context.Context, ts []Target) (room, full []Target) {
	fresh := make([]Target, len(ts))
	var wg sync.WaitGroup
	for i, t := range ts {
		fresh[i] = t
		wg.Add(1)
		go func() {
			defer wg.Done()
			if st, err := t.Store.Stat(ctx); err == nil {
				fresh[i].Free = st.Free()
			}
		}()
	}
	wg.Wait()
	for _, t := range fresh {
		if t.Free > 0 {
			p.markFull(t.ID, false)
			room = append(room, t)
		} else {
			full = append(full, t)
		}
	}
	return room, full
}

// MarkFull records that store id refused a block for want of room: the
// next Targets re-reads its usage from the store instead of trusting the
// manager's figure until the next heartbeat.
func (p *Pool) MarkFull(id string) { p.markFull(id, true) }

func (p *Pool) markFull(id string, on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on {
		p.mu.full[id] = true
	} else {
		delete(p.mu.full, id)
	}
}

// Dead reports whether the manager marked store id dead at the last look
// at its store list, and the store's address; an unknown store is not
// dead. It is ReaderOptions.Dead.
func (p *Pool) Dead(id string) (addr string, dead bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s, ok := p.mu.stores[id]
	return s.Addr, ok && !s.Alive
}
