package mount

import (
	"context"
	"sync"

	"go.uber.org/zap"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/manifest"
)

// fetcher reads the stored blocks of one open file, each verified
// (client.Reader), and reads ahead of a sequential reader. It keeps a
// frontier, the furthest block read; a read near it (the kernel sends
// several reads at once, not always in order) counts as sequential and
// starts the fetches of the blocks after it, up to the file's window
// (Options.ReadAhead in blocks, within 4 and 64), while the mount's
// readahead budget (four windows' worth of bytes over every open file)
// allows. A read far from the frontier is a seek: the frontier moves
// there. Blocks more than a window behind the frontier, or beyond its
// window, are dropped. Blocks are known by key, so a block the file holds
// twice is fetched once.
type fetcher struct {
	f      *FS
	name   string // for log lines
	ctx    context.Context
	cancel context.CancelFunc

	mu  sync.Mutex
	got map[storage.Hash]*fetch
	hi  int // the frontier: the furthest block read since the last seek; -1 before the first
}

type fetch struct {
	idx     int // the block's index in the file (its first, if repeated)
	done    chan struct{}
	data    []byte
	err     error
	budget  int64 // bytes of the readahead budget it holds
	dropped bool  // left the window before it was done
}

// blockList is the blocks of a file by index; at returns nil for a range
// that is not a stored block (bytes in the spool).
type blockList interface {
	Len() int
	At(i int) *manifest.Block
}

func newFetcher(f *FS, name string) *fetcher {
	ctx, cancel := context.WithCancel(context.Background())
	return &fetcher{f: f, name: name, ctx: ctx, cancel: cancel, got: map[storage.Hash]*fetch{}, hi: -1}
}

// close stops the fetches and drops the blocks held.
func (h *fetcher) close() {
	h.cancel()
	h.mu.Lock()
	defer h.mu.Unlock()
	for k, ft := range h.got {
		h.drop(ft)
		delete(h.got, k)
	}
}

// window is how many blocks of about n bytes are read ahead.
func (h *fetcher) window(n int64) int {
	if n <= 0 {
		return 4
	}
	return int(min(64, max(4, h.f.opts.ReadAhead/n)))
}

// block returns the bytes of block i of l, which must be a stored block.
// The slice is shared: callers copy out of it.
func (h *fetcher) block(l blockList, i int) ([]byte, error) {
	b := *l.At(i)
	k := h.window(b.Length)
	h.mu.Lock()
	seq := i >= h.hi-k && i <= h.hi+k
	switch {
	case !seq:
		h.hi = i // a seek
	case i > h.hi:
		h.hi = i
	}
	ft := h.start(b, i, false)
	if seq {
		for j := i + 1; j < l.Len() && j <= i+k; j++ {
			if nb := l.At(j); nb != nil && h.start(*nb, j, true) == nil {
				break // out of budget
			}
		}
	}
	for key, o := range h.got {
		if o != ft && (o.idx < h.hi-k || o.idx > h.hi+2*k) {
			h.drop(o)
			delete(h.got, key)
		}
	}
	h.mu.Unlock()
	<-ft.done
	if ft.err != nil {
		h.mu.Lock()
		if h.got[b.Key] == ft {
			delete(h.got, b.Key) // the next read tries again
		}
		h.mu.Unlock()
	}
	return ft.data, ft.err
}

// start returns the fetch of b, starting it if needed; a readahead
// (ahead) is started only within the budget. Called with h.mu held.
func (h *fetcher) start(b manifest.Block, idx int, ahead bool) *fetch {
	if ft, ok := h.got[b.Key]; ok {
		return ft
	}
	ft := &fetch{idx: idx, done: make(chan struct{})}
	if ahead {
		if !h.f.ahead.TryAcquire(b.Length) {
			return nil
		}
		ft.budget = b.Length
	}
	h.got[b.Key] = ft
	go func() {
		ctx, cancel := context.WithTimeout(h.ctx, h.f.opts.Timeout)
		defer cancel()
		dst := make([]byte, b.Length)
		err := h.f.rd.ReadBlockInto(ctx, b, dst)
		if err != nil && h.ctx.Err() == nil {
			h.f.log.Error("block unreadable: no copy could be read and verified", zap.String("file", h.name),
				zap.Int64("offset", b.Offset), zap.String("block", b.Key.String()), zap.Strings("stores", b.Stores), zap.Error(err))
		}
		h.mu.Lock()
		ft.data, ft.err = dst, err
		if err != nil {
			ft.data = nil
		}
		if ft.dropped && ft.budget > 0 {
			h.f.ahead.Release(ft.budget)
			ft.budget = 0
		}
		h.mu.Unlock()
		close(ft.done)
	}()
	return ft
}

// drop lets go of a fetch; called with h.mu held.
func (h *fetcher) drop(ft *fetch) {
	select {
	case <-ft.done:
		if ft.budget > 0 {
			h.f.ahead.Release(ft.budget)
			ft.budget = 0
		}
	default:
		ft.dropped = true
	}
}
