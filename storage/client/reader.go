package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/codec"
	"github.com/ckptio/ckptio/storage/manifest"
)

// DefaultParallel is how many blocks a Reader fetches at once when
// ReaderOptions.Parallel is zero.
const DefaultParallel = 16

// StoreFunc resolves a store ID from a manifest to a connection. It returns
// an error when the store is unknown or unreachable; the Reader then tries
// the block's next copy.
type StoreFunc func(ctx context.Context, id string) (storage.BlockStore, string, error)

// ReaderOptions tunes a Reader. Zero values pick the defaults.
type ReaderOptions struct {
	Parallel int // blocks fetched at once; 0 = DefaultParallel
	// Decode turns a block's stored bytes into its logical bytes; the
	// Reader checks them against the block's hash after. nil =
	// codec.Decode, which fails on encrypted blocks: set it to
	// storage/crypt's Key.Decode to read those.
	Decode func(b manifest.Block, stored []byte) ([]byte, error)
	// Dead, if set, reports whether the manager marks a store dead, and
	// its address (Pool.Dead): such a store's copies are tried last,
	// after every other copy, instead of in the manifest's order.
	Dead func(id string) (addr string, dead bool)
	// HedgeAfter is how long a read waits for one copy of a replicated
	// block before asking the next copy too (the first good answer
	// wins); 0 = DefaultHedgeAfter, < 0 never (copies are tried one
	// after another).
	HedgeAfter time.Duration
	Logger     *zap.Logger // nil = no logging
}

// DefaultHedgeAfter is ReaderOptions.HedgeAfter's default: far above a
// block's read time on a working store, short enough that a stopped one
// does not stall a restore.
const DefaultHedgeAfter = 2 * time.Second

// Reader fetches blocks from the stores and verifies them. It is safe for
// concurrent use.
type Reader struct {
	stores StoreFunc
	opts   ReaderOptions
	log    *zap.Logger

	mu struct {
		sync.Mutex
		// passed: by store, the blocks read from another copy because
		// this one was dead or unreadable, and the last reason.
		passed map[string]*passed
		blocks int64 // read from another copy than the manifest's first
		// slow: stores that lost a hedged read, and when (slowLast).
		slow map[string]time.Time
		// corrupt: copies that came back not matching their keys.
		corrupt map[catalog.CorruptCopy]bool
	}
}

// noteCorrupt records the copy key of store id if err says it came back
// corrupt.
func (r *Reader) noteCorrupt(id string, key storage.Hash, err error) {
	if !errors.Is(err, storage.ErrHashMismatch) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mu.corrupt == nil {
		r.mu.corrupt = map[catalog.CorruptCopy]bool{}
	}
	r.mu.corrupt[catalog.CorruptCopy{Store: id, Key: key}] = true
}

// Corrupt lists the copies read so far that came back not matching their
// keys (the reader read other copies instead), by store and key: worth
// reporting to the manager, which checks and replaces them
// (catalog.Client.ReportCorrupt).
func (r *Reader) Corrupt() []catalog.CorruptCopy {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := slices.Collect(maps.Keys(r.mu.corrupt))
	slices.SortFunc(out, catalog.CorruptCopy.Compare)
	return out
}

type passed struct {
	blocks int64
	why    error
	addr   string // of a store skipped as dead
}

var errDead = errors.New("the manager marks it dead")

// Degraded is one store whose copies a Reader could not or did not read,
// so that Blocks blocks were read from another copy. Err says why: the
// store's error, or that the manager marks it dead.
type Degraded struct {
	Store  string // ID, and address when known
	Blocks int64
	Err    error
}

// NewReader returns a Reader that reaches stores through stores.
func NewReader(stores StoreFunc, opts ReaderOptions) *Reader {
	if opts.Parallel <= 0 {
		opts.Parallel = DefaultParallel
	}
	r := &Reader{stores: stores, opts: opts, log: opts.Logger}
	r.mu.passed = map[string]*passed{}
	if r.log == nil {
		r.log = zap.NewNop()
	}
	return r
}

// ReadBlock returns the logical bytes of b, from the first of its stores
// that returns bytes matching its key. Every failure is named in the error.
func (r *Reader) ReadBlock(ctx context.Context, b manifest.Block) ([]byte, error) {
	return r.read(ctx, b, nil)
}

// ReadBlockInto is ReadBlock writing the logical bytes into dst, which
// holds exactly b.Length bytes. Through stores that can (storage.GetIntoer,
// storage/remote) a raw block travels from the connection straight into
// dst and a compressed one into a recycled buffer, so a restore allocates
// nothing per block. dst may hold garbage after an error.
func (r *Reader) ReadBlockInto(ctx context.Context, b manifest.Block, dst []byte) error {
	if int64(len(dst)) != b.Length {
		return fmt.Errorf("client: block %s of %q holds %d bytes, destination %d", b.Key.Short(), b.Object, b.Length, len(dst))
	}
	_, err := r.read(ctx, b, dst)
	return err
}

// read is ReadBlock, into dst when dst is not nil.
func (r *Reader) read(ctx context.Context, b manifest.Block, dst []byte) ([]byte, error) {
	if b.Length == 0 {
		return dst, nil
	}
	if b.Erasure() {
		return r.readCoded(ctx, b, dst)
	}
	if len(b.Stores) == 0 {
		return nil, &storage.BlockError{Op: "get", Store: "(none)", Hash: b.Key,
			Err: errors.New("manifest lists no store for this block")}
	}
	ids := b.Stores
	var dead []string
	if r.opts.Dead != nil {
		// Copies on stores the manager marks dead go last: a read does
		// not wait on a store known to be gone when another copy is up.
		for i, id := range ids {
			if _, d := r.opts.Dead(id); d {
				if dead == nil {
					ids = slices.Clone(ids[:i])
				}
				dead = append(dead, id)
			} else if dead != nil {
				ids = append(ids, id)
			}
		}
		ids = append(ids, dead...)
	}
	return r.readHedged(ctx, b, r.slowLast(ids), dst)
}

// Hedged reads. A copy that has not arrived within HedgeAfter is not
// waited for alone: the next copy is asked too, and the first good one
// wins; the others are cancelled. A store that lost such a race is
// "slow" for slowFor: reads ask its copies after the others', so a
// stopped store costs one hedge delay per block in flight, not per
// block. (A request to a store that answers nothing at all fails after
// the connection's reply timeout, storage/remote.)

// slowFor is how long a store that lost a hedged read is asked last.
const slowFor = 30 * time.Second

// errSlowFor is why a store lost a hedged read.
func errSlowFor(d time.Duration) error {
	return fmt.Errorf("no answer within %v (read from another copy instead)", d)
}

// slowStores returns the stores marked slow within the last slowFor
// (nil when none).
func (r *Reader) slowStores() map[string]bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out map[string]bool
	now := time.Now()
	for id, at := range r.mu.slow {
		if now.Sub(at) < slowFor {
			if out == nil {
				out = map[string]bool{}
			}
			out[id] = true
		}
	}
	return out
}

// slowLast moves the stores marked slow after the others, keeping the
// order within each group; ids is not modified.
func (r *Reader) slowLast(ids []string) []string {
	isSlow := r.slowStores()
	if isSlow == nil {
		return ids
	}
	var fast, slow []string
	for _, id := range ids {
		if isSlow[id] {
			slow = append(slow, id)
		} else {
			fast = append(fast, id)
		}
	}
	if len(slow) == 0 {
		return ids
	}
	return append(fast, slow...)
}

// readHedged reads b from the stores ids in order, asking the next one
// when the current ones have not answered within HedgeAfter (unless it is
// negative) or have failed. At most one attempt at a time reads into dst; a winner that
// read elsewhere is copied into dst after the one reading into it has
// returned, so nothing writes dst once readHedged returns.
func (r *Reader) readHedged(ctx context.Context, b manifest.Block, ids []string, dst []byte) ([]byte, error) {
	hedge := r.hedgeAfter()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		k    int
		data []byte
		err  error
	}
	results := make(chan result, len(ids))
	owner := -1 // the attempt reading into dst
	running := map[int]bool{}
	next := 0
	start := func() {
		k := next
		next++
		var into []byte
		if dst != nil && owner < 0 {
			into, owner = dst, k
		}
		running[k] = true
		go func() {
			data, err := r.readFrom(ctx, ids[k], b, into)
			results <- result{k, data, err}
		}()
	}
	// waitOwner waits for the attempt reading into dst to return.
	waitOwner := func() {
		for owner >= 0 {
			if y := <-results; y.k == owner {
				owner = -1
			}
		}
	}
	start()
	// With one copy, or hedging off, copies are asked one after another.
	var hedgeC <-chan time.Time
	timer := time.NewTimer(hedge)
	defer timer.Stop()
	if len(ids) > 1 && hedge >= 0 {
		hedgeC = timer.C
	}
	var errs []error
	var failed []string
	for len(running) > 0 {
		select {
		case x := <-results:
			delete(running, x.k)
			if x.k == owner {
				owner = -1
			}
			if x.err == nil {
				cancel() // the others
				for k := range running {
					// Asked before the winner and not answered: slow, for
					// the summary and the order of the next reads. (Those
					// asked after it were hedges that lost.)
					if k < x.k {
						failed, errs = append(failed, ids[k]), append(errs, errSlowFor(hedge))
						r.markSlow(ids[k])
					}
				}
				waitOwner()
				if dst != nil && (len(x.data) == 0 || &x.data[0] != &dst[0]) {
					copy(dst, x.data)
					x.data = dst
				}
				r.pass(b.Stores, ids[x.k], failed, errs)
				return x.data, nil
			}
			if ctx.Err() != nil {
				waitOwner()
				return nil, ctx.Err()
			}
			// Summarised by Degraded, not one line per block.
			r.log.Debug("block copy unreadable; trying the next copy",
				zap.String("store", ids[x.k]), zap.String("block", b.Key.Short()), zap.Error(x.err))
			errs, failed = append(errs, x.err), append(failed, ids[x.k])
			if next < len(ids) {
				start()
				timer.Reset(hedge)
			}
		case <-hedgeC:
			if next < len(ids) {
				start()
				timer.Reset(hedge)
			}
		}
	}
	return nil, joinBlockErrors(errs)
}

func (r *Reader) hedgeAfter() time.Duration {
	if r.opts.HedgeAfter == 0 {
		return DefaultHedgeAfter
	}
	return r.opts.HedgeAfter
}

func (r *Reader) markSlow(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mu.slow == nil {
		r.mu.slow = map[string]time.Time{}
	}
	r.mu.slow[id] = time.Now()
}

// pass records a block read from store got rather than from the
// manifest's first copy: the stores listed before got in the manifest's
// order were skipped as dead or failed (errs, in the order of failed).
func (r *Reader) pass(listed []string, got string, failed []string, errs []error) {
	if len(listed) == 0 || listed[0] == got {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mu.blocks++
	for _, id := range listed {
		if id == got {
			return
		}
		p := r.mu.passed[id]
		if p == nil {
			p = &passed{}
			r.mu.passed[id] = p
		}
		p.blocks++
		if i := slices.Index(failed, id); i >= 0 {
			p.why = errs[i]
		} else if _, slow := r.mu.slow[id]; slow && p.why == nil {
			p.why = errSlowFor(r.hedgeAfter())
		} else if p.why == nil {
			p.why = errDead
			if r.opts.Dead != nil {
				p.addr, _ = r.opts.Dead(id)
			}
		}
	}
}

// Degraded returns the stores whose copies were passed over so far, by
// store ID, each with the blocks read from another copy instead, and the
// blocks read from another copy than their first, counted once each.
func (r *Reader) Degraded() ([]Degraded, int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Degraded, 0, len(r.mu.passed))
	for id, p := range r.mu.passed {
		d := Degraded{Store: id, Blocks: p.blocks, Err: p.why}
		var be *storage.BlockError
		if errors.As(p.why, &be) {
			d.Store, d.Err = be.Store, be.Err
		} else if p.addr != "" {
			d.Store = id + " (" + p.addr + ")"
		}
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b Degraded) int { return strings.Compare(a.Store, b.Store) })
	return out, r.mu.blocks
}

// DegradedSummary is Degraded in one line for people ("" when every
// block was read from its first copy): "960 blocks read from another
// copy; store st-1 (127.0.0.1:4000) unreachable: ...".
func (r *Reader) DegradedSummary() string {
	ds, n := r.Degraded()
	if len(ds) == 0 {
		return ""
	}
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = fmt.Sprintf("store %s unreachable: %v (%d blocks)", d.Store, d.Err, d.Blocks)
	}
	return fmt.Sprintf("%d blocks read from another copy; %s", n, strings.Join(parts, "; "))
}

func (r *Reader) readFrom(ctx context.Context, id string, b manifest.Block, dst []byte) ([]byte, error) {
	st, addr, err := r.stores(ctx, id)
	name := id
	if addr != "" {
		name = id + " (" + addr + ")"
	}
	if err != nil {
		return nil, &storage.BlockError{Op: "get", Store: name, Hash: b.Key, Err: err}
	}
	var stored []byte
	raw := (b.Codec == manifest.CodecRaw || b.Codec == "") && b.Key == b.Hash
	gi, into := st.(storage.GetIntoer)
	switch {
	case dst != nil && into && raw:
		stored, err = gi.GetInto(ctx, b.Key, dst)
	case dst != nil && into:
		buf := storage.GetBuffer(int(b.StoredLength))
		defer storage.PutBuffer(buf)
		stored, err = gi.GetInto(ctx, b.Key, buf)
	default:
		stored, err = st.Get(ctx, b.Key)
	}
	if err == nil && (int64(len(stored)) != b.StoredLength || storage.Sum(stored) != b.Key) {
		err = fmt.Errorf("%w (store returned %d bytes, manifest says %d)", storage.ErrHashMismatch, len(stored), b.StoredLength)
	}
	if err != nil {
		r.noteCorrupt(id, b.Key, err)
		return nil, &storage.BlockError{Op: "get", Store: name, Hash: b.Key, Err: err}
	}
	data, err := decode(r.opts.Decode, b, stored, dst)
	if err != nil {
		return nil, &storage.BlockError{Op: "get", Store: name, Hash: b.Key, Err: err}
	}
	if dst != nil && len(data) > 0 && &data[0] != &dst[0] {
		copy(dst, data)
		data = dst
	}
	return data, nil
}

// decode turns stored bytes into logical bytes with dec (nil =
// codec.Decode, into dst when dst is not nil) and checks them against the
// block's hash.
func decode(dec func(manifest.Block, []byte) ([]byte, error), b manifest.Block, stored, dst []byte) ([]byte, error) {
	if (b.Codec == manifest.CodecRaw || b.Codec == "") && b.Key == b.Hash {
		return stored, nil // already verified against the key
	}
	var data []byte
	var err error
	if dec != nil {
		data, err = dec(b, stored)
	} else {
		data, err = codec.Decode(dst, b.Codec, stored, int(b.Length))
	}
	if err != nil {
		return nil, err
	}
	if storage.Sum(data) != b.Hash {
		return nil, fmt.Errorf("decoded bytes: %w", storage.ErrHashMismatch)
	}
	return data, nil
}

func joinBlockErrors(errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return fmt.Errorf("no copy readable: %s: %w", strings.Join(msgs, "; "), errs[0])
}

// ReadObject fetches blocks (all of one object, any order) in parallel and
// writes each at its offset in w.
func (r *Reader) ReadObject(ctx context.Context, blocks []manifest.Block, w io.WriterAt) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(r.opts.Parallel)
	for _, b := range blocks {
		if b.Length == 0 {
			continue
		}
		g.Go(func() error {
			data, err := r.ReadBlock(ctx, b)
			if err != nil {
				return err
			}
			if int64(len(data)) != b.Length {
				return fmt.Errorf("client: block %s of %q decoded to %d bytes, manifest says %d",
					b.Key.Short(), b.Object, len(data), b.Length)
			}
			if _, err := w.WriteAt(data, b.Offset); err != nil {
				return fmt.Errorf("client: writing %q at offset %d: %w", b.Object, b.Offset, err)
			}
			return nil
		})
	}
	return g.Wait()
}
