package mount

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/ckptio/ckptio/storage/manifest"
	"github.com/ckptio/ckptio/storage/version"
)

// segObject is the object name a stream writer's blocks carry; the
// writer's part is never committed (the commit references its blocks
// under the file's path), so the name only has to be valid.
const segObject = "stream"

// content is the bytes of a file of the tree, in three ranges:
//
//	[0, segStart)          extents: stored blocks (clean), or bytes in
//	                       the spool file (dirty)
//	[segStart, streamEnd)  blocks handed to the stream writer, on their
//	                       way to the stores
//	[streamEnd, size)      the tail: less than a block, in memory
//
// A write at or past streamEnd goes to the tail, and every block the tail
// fills is handed to the stream writer: sequential writes stream. A write
// before streamEnd flushes the stream writer (its blocks become clean
// extents) and goes to the spool, after the stored blocks it only partly
// covers are fetched into the spool too. A commit sends the dirty
// extents and the tail as new blocks and references the clean ones; then
// everything is clean and the spool file is closed.
type content struct {
	f    *FS
	mu   sync.Mutex
	thaw *sync.Cond // frozen became false

	// frozen: a commit is reading the content; writes wait.
	frozen bool

	ext      []extent
	seg      *segment
	segStart int64
	// streamEnd is where the tail starts.
	streamEnd int64
	tail      *[]byte // a buffer of one block; its first tailLen bytes
	tailLen   int
	// tailRec is the tail as the last commit stored it; nil when the
	// tail changed since (or is empty).
	tailRec *manifest.Block
	spool   *os.File
	// txn protects the blocks streamed since the last commit from
	// garbage collection until a commit confirms them (version.Known).
	txn *version.Txn
	// broken is the error that lost bytes handed to the stream writer;
	// the content cannot be committed until truncated to 0.
	broken error
	// changed: written or truncated since the last commit.
	changed bool
	// newBytes and sentBytes are the stream writers' figures since the
	// last commit, which counts them in the version's.
	newBytes, sentBytes int64
}

// extent is a range of a file: a stored block, or bytes in the spool.
type extent struct {
	off, n int64
	b      *manifest.Block // nil: dirty, in the spool at off
}

// segment is a stream writer and where its blocks start in the file.
type segment struct {
	w      *version.Writer
	start  int64
	ctx    context.Context
	cancel context.CancelFunc
}

// newContent returns the content of a file whose blocks are stored
// (sorted by offset); nil for a new, empty file.
func newContent(f *FS, blocks []manifest.Block) *content {
	c := &content{f: f}
	c.thaw = sync.NewCond(&c.mu)
	for i := range blocks {
		b := blocks[i]
		if b.Length == 0 {
			continue
		}
		c.ext = append(c.ext, extent{off: b.Offset, n: b.Length, b: &b})
		c.streamEnd = b.Offset + b.Length
	}
	c.segStart = c.streamEnd
	return c
}

func (c *content) size() int64 { return c.streamEnd + int64(c.tailLen) }

// Size is the file's size.
func (c *content) Size() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.size()
}

// Changed says whether the content changed since the last commit.
func (c *content) Changed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changed
}

// Broken is the error that lost part of the content, or nil.
func (c *content) Broken() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.broken
}

// lock takes c.mu once no commit is reading the content.
func (c *content) lock() {
	c.mu.Lock()
	for c.frozen {
		c.thaw.Wait()
	}
}

// Write writes data at off (at the end with appending) and returns the
// offset written at.
func (c *content) Write(data []byte, off int64, appending bool) (int64, error) {
	c.lock()
	defer c.mu.Unlock()
	if c.broken != nil {
		return off, c.broken
	}
	if appending {
		off = c.size()
	}
	at := off
	c.changed = true
	if size := c.size(); off > size {
		if err := c.zeroFill(size, off); err != nil {
			return at, err
		}
	}
	if off < c.streamEnd {
		if err := c.flushSeg(); err != nil {
			return at, err
		}
		k := min(int64(len(data)), c.streamEnd-off)
		if err := c.writeSpool(off, data[:k]); err != nil {
			return at, err
		}
		data, off = data[k:], off+k
	}
	if len(data) > 0 {
		return at, c.writeTail(off, data)
	}
	return at, nil
}

// zeroFill extends the file with zeros from size to end.
func (c *content) zeroFill(size, end int64) error {
	zeros := make([]byte, min(end-size, int64(c.f.bs)))
	for size < end {
		n := min(end-size, int64(len(zeros)))
		if err := c.writeTail(size, zeros[:n]); err != nil {
			return err
		}
		size += n
	}
	return nil
}

// writeTail writes data at off, with streamEnd <= off <= size, shipping
// every block the tail fills.
func (c *content) writeTail(off int64, data []byte) error {
	for len(data) > 0 {
		if c.tail == nil {
			c.tail = c.f.getBuf()
		}
		pos := int(off - c.streamEnd)
		n := copy((*c.tail)[pos:], data)
		c.tailLen = max(c.tailLen, pos+n)
		c.tailRec = nil
		data, off = data[n:], off+int64(n)
		if c.tailLen == c.f.bs {
			if err := c.ship(); err != nil {
				return err
			}
		}
	}
	return nil
}

// ship hands the full tail to the stream writer, starting one if needed.
func (c *content) ship() error {
	if c.seg == nil {
		if err := c.startSeg(); err != nil {
			c.broken = err
			return err
		}
	}
	buf, n := c.tail, int64(c.f.bs)
	if err := c.f.buffered.Acquire(c.seg.ctx, n); err != nil {
		c.broken = err
		return err
	}
	release := func() {
		c.f.putBuf(buf)
		c.f.buffered.Release(n)
	}
	ref := version.Ref{Object: segObject, Rank: -1, Offset: c.streamEnd - c.seg.start}
	c.tail, c.tailLen = nil, 0
	c.streamEnd += n
	if err := c.seg.w.Put(c.seg.ctx, ref, (*buf)[:n], release); err != nil {
		c.broken = fmt.Errorf("streaming to the stores: %w", err)
		return c.broken
	}
	return nil
}

// startSeg opens a stream writer at streamEnd, in the content's
// transaction (begun first if needed), reusing the tree's blocks.
func (c *content) startSeg() error {
	ctx, cancel := c.f.ctx()
	defer cancel()
	if c.txn == nil {
		txn, err := c.f.c.begin(ctx)
		if err != nil {
			return err
		}
		c.txn = txn
	}
	w, err := c.f.job.NewWriter(ctx, c.f.c.known(), version.Hints{BlockSize: c.f.bs, MaxBuffered: c.f.opts.MaxBuffered})
	if err != nil {
		return fmt.Errorf("opening a stream to the stores: %w", err)
	}
	sctx, scancel := context.WithCancel(context.Background())
	c.seg = &segment{w: w, start: c.streamEnd, ctx: sctx, cancel: scancel}
	return nil
}

// flushSeg waits until the stream writer's blocks are stored and makes
// them clean extents.
func (c *content) flushSeg() error {
	s := c.seg
	if s == nil {
		return nil
	}
	c.seg = nil
	type closed struct {
		p   *version.Part
		err error
	}
	ch := make(chan closed, 1)
	go func() {
		p, err := s.w.Close(s.ctx)
		ch <- closed{p, err}
	}()
	var r closed
	select {
	case r = <-ch:
	case <-time.After(c.f.opts.Timeout):
		s.cancel()
		r = <-ch
		if r.err == nil {
			r.err = errors.New("stores did not store the blocks in time")
		}
		r.err = fmt.Errorf("%w (after %s)", r.err, c.f.opts.Timeout)
	}
	s.cancel()
	if r.err != nil {
		c.broken = fmt.Errorf("streaming to the stores: %w", r.err)
		return c.broken
	}
	m, err := manifest.Unmarshal(r.p.Bytes())
	if err != nil {
		c.broken = fmt.Errorf("the stream writer's blocks: %w", err)
		return c.broken
	}
	c.newBytes += m.NewBytes
	c.sentBytes += m.SentBytes
	for i := range m.Blocks {
		b := m.Blocks[i]
		b.Offset += s.start
		c.ext = append(c.ext, extent{off: b.Offset, n: b.Length, b: &b})
	}
	c.segStart = c.streamEnd
	return nil
}

// find returns the index of the first extent that ends after off.
func (c *content) find(off int64) int {
	return sort.Search(len(c.ext), func(i int) bool { return c.ext[i].off+c.ext[i].n > off })
}

// openSpool makes the content's spool file: created and unlinked at once,
// so that nothing is left behind whatever happens to the process.
func (c *content) openSpool() error {
	if c.spool != nil {
		return nil
	}
	f, err := os.CreateTemp(c.f.opts.Spool, ".ckpt-spool-*")
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	os.Remove(f.Name())
	c.spool = f
	return nil
}

// writeSpool writes data at off, with off+len(data) <= streamEnd and no
// stream writer: the range becomes dirty.
func (c *content) writeSpool(off int64, data []byte) error {
	if err := c.openSpool(); err != nil {
		return err
	}
	end := off + int64(len(data))
	i := c.find(off)
	j := i
	for ; j < len(c.ext) && c.ext[j].off < end; j++ {
		e := &c.ext[j]
		if e.b == nil {
			continue
		}
		if off > e.off || end < e.off+e.n {
			if err := c.fetchToSpool(e); err != nil {
				return err
			}
		}
		e.b = nil
	}
	if _, err := c.spool.WriteAt(data, off); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	c.merge(max(0, i-1), min(len(c.ext), j+1))
	return nil
}

// fetchToSpool copies a stored block into the spool at its offset.
func (c *content) fetchToSpool(e *extent) error {
	ctx, cancel := c.f.ctx()
	defer cancel()
	buf := make([]byte, e.n)
	if err := c.f.rd.ReadBlockInto(ctx, *e.b, buf); err != nil {
		c.f.log.Error("block unreadable: no copy could be read and verified", zap.Int64("offset", e.off),
			zap.String("block", e.b.Key.String()), zap.Strings("stores", e.b.Stores), zap.Error(err))
		return err
	}
	if _, err := c.spool.WriteAt(buf, e.off); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	return nil
}

// merge joins adjacent dirty extents among ext[i:j].
func (c *content) merge(i, j int) {
	out := c.ext[:i]
	for k := i; k < j; k++ {
		e := c.ext[k]
		if n := len(out); n > 0 && e.b == nil && out[n-1].b == nil && out[n-1].off+out[n-1].n == e.off {
			out[n-1].n += e.n
			continue
		}
		out = append(out, e)
	}
	c.ext = append(out, c.ext[j:]...)
}

// Truncate sets the size to n.
func (c *content) Truncate(n int64) error {
	c.lock()
	defer c.mu.Unlock()
	size := c.size()
	if n == size {
		return nil
	}
	c.changed = true
	switch {
	case n == 0:
		c.reset()
		return nil
	case c.broken != nil:
		return c.broken
	case n > size:
		return c.zeroFill(size, n)
	case n >= c.streamEnd:
		c.tailLen = int(n - c.streamEnd)
		c.tailRec = nil
		return nil
	}
	if err := c.flushSeg(); err != nil {
		return err
	}
	i := c.find(n)
	if i < len(c.ext) && c.ext[i].off < n {
		e := &c.ext[i]
		if e.b != nil {
			if err := c.openSpool(); err != nil {
				return err
			}
			if err := c.fetchToSpool(e); err != nil {
				return err
			}
			e.b = nil
		}
		e.n = n - e.off
		i++
	}
	c.ext = c.ext[:i]
	if c.spool != nil {
		if err := c.spool.Truncate(n); err != nil {
			return fmt.Errorf("spool: %w", err)
		}
	}
	c.dropTail()
	c.streamEnd, c.segStart = n, n
	return nil
}

// reset empties the content: what was streamed is dropped (left to
// garbage collection), the spool closed.
func (c *content) reset() {
	if s := c.seg; s != nil {
		c.seg = nil
		s.cancel()
		s.w.Close(s.ctx)
	}
	if c.spool != nil {
		c.spool.Close()
		c.spool = nil
	}
	c.dropTail()
	c.ext = nil
	c.streamEnd, c.segStart = 0, 0
	c.broken = nil
}

func (c *content) dropTail() {
	if c.tail != nil {
		c.f.putBuf(c.tail)
	}
	c.tail, c.tailLen, c.tailRec = nil, 0, nil
}

// discard lets go of everything the content holds: the file was removed.
func (c *content) discard() {
	c.lock()
	c.reset()
	txn := c.txn
	c.txn = nil
	c.mu.Unlock()
	if txn != nil {
		txn.Abort(context.Background())
	}
}

// ReadAt reads into dst from off and returns how many bytes it read
// (fewer at the end of the file).
func (c *content) ReadAt(h *fetcher, dst []byte, off int64) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	size := c.size()
	if off >= size {
		return 0, nil
	}
	dst = dst[:min(int64(len(dst)), size-off)]
	end := off + int64(len(dst))
	if c.seg != nil && off < c.streamEnd && end > c.segStart {
		if err := c.flushSeg(); err != nil {
			return 0, err
		}
	}
	n := 0
	for i := c.find(off); off < c.streamEnd && n < len(dst); i++ {
		e := c.ext[i]
		k := int(min(e.off+e.n, end) - off)
		if e.b == nil {
			if _, err := c.spool.ReadAt(dst[n:n+k], off); err != nil {
				return n, fmt.Errorf("spool: %w", err)
			}
		} else {
			data, err := h.block(extents(c.ext), i)
			if err != nil {
				return n, err
			}
			copy(dst[n:n+k], data[off-e.off:])
		}
		n += k
		off += int64(k)
	}
	if n < len(dst) {
		n += copy(dst[n:], (*c.tail)[off-c.streamEnd:c.tailLen])
	}
	return n, nil
}

// extents lists the stored blocks among extents, for a fetcher.
type extents []extent

func (x extents) Len() int                 { return len(x) }
func (x extents) At(i int) *manifest.Block { return x[i].b }

// freeze stops writes until thawed: a commit reads the content. The
// stream writer is flushed first, so the content is extents and a tail.
func (c *content) freeze() error {
	c.lock()
	defer c.mu.Unlock()
	if c.broken != nil {
		return c.broken
	}
	if err := c.flushSeg(); err != nil {
		return err
	}
	c.frozen = true
	return nil
}

// unfreeze lets writes go on. With recs (the blocks the commit recorded
// for the content, by offset), the content is clean: recs are its
// extents, the spool is closed, and txn, no longer needed, is returned
// to be aborted.
func (c *content) unfreeze(recs []manifest.Block) *version.Txn {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.frozen = false
	c.thaw.Broadcast()
	if recs == nil {
		return nil
	}
	c.ext = c.ext[:0]
	c.tailRec = nil
	for i := range recs {
		b := recs[i]
		if b.Length == 0 {
			continue
		}
		if b.Offset >= c.streamEnd {
			c.tailRec = &b
			continue
		}
		c.ext = append(c.ext, extent{off: b.Offset, n: b.Length, b: &b})
	}
	if c.spool != nil {
		c.spool.Close()
		c.spool = nil
	}
	c.changed = false
	c.newBytes, c.sentBytes = 0, 0
	txn := c.txn
	c.txn = nil
	return txn
}

// Stored is the blocks a commit references for the content as it is
// frozen (clean extents and the committed tail): what it may reuse.
func (c *content) stored() []manifest.Block {
	var out []manifest.Block
	for _, e := range c.ext {
		if e.b != nil {
			out = append(out, *e.b)
		}
	}
	if c.tailRec != nil {
		out = append(out, *c.tailRec)
	}
	return out
}
