package mount

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/manifest"
	"github.com/ckptio/ckptio/storage/version"
)

// committer makes the versions: one goroutine that, each time a close or
// an fsync asks (request), commits the whole tree as it is then: the
// files whose commit was asked for with their current content, the other
// files as the last version holds them, every directory and symlink.
// Requests that arrive while a commit runs share the next one.
type committer struct {
	f *FS

	mu      sync.Mutex
	gen     int64 // of the last request
	waiters []waiter
	latest  int64
	reuse   *version.Previous // the blocks of the tree's files, stored
	// changeSeq counts changes of names and metadata; committedSeq is
	// its value when the last version was collected.
	changeSeq, committedSeq int64
	asyncErr                error // a background commit's, not yet reported

	kick   chan struct{}
	quit   chan struct{}
	exited chan struct{}
}

type waiter struct {
	gen int64
	n   *fileNode
	ch  chan error
}

func (c *committer) init(f *FS) {
	c.f = f
	c.reuse = version.Known(nil)
	c.kick = make(chan struct{}, 1)
	c.quit = make(chan struct{})
	c.exited = make(chan struct{})
}

func (c *committer) setLatest(v int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.latest = v
}

// sawLatest records a version the manager listed.
func (c *committer) sawLatest(v int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.latest = max(c.latest, v)
}

func (c *committer) latestVersion() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.latest
}

// known is what stream writers may reuse: the tree's stored blocks.
func (c *committer) known() *version.Previous {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reuse
}

func (c *committer) setKnown(p *version.Previous) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reuse = p
}

// touch records a change of names or metadata, committed with the next
// version (or at unmount).
func (c *committer) touch() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.changeSeq++
}

// takeAsyncErr returns, once, the errno of a background commit that
// failed since the last call.
func (c *committer) takeAsyncErr() syscall.Errno {
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.asyncErr
	c.asyncErr = nil
	return errno(err)
}

// request asks for a commit that holds n as it is now; the channel gets
// the commit's outcome.
func (c *committer) request(n *fileNode) <-chan error {
	ch := make(chan error, 1)
	c.f.ns.Lock()
	c.mu.Lock()
	c.gen++
	n.pendGen = c.gen
	c.waiters = append(c.waiters, waiter{gen: c.gen, n: n, ch: ch})
	c.mu.Unlock()
	c.f.ns.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
	return ch
}

func (c *committer) loop() {
	defer close(c.exited)
	for {
		select {
		case <-c.kick:
		case <-c.quit:
			return
		}
		c.round(false)
	}
}

// stop ends the loop and makes the last commit: what changed since the
// last version, names and metadata included. It returns its error, or a
// background commit's error no operation reported.
func (c *committer) stop() error {
	close(c.quit)
	<-c.exited
	err := c.round(true)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil {
		err = c.asyncErr
	}
	return err
}

// round runs one commit and tells the waiters it covered.
func (c *committer) round(final bool) error {
	snap, broken, err := c.commit(final)
	if err != nil {
		c.f.log.Error("commit failed; the files closed since the last version are not in a version yet", zap.Error(err))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	kept := c.waiters[:0]
	told := false
	for _, w := range c.waiters {
		if w.gen > snap {
			kept = append(kept, w)
			continue
		}
		werr := err
		if b, ok := broken[w.n]; ok {
			werr = b
		}
		w.ch <- werr
		told = true
	}
	c.waiters = kept
	if err != nil && c.f.opts.Async && (told || final) && c.asyncErr == nil {
		c.asyncErr = err
	}
	return err
}

// item is one entry of the tree as a commit writes it.
type item struct {
	e manifest.Entry
	n *fileNode
	// c is the content of a file whose commit was asked for (frozen
	// while the commit reads it); otherwise blocks are the file's as the
	// last version holds them.
	c      *content
	blocks []manifest.Block
}

// collect lists the tree under d (paths under prefix), with FS.ns held.
func (c *committer) collect(d *dirNode, prefix string, snap int64, items *[]item) (pending int) {
	names := make([]string, 0, len(d.kids))
	for name := range d.kids {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		p := path.Join(prefix, name)
		switch k := d.kids[name].(type) {
		case *dirNode:
			*items = append(*items, item{e: manifest.Entry{Object: p, Rank: -1, Type: manifest.TypeDir, Mode: k.mode.Load(), MTime: k.mtime.Load()}})
			pending += c.collect(k, p, snap, items)
		case *linkNode:
			*items = append(*items, item{e: manifest.Entry{Object: p, Rank: -1, Type: manifest.TypeSymlink, Mode: k.mode.Load(), MTime: k.mtime.Load(), Target: k.target}})
		case *fileNode:
			e := manifest.Entry{Object: p, Rank: -1, Type: manifest.TypeFile, Mode: k.mode.Load(), MTime: k.mtime.Load()}
			switch {
			case k.pendGen > 0 && k.pendGen <= snap:
				*items = append(*items, item{e: e, n: k, c: k.c})
				pending++
			case k.hasCommitted:
				if k.c.Changed() {
					e.MTime = k.cmtime
				}
				*items = append(*items, item{e: e, n: k, blocks: k.committed})
			}
		}
	}
	return pending
}

// commit commits the tree if a file asked for it (or, final, if anything
// changed since the last version). It returns the request generation it
// covers, and the files it left out because their content was lost.
func (c *committer) commit(final bool) (int64, map[*fileNode]error, error) {
	f := c.f
	var items []item
	f.ns.RLock()
	c.mu.Lock()
	snap, seq := c.gen, c.changeSeq
	changed := seq != c.committedSeq
	c.mu.Unlock()
	pending := c.collect(f.root, "", snap, &items)
	f.ns.RUnlock()
	if pending == 0 && !(final && changed) {
		return snap, nil, nil
	}
	broken := map[*fileNode]error{}
	var frozen []*content
	kept := items[:0]
	for _, it := range items {
		if it.c != nil {
			if err := it.c.freeze(); err != nil {
				broken[it.n] = err
				f.ns.Lock()
				it.c, it.blocks = nil, it.n.committed
				has := it.n.hasCommitted
				if it.n.pendGen <= snap {
					it.n.pendGen = 0
				}
				f.ns.Unlock()
				if !has {
					continue
				}
			} else {
				frozen = append(frozen, it.c)
			}
		}
		kept = append(kept, it)
	}
	items = kept
	if len(frozen) == 0 && !(final && changed) {
		return snap, broken, nil
	}
	ctx, cancel := f.ctx()
	defer cancel()
	var v int64
	var recs map[string][]manifest.Block
	for {
		err := retry(ctx, f.opts.Timeout, func() error {
			var err error
			v, recs, err = c.attempt(ctx, items)
			return err
		})
		var lost lostFiles
		if errors.As(err, &lost) {
			// Files a block of which no store holds any more are left
			// out, so that the others still make a version.
			items = c.leaveOut(items, lost, broken)
			continue
		}
		if err != nil {
			for _, fc := range frozen {
				fc.unfreeze(nil)
			}
			return snap, broken, err
		}
		break
	}
	var all []manifest.Block
	f.ns.Lock()
	for _, it := range items {
		if it.e.Type != manifest.TypeFile {
			continue
		}
		rs := recs[it.e.Object]
		all = append(all, rs...)
		it.n.committed, it.n.hasCommitted, it.n.cmtime = rs, true, it.e.MTime
		if it.c != nil && it.n.pendGen <= snap {
			it.n.pendGen = 0
		}
	}
	f.ns.Unlock()
	for _, it := range items {
		if it.c != nil {
			if txn := it.c.unfreeze(recs[it.e.Object]); txn != nil {
				txn.Abort(context.Background())
			}
		}
	}
	c.mu.Lock()
	c.committedSeq = seq
	c.reuse = version.Known(all)
	c.latest = max(c.latest, v)
	c.mu.Unlock()
	f.vers.added(v)
	f.addLatest(context.Background())
	f.log.Info("committed", zap.Int64("version", v), zap.Int("files", pending))
	return snap, broken, nil
}

// lostFiles are files of the tree with a block no copy of which could be
// read: the version cannot hold them.
type lostFiles map[string]error

func (l lostFiles) Error() string {
	var msgs []string
	for _, err := range l {
		msgs = append(msgs, err.Error())
	}
	sort.Strings(msgs)
	return "blocks lost on every store: " + strings.Join(msgs, "; ")
}

// leaveOut drops the lost files from items; a file whose close asked for
// the commit is told why (broken).
func (c *committer) leaveOut(items []item, lost lostFiles, broken map[*fileNode]error) []item {
	kept := items[:0]
	for _, it := range items {
		err, ok := lost[it.e.Object]
		if !ok {
			kept = append(kept, it)
			continue
		}
		c.f.log.Error("the version leaves out a file with a block lost on every store; rewrite it, or restore it from an earlier version",
			zap.String("file", it.e.Object), zap.Error(err))
		if it.c != nil {
			it.c.unfreeze(nil)
			broken[it.n] = err
		}
	}
	return kept
}

// attempt writes and commits one version of items.
func (c *committer) attempt(ctx context.Context, items []item) (int64, map[string][]manifest.Block, error) {
	f := c.f
	txn, err := f.job.Begin(ctx, version.Files, f.opts.Meta)
	if err != nil {
		return 0, nil, err
	}
	defer txn.Abort(context.WithoutCancel(ctx)) // unless committed
	var known []manifest.Block
	for _, it := range items {
		if it.c != nil {
			known = append(known, it.c.stored()...)
		} else {
			known = append(known, it.blocks...)
		}
	}
	w, err := f.job.NewWriter(ctx, version.Known(known), version.Hints{BlockSize: f.bs, ExpectBlocks: len(known) + len(items)})
	if err != nil {
		return 0, nil, err
	}
	closed := false
	defer func() {
		if !closed {
			w.Close(ctx)
		}
	}()
	var refs []version.Ref
	var from []manifest.Block
	var streamed manifest.Manifest // the stream writers' figures
	for _, it := range items {
		if it.c != nil {
			it.c.mu.Lock()
			streamed.NewBytes += it.c.newBytes
			streamed.SentBytes += it.c.sentBytes
			it.c.mu.Unlock()
		}
		if err := w.AddEntry(it.e); err != nil {
			return 0, nil, err
		}
		if it.e.Type != manifest.TypeFile {
			continue
		}
		if it.c != nil {
			if err := c.putContent(ctx, w, it.e.Object, it.c, &refs, &from); err != nil {
				return 0, nil, err
			}
			continue
		}
		var size int64
		for _, b := range it.blocks {
			size += b.Length
			if b.Length > 0 {
				refs = append(refs, version.Ref{Object: it.e.Object, Rank: -1, Offset: b.Offset, Length: b.Length, Hash: b.Hash})
				from = append(from, b)
			}
		}
		if size == 0 {
			if err := w.Put(ctx, version.Ref{Object: it.e.Object, Rank: -1}, nil, nil); err != nil {
				return 0, nil, err
			}
		}
	}
	need, err := w.Plan(ctx, refs)
	if err != nil {
		return 0, nil, err
	}
	lost := lostFiles{}
	for i, nd := range need {
		if !nd || lost[refs[i].Object] != nil {
			continue
		}
		// The stores confirm fewer copies than the version needs: read
		// the block from a copy and write the missing ones.
		data, err := f.rd.ReadBlock(ctx, from[i])
		if err != nil {
			if ctx.Err() != nil {
				return 0, nil, err
			}
			f.log.Error("block unreadable: no copy could be read and verified", zap.String("file", refs[i].Object),
				zap.Int64("offset", refs[i].Offset), zap.String("block", from[i].Key.String()), zap.Strings("stores", from[i].Stores), zap.Error(err))
			lost[refs[i].Object] = fmt.Errorf("%s at offset %d: %w", refs[i].Object, refs[i].Offset, err)
			continue
		}
		if err := w.Put(ctx, refs[i], data, nil); err != nil {
			return 0, nil, err
		}
	}
	if len(lost) > 0 {
		return 0, nil, lost
	}
	closed = true
	part, err := w.Close(ctx)
	if err != nil {
		return 0, nil, err
	}
	parts := []*version.Part{part}
	if streamed.NewBytes > 0 || streamed.SentBytes > 0 {
		// The streamed blocks are referenced by this writer, which
		// sent none of them; a part of no blocks carries what their
		// writers stored into the version's figures.
		streamed.Job = f.job.Name
		raw, err := manifest.Marshal(&streamed)
		if err != nil {
			return 0, nil, err
		}
		p, err := version.ParsePart(raw)
		if err != nil {
			return 0, nil, err
		}
		parts = append(parts, p)
	}
	cm, err := txn.Commit(ctx, f.opts.Meta, parts...)
	if err != nil {
		return 0, nil, err
	}
	m, err := manifest.Unmarshal(part.Bytes())
	if err != nil {
		return 0, nil, err
	}
	recs := map[string][]manifest.Block{}
	for _, b := range m.Blocks {
		recs[b.Object] = append(recs[b.Object], b)
	}
	return cm.Version, recs, nil
}

// putContent writes a frozen content as the file name: clean extents are
// planned (refs, from), dirty ones read from the spool and put in blocks
// cut at multiples of the block size, the tail put unless stored.
func (c *committer) putContent(ctx context.Context, w *version.Writer, name string, fc *content, refs *[]version.Ref, from *[]manifest.Block) error {
	f := c.f
	fc.mu.Lock()
	ext := slices.Clone(fc.ext)
	spool, streamEnd, tailLen, tailRec := fc.spool, fc.streamEnd, fc.tailLen, fc.tailRec
	var tail []byte
	if tailLen > 0 {
		tail = (*fc.tail)[:tailLen]
	}
	fc.mu.Unlock()
	if streamEnd+int64(tailLen) == 0 {
		return w.Put(ctx, version.Ref{Object: name, Rank: -1}, nil, nil)
	}
	bs := int64(f.bs)
	for _, e := range ext {
		if e.b != nil {
			*refs = append(*refs, version.Ref{Object: name, Rank: -1, Offset: e.off, Length: e.n, Hash: e.b.Hash})
			*from = append(*from, *e.b)
			continue
		}
		for a := e.off; a < e.off+e.n; {
			b := min(e.off+e.n, (a/bs+1)*bs)
			buf := f.getBuf()
			if _, err := spool.ReadAt((*buf)[:b-a], a); err != nil {
				f.putBuf(buf)
				return fmt.Errorf("spool of %s: %w", name, err)
			}
			if err := w.Put(ctx, version.Ref{Object: name, Rank: -1, Offset: a}, (*buf)[:b-a], func() { f.putBuf(buf) }); err != nil {
				return err
			}
			a = b
		}
	}
	switch {
	case tailLen == 0:
	case tailRec != nil:
		*refs = append(*refs, version.Ref{Object: name, Rank: -1, Offset: streamEnd, Length: int64(tailLen), Hash: tailRec.Hash})
		*from = append(*from, *tailRec)
	default:
		buf := f.getBuf()
		copy(*buf, tail)
		if err := w.Put(ctx, version.Ref{Object: name, Rank: -1, Offset: streamEnd}, (*buf)[:tailLen], func() { f.putBuf(buf) }); err != nil {
			return err
		}
	}
	return nil
}

// begin begins the transaction of a stream writer.
func (c *committer) begin(ctx context.Context) (*version.Txn, error) {
	var txn *version.Txn
	err := retry(ctx, c.f.opts.Timeout, func() error {
		var err error
		txn, err = c.f.job.Begin(ctx, version.Files, c.f.opts.Meta)
		return err
	})
	return txn, err
}

// retry runs fn until it succeeds, fails otherwise than by an
// unreachable manager, or ctx ends.
func retry(ctx context.Context, timeout time.Duration, fn func() error) error {
	wait := 50 * time.Millisecond
	for {
		err := fn()
		if err == nil || !errors.Is(err, catalog.ErrUnreachable) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the manager stayed unreachable for %s: %w", timeout, err)
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}
