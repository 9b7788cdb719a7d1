package mount

import (
	"context"
	"sync"

	"go.uber.org/zap"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/manifest"
)

// fetcher reads the stored blocks of one open file, each verified
// (client.Reader), and reads ahead of a sequential reader: when the
// reader moves to the next block, the blocks after it are fetched in the
// background, up to the file's window (Options.ReadAhead in blocks,
// within 4 and 64), and only while the mount's readahead budget (four
// windows' worth of bytes over every open file) allows. Blocks behind the
// reader leave the window and are dropped. Blocks are known by key, so a
// block the file holds twice is fetched once.
type fetcher struct {
	f      *FS
	name   string // for log lines
	ctx    context.Context
	cancel context.CancelFunc

	mu   sync.Mutex
	got  map[storage.Hash]*fetch
	last int // index of the block read last; -2 before the first
}

type fetch struct {
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
	return &fetcher{f: f, name: name, ctx: ctx, cancel: cancel, got: map[storage.Hash]*fetch{}, last: -2}
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
	h.mu.Lock()
	moved := i != h.last
	seq := i == h.last+1
	h.last = i
	ft := h.start(b, false)
	if moved {
		// The reader is on a new block: the window moves with it.
		k := h.window(b.Length)
		keep := make(map[storage.Hash]bool, k+1)
		keep[b.Key] = true
		for j := i + 1; j < l.Len() && j <= i+k; j++ {
			if nb := l.At(j); nb != nil {
				keep[nb.Key] = true
				if seq {
					h.start(*nb, true)
				}
			}
		}
		for key, o := range h.got {
			if !keep[key] {
				h.drop(o)
				delete(h.got, key)
			}
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
func (h *fetcher) start(b manifest.Block, ahead bool) *fetch {
	if ft, ok := h.got[b.Key]; ok {
		return ft
	}
	ft := &fetch{done: make(chan struct{})}
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
