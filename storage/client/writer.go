package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"

	"go.uber.org/zap"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/chunk"
	"github.com/ckptio/ckptio/storage/erasure"
	"github.com/ckptio/ckptio/storage/manifest"
	"github.com/ckptio/ckptio/storage/placement"
	"github.com/ckptio/ckptio/storage/wire"
)

// DefaultBlockSize is the size a Writer cuts objects into when
// WriterOptions.BlockSize is zero.
const DefaultBlockSize = 1 << 20

// DefaultWindow is the number of puts a Writer keeps outstanding per store
// for 1 MiB blocks when WriterOptions.Window is zero; smaller blocks get
// more (WindowFor), so that about DefaultWindowBytes are in flight per
// store. Chosen by measurement: over emulated 1 Gbit/s links (bench-net)
// 1 MiB blocks need a window of 16 to keep the link busy (4 reached 88%
// of the line rate); over loopback on one disk, 64 KiB blocks at window 64
// made the 4x64 MiB full checkpoint 20% faster than at 16 (median of 5:
// 0.88 s against 1.10 s), since a store's group commit then syncs 4 MiB at
// a time instead of 1.
const DefaultWindow = DefaultWindowBytes / DefaultBlockSize

// DefaultWindowBytes is the bytes a Writer keeps in flight per store when
// WriterOptions.Window is zero, within MinWindow and wire.Window puts.
const DefaultWindowBytes = 16 << 20

// MinWindow is the smallest default window in puts; the largest is
// wire.Window, the requests a store runs per connection.
const MinWindow = 16

// WindowFor returns the default window for blocks of blockSize bytes.
func WindowFor(blockSize int) int {
	if blockSize <= 0 {
		return DefaultWindow
	}
	return min(wire.Window, max(MinWindow, DefaultWindowBytes/blockSize))
}

// Target is a store a Writer may place blocks on.
type Target struct {
	ID    string             // the store's stable identity, recorded in the manifest
	Addr  string             // for messages
	Free  int64              // bytes it can still take; weights placement
	Store storage.BlockStore // the connection; the Writer does not close it
}

// WriterOptions tunes a Writer. Zero values pick the defaults.
type WriterOptions struct {
	BlockSize int // bytes per block cut by WriteObject; 0 = DefaultBlockSize
	// Chunker, if set, chooses block boundaries for WriteObject (e.g.
	// content-defined chunking); nil = fixed BlockSize blocks. BlockSize
	// must be at least its Max.
	Chunker chunk.Chunker
	Window  int // outstanding puts per store; 0 = WindowFor(BlockSize)
	// MaxBuffered bounds the bytes of blocks handed to the writer and not
	// yet stored, across all stores; 0 = Window blocks per store.
	// PutBlock blocks while the bound is reached.
	MaxBuffered int64
	// ExpectBlocks, if known, is about how many blocks the version will
	// hold; the writer sizes its block list for it once instead of
	// growing it.
	ExpectBlocks int
	// Replicas is the number of copies of each new block, on distinct
	// stores; 0 = 2 when at least 2 stores are live, else 1.
	Replicas int
	// Redundancy, when not zero, erasure-codes every new block: its
	// stored bytes are cut into Data+Parity shards (storage/erasure) put
	// on that many distinct stores, instead of Replicas copies (which
	// must then be 0 or 1). Every shard must be durable before the block
	// is done; it cannot be combined with Optimistic.
	Redundancy erasure.Scheme
	// Optimistic: a block is done once one copy is durable (the manager's
	// repair makes the other copies after the commit); otherwise
	// (pessimistic, the default) all Replicas copies must be durable and
	// the write fails when fewer stores than that will take a block.
	Optimistic bool
	// Encode turns a block's logical bytes into stored bytes (compression,
	// codec.Encode); nil = stored raw. It may return data itself, or write
	// into dst, a buffer of the block size the writer recycles once the
	// block is stored.
	Encode func(dst, data []byte) ([]byte, manifest.Codec)
	// Seal, if set, turns every new block's bytes as Encode left them (or
	// raw, codec c) into the bytes stored, and names their codec:
	// client-side encryption (storage/crypt's Key.Seal). h is the hash of
	// the block's logical bytes. Unlike Encode it is never skipped; an
	// error fails the write.
	Seal func(h storage.Hash, c manifest.Codec, stored []byte) ([]byte, manifest.Codec, error)
	// Before, if set, is called for each block given to PutBlock, in the
	// block's own goroutine, once b.Hash is known and before anything is
	// stored. When it returns true the block is not stored: Before has
	// recorded it (Reference). Otherwise it may set b.Key and b.Stores to
	// copies already held, as PutBlock's caller may. storage/version sets
	// it: it is where the version layer decides reuse.
	Before func(ctx context.Context, b *manifest.Block) bool
	// OnFull, if set, is called once per store the writer stops placing
	// blocks on because it refused one for want of room (quota, full
	// disk): storage/version marks it in the Pool (Pool.MarkFull).
	OnFull func(storeID string)
	Logger *zap.Logger // nil = no logging
}

// Writer writes the blocks of one version over a set of stores. Its methods
// are safe for concurrent use; Close must be called once, after the last
// write, and returns the blocks written. The first error is sticky: every
// later call returns it.
type Writer struct {
	opts    WriterOptions
	targets []Target
	byID    map[string]int
	sems    []chan struct{}
	budget  chan struct{} // one token per block buffered
	place   *placement.Placer
	log     *zap.Logger
	bufs    sync.Pool
	wg      sync.WaitGroup

	mu struct {
		sync.Mutex
		blocks    []manifest.Block
		seen      map[storage.Hash]*slot // blocks of this version, by logical hash
		newBytes  int64
		sentBytes int64
		reused    int64
		err       error
		closed    bool
		excluded  map[int]error // why a store was dropped
		// created are the keys this writer put that the store did not
		// hold before (Put reported created), by target: what an aborted
		// write may discard (Created).
		created map[int][]storage.Hash
		squeeze map[objectKey]*squeeze
	}
}

// objectKey names one object of one rank.
type objectKey struct {
	rank   int32
	object string
}

// squeeze remembers how well an object's blocks compress, so that data
// that does not compress enough stops paying for it. The rule is ZFS's:
// compression is worth its CPU when it saves at least an eighth. It is
// judged on the object's recent blocks together (bytes tried and saved,
// halved as they grow, so the figure follows the data), not block by
// block: simulation fields save 5-20% per 64 KiB block, and a per-block
// verdict kept flipping on them, paying lz4 for most blocks to save 3%.
// Below an eighth, one block in `every` is tried, enough to notice when
// the data starts compressing; every doubles from 16 to 128 while the
// probes keep failing. The first block of an object is tried alone: the
// blocks that arrive while it is being compressed wait for its verdict
// rather than all going through lz4 at once.
type squeeze struct {
	tried, saved int64
	skipped      int
	every        int
	first        chan struct{} // closed once the first block was judged
}

// Probing intervals of squeeze, in blocks.
const (
	minProbeEvery = 16
	maxProbeEvery = 128
)

// squeezeWindow is how many bytes of an object's tries squeeze weighs
// before halving its counts.
const squeezeWindow = 8 << 20

// worth reports whether the object's recent blocks saved an eighth.
func (q *squeeze) worth() bool { return q.saved*8 >= q.tried }

// slot is a block of this version being stored; later blocks with the same
// hash wait for it and reference it. It is small (one per block of the
// version): the stored block is found by its index in the block list.
type slot struct {
	done sync.WaitGroup
	idx  int // in mu.blocks, once stored
	ok   bool
}

// NewWriter returns a Writer over targets. It fails when there is none.
func NewWriter(targets []Target, opts WriterOptions) (*Writer, error) {
	if len(targets) == 0 {
		return nil, fmt.Errorf("client: %w to write to (are ckpt-store daemons running and registered with the manager? see 'ckpt stores')", storage.ErrNoLiveStore)
	}
	if opts.BlockSize <= 0 {
		opts.BlockSize = DefaultBlockSize
	}
	if opts.Chunker != nil && opts.BlockSize < opts.Chunker.Max() {
		opts.BlockSize = opts.Chunker.Max()
	}
	if opts.BlockSize > storage.MaxBlockSize {
		return nil, fmt.Errorf("client: block size %d above the limit %d", opts.BlockSize, storage.MaxBlockSize)
	}
	if opts.Window <= 0 {
		opts.Window = WindowFor(opts.BlockSize)
	}
	if !opts.Redundancy.IsZero() {
		if err := opts.Redundancy.Check(); err != nil {
			return nil, fmt.Errorf("client: %w", err)
		}
		if opts.Replicas > 1 || opts.Optimistic {
			return nil, fmt.Errorf("client: %s erasure coding is asked together with %d replicas or optimistic writes: a version is erasure-coded (every shard durable before a block is done) or replicated, not both", opts.Redundancy, opts.Replicas)
		}
		if n := opts.Redundancy.Shards(); n > len(targets) {
			return nil, fmt.Errorf("client: %s puts each block's %d shards on %d distinct stores, but only %d stores are live with room (lower K+M or add stores)", opts.Redundancy, n, n, len(targets))
		}
		opts.Replicas = 1
	}
	if opts.Replicas <= 0 {
		opts.Replicas = min(2, len(targets))
	}
	if opts.Replicas > len(targets) && !opts.Optimistic {
		return nil, fmt.Errorf("client: %d copies of each block asked, but only %d stores are live (lower the replicas or use optimistic writes)", opts.Replicas, len(targets))
	}
	if opts.MaxBuffered <= 0 {
		opts.MaxBuffered = int64(opts.Window*len(targets)) * int64(opts.BlockSize)
	}
	w := &Writer{opts: opts, targets: targets, log: opts.Logger, byID: map[string]int{}}
	if w.log == nil {
		w.log = zap.NewNop()
	}
	stores := make([]placement.Store, len(targets))
	for i, t := range targets {
		stores[i] = placement.Store{ID: t.ID, Free: t.Free}
		w.byID[t.ID] = i
		w.sems = append(w.sems, make(chan struct{}, opts.Window))
	}
	w.place = placement.New(stores)
	w.budget = make(chan struct{}, max(1, opts.MaxBuffered/int64(opts.BlockSize)))
	w.mu.seen = map[storage.Hash]*slot{}
	w.mu.blocks = make([]manifest.Block, 0, max(0, opts.ExpectBlocks))
	w.mu.excluded = map[int]error{}
	w.mu.created = map[int][]storage.Hash{}
	w.mu.squeeze = map[objectKey]*squeeze{}
	bs := opts.BlockSize
	w.bufs.New = func() any { b := make([]byte, bs); return &b }
	return w, nil
}

// Copies is how many copies of a block are durable before the block is
// done: Replicas, or 1 for optimistic writes.
func (w *Writer) Copies() int {
	if w.opts.Optimistic {
		return 1
	}
	return w.opts.Replicas
}

// Err returns the writer's sticky error, if any.
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.mu.err
}

func (w *Writer) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.mu.err == nil {
		w.mu.err = err
	}
}

// WriteObject cuts everything r yields into blocks and puts each with
// PutBlock; it returns the object's size. An empty object is recorded too.
// It decides no reuse: storage/version's Writer, which does, cuts objects
// itself.
func (w *Writer) WriteObject(ctx context.Context, name string, rank int32, r io.Reader) (int64, error) {
	if w.opts.Chunker != nil {
		return w.writeCut(ctx, name, rank, r)
	}
	var off int64
	for {
		bp := w.bufs.Get().(*[]byte)
		n, err := io.ReadFull(r, *bp)
		if n > 0 || off == 0 && (err == io.EOF || err == io.ErrUnexpectedEOF) {
			ref := manifest.Block{Object: name, Rank: rank, Offset: off}
			if perr := w.PutBlock(ctx, ref, (*bp)[:n], func() { w.bufs.Put(bp) }); perr != nil {
				return off, perr
			}
			off += int64(n)
		} else {
			w.bufs.Put(bp)
		}
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			return off, nil
		case err != nil:
			werr := fmt.Errorf("client: reading object %q at offset %d: %w", name, off, err)
			w.fail(werr)
			return off, werr
		}
	}
}

// writeCut is WriteObject with the Chunker's boundaries: it keeps at least
// one maximum-size chunk of read-ahead so every boundary is final.
func (w *Writer) writeCut(ctx context.Context, name string, rank int32, r io.Reader) (int64, error) {
	c := w.opts.Chunker
	window := 4 * c.Max()
	buf := make([]byte, 0, window)
	var off int64
	eof := false
	for {
		for !eof && len(buf) < window {
			n, err := r.Read(buf[len(buf):window])
			buf = buf[:len(buf)+n]
			if err == io.EOF {
				eof = true
			} else if err != nil {
				werr := fmt.Errorf("client: reading object %q at offset %d: %w", name, off+int64(len(buf)), err)
				w.fail(werr)
				return off, werr
			}
		}
		if len(buf) == 0 {
			if off == 0 {
				return 0, w.PutBlock(ctx, manifest.Block{Object: name, Rank: rank}, nil, nil)
			}
			return off, nil
		}
		used := 0
		for len(buf)-used >= c.Max() || eof && used < len(buf) {
			n := c.First(buf[used:])
			bp := w.bufs.Get().(*[]byte)
			data := append((*bp)[:0], buf[used:used+n]...)
			if err := w.PutBlock(ctx, manifest.Block{Object: name, Rank: rank, Offset: off}, data, func() { w.bufs.Put(bp) }); err != nil {
				return off, err
			}
			used += n
			off += int64(n)
		}
		buf = append(buf[:0], buf[used:]...)
	}
}

// PutBlock writes one block of an object. ref names the object, rank and
// offset; a non-zero ref.Hash is trusted as the hash of data. ref.Key and
// ref.Stores may name copies already held: stores that confirmed holding
// the stored bytes ref.Key (an earlier version's copies, confirmed by the
// caller, which protects them from garbage collection). When the block
// encodes to that key, those copies count and only the missing ones are
// put; otherwise they are ignored. The other fields are filled in. A block
// whose hash another block of this version already has is referenced, not
// stored again. data is owned by the writer until release is called
// (release may be nil). PutBlock blocks while MaxBuffered bytes are in
// flight. An empty data records an empty object.
func (w *Writer) PutBlock(ctx context.Context, ref manifest.Block, data []byte, release func()) error {
	done := func() {
		if release != nil {
			release()
		}
	}
	if err := w.Err(); err != nil {
		done()
		return err
	}
	ref.Length = int64(len(data))
	if len(data) == 0 {
		ref.Codec, ref.Stores = manifest.CodecRaw, nil
		ref.Hash, ref.Key, ref.StoredLength = storage.Hash{}, storage.Hash{}, 0
		w.record(ref, false, 0)
		done()
		return nil
	}
	select {
	case w.budget <- struct{}{}:
	case <-ctx.Done():
		done()
		w.fail(ctx.Err())
		return ctx.Err()
	}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer func() { <-w.budget }()
		defer done()
		if ref.Hash.IsZero() {
			ref.Hash = storage.Sum(data)
		}
		if w.opts.Before != nil && w.opts.Before(ctx, &ref) {
			return
		}
		s, first := w.claim(ref.Hash)
		if !first {
			s.done.Wait()
			if s.ok {
				w.mu.Lock()
				b := w.mu.blocks[s.idx]
				w.mu.Unlock()
				b.Object, b.Rank, b.Offset = ref.Object, ref.Rank, ref.Offset
				w.record(b, false, 0)
			}
			return
		}
		s.idx, s.ok = w.store(ctx, ref, data)
		s.done.Done()
	}()
	return nil
}

// claim returns the slot of hash h and whether the caller is the first of
// this version to write it.
func (w *Writer) claim(h storage.Hash) (*slot, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if s, ok := w.mu.seen[h]; ok {
		return s, false
	}
	s := &slot{}
	s.done.Add(1)
	w.mu.seen[h] = s
	return s, true
}

// Reference records prev, a block confirmed on its stores, as the block at
// offset of object (rank) in this version. Nothing is sent.
func (w *Writer) Reference(prev manifest.Block, object string, rank int32, offset int64) {
	prev.Object, prev.Rank, prev.Offset = object, rank, offset
	w.mu.Lock()
	w.mu.reused += prev.Length
	w.mu.Unlock()
	w.record(prev, false, 0)
}

// store encodes and puts one block, moving it to another store when the
// chosen one refuses it. It records the block and returns its index in
// the block list.
func (w *Writer) store(ctx context.Context, ref manifest.Block, data []byte) (int, bool) {
	heldKey, held := ref.Key, ref.Stores
	stored, codec := data, manifest.CodecRaw
	if w.opts.Encode != nil && w.tryCompress(ref) {
		// The compressed bytes go to a recycled buffer, freed once
		// the block is stored: a writer probing a large object would
		// otherwise leave a block of garbage per probe.
		dst := storage.GetBuffer(len(data))
		defer storage.PutBuffer(dst)
		stored, codec = w.opts.Encode(dst, data)
		w.learn(ref, len(data), len(stored))
	}
	if w.opts.Seal != nil {
		var err error
		if stored, codec, err = w.opts.Seal(ref.Hash, codec, stored); err != nil {
			w.fail(fmt.Errorf("client: block of %q at offset %d: %w", ref.Object, ref.Offset, err))
			return 0, false
		}
	}
	ref.Codec, ref.StoredLength = codec, int64(len(stored))
	ref.Key = ref.Hash
	if codec != manifest.CodecRaw {
		ref.Key = storage.Sum(stored)
	}
	if !w.opts.Redundancy.IsZero() {
		return w.storeShards(ctx, ref, stored)
	}
	// Put the copies on distinct stores, all at once; a store that refuses
	// is dropped and the copy goes to the next store in the key's order.
	// Copies already held of these very bytes count.
	tried := map[int]bool{}
	var holders []string
	need := w.Copies()
	if heldKey == ref.Key && !heldKey.IsZero() {
		for _, id := range held {
			if i, ok := w.byID[id]; ok {
				tried[i] = true
			}
			holders = append(holders, id)
		}
		need -= len(holders)
	}
	created := false
	for need > 0 {
		dropped := w.dropped()
		pick := w.place.Pick(ref.Key, need, func(i int) bool { return dropped[i] != nil || tried[i] })
		if len(pick) == 0 {
			err := fmt.Errorf("client: block %s of %q at offset %d: %d of %d copies stored, no other store took it: %s",
				ref.Key.Short(), ref.Object, ref.Offset, len(holders), w.Copies(), w.exclusions())
			if w.allFull() {
				// One line for the user, not one per refused block.
				w.mu.Lock()
				se := &SpaceError{During: true, Sent: w.mu.sentBytes, Stores: len(w.targets)}
				for _, kind := range []error{storage.ErrQuotaExceeded, storage.ErrDiskFull} {
					for _, why := range w.mu.excluded {
						if errors.Is(why, kind) {
							se.Causes = append(se.Causes, kind)
							break
						}
					}
				}
				w.mu.Unlock()
				err = se
			}
			w.fail(err)
			return 0, false
		}
		type outcome struct {
			i       int
			created bool
			err     error
		}
		results := make(chan outcome, len(pick))
		for _, i := range pick {
			tried[i] = true
			go func() {
				c, err := w.putOn(ctx, i, ref.Key, stored)
				results <- outcome{i, c, err}
			}()
		}
		for range pick {
			o := <-results
			t := w.targets[o.i]
			switch {
			case o.err == nil:
				holders = append(holders, t.ID)
				need--
				w.mu.Lock()
				w.mu.sentBytes += ref.StoredLength
				if o.created && !created {
					// New bytes count a block once, whatever its copies.
					w.mu.newBytes += ref.StoredLength
				}
				created = created || o.created
				if o.created {
					w.mu.created[o.i] = append(w.mu.created[o.i], ref.Key)
				}
				w.mu.Unlock()
			case ctx.Err() != nil:
				w.fail(ctx.Err())
				return 0, false
			default:
				if err := w.refused(o.i, ref.Key, o.err); err != nil {
					w.fail(err)
					return 0, false
				}
			}
		}
	}
	sort.Strings(holders)
	ref.Stores = holders
	return w.record(ref, false, 0), true
}

// putOn puts key's bytes on target i within its share of the window.
func (w *Writer) putOn(ctx context.Context, i int, key storage.Hash, data []byte) (bool, error) {
	select {
	case w.sems[i] <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	defer func() { <-w.sems[i] }()
	return w.targets[i].Store.Put(ctx, key, data)
}

// refused handles target i refusing key (a block, or a shard) with err:
// it returns the error the write fails with when another store would
// refuse it the same way, else drops the store for the rest of the write
// (saying so once) and returns nil, the bytes going to the next store.
func (w *Writer) refused(i int, key storage.Hash, err error) error {
	t := w.targets[i]
	berr := &storage.BlockError{Op: "put", Store: t.ID + " (" + t.Addr + ")", Hash: key, Err: err}
	if errors.Is(err, storage.ErrHashMismatch) || errors.Is(err, storage.ErrTooLarge) || errors.Is(err, storage.ErrUnauthorized) {
		return berr
	}
	if !w.exclude(i, berr) {
		return nil // already dropped: said once
	}
	if isFull(err) {
		// Said once, in Close's summary or the write's error.
		w.log.Debug("store full; moving its blocks to other stores",
			zap.String("store", t.ID), zap.String("addr", t.Addr), zap.Error(err))
		if w.opts.OnFull != nil {
			w.opts.OnFull(t.ID)
		}
		return nil
	}
	w.log.Warn("store refused a block; moving its blocks to other stores",
		zap.String("store", t.ID), zap.String("addr", t.Addr), zap.String("block", key.Short()), zap.Error(err))
	return nil
}

// tryCompress says whether to try compressing this block of its object.
func (w *Writer) tryCompress(ref manifest.Block) bool {
	k := objectKey{ref.Rank, ref.Object}
	w.mu.Lock()
	q := w.mu.squeeze[k]
	if q == nil {
		w.mu.squeeze[k] = &squeeze{every: minProbeEvery, first: make(chan struct{})}
		w.mu.Unlock()
		return true
	}
	first := q.first
	w.mu.Unlock()
	<-first
	w.mu.Lock()
	defer w.mu.Unlock()
	if q.worth() {
		return true
	}
	q.skipped++
	if q.skipped < q.every {
		return false
	}
	q.skipped = 0
	return true
}

// learn records how much a block of its object saved when compressed.
func (w *Writer) learn(ref manifest.Block, logical, stored int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	q := w.mu.squeeze[objectKey{ref.Rank, ref.Object}]
	q.tried += int64(logical)
	q.saved += int64(logical - stored)
	if q.tried > squeezeWindow {
		q.tried, q.saved = q.tried/2, q.saved/2
	}
	select {
	case <-q.first:
		if q.worth() {
			q.every = minProbeEvery
		} else {
			q.every = min(2*q.every, maxProbeEvery)
		}
	default:
		close(q.first)
	}
}

// exclude stops placing blocks on store i for the rest of this writer;
// it reports whether i was not excluded already.
func (w *Writer) exclude(i int, why error) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.mu.excluded[i]; ok {
		return false
	}
	w.mu.excluded[i] = why
	return true
}

// isFull reports whether a store refused a put for want of room.
func isFull(err error) bool {
	return errors.Is(err, storage.ErrQuotaExceeded) || errors.Is(err, storage.ErrDiskFull)
}

// Created returns, by store ID, the keys this writer put that the store
// did not hold before. After a failed or abandoned write they are what
// the write left behind; only the manager can tell whether anything else
// has come to rely on them since (storage/version discards them through
// it), so a caller must not delete them from the stores itself.
func (w *Writer) Created() map[string][]storage.Hash {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string][]storage.Hash, len(w.mu.created))
	for i, hs := range w.mu.created {
		out[w.targets[i].ID] = slices.Clone(hs)
	}
	return out
}

// dropped returns the stores excluded so far, with why, for use without
// the lock: nil when none was (the common case costs nothing), else a copy.
func (w *Writer) dropped() map[int]error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.mu.excluded) == 0 {
		return nil
	}
	return maps.Clone(w.mu.excluded)
}

// exclusions says why each dropped store was dropped.
func (w *Writer) exclusions() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for i := range w.targets {
		if why, ok := w.mu.excluded[i]; ok {
			out = append(out, why.Error())
		}
	}
	return strings.Join(out, "; ")
}

// allFull reports whether every store dropped so far was dropped for want
// of room (quota, full disk), and at least one was.
func (w *Writer) allFull() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, why := range w.mu.excluded {
		if !isFull(why) {
			return false
		}
	}
	return len(w.mu.excluded) > 0
}

// fullLocked counts the stores dropped for want of room.
func (w *Writer) fullLocked() int {
	n := 0
	for _, why := range w.mu.excluded {
		if isFull(why) {
			n++
		}
	}
	return n
}

// record adds ref to the version's blocks and returns its index there.
func (w *Writer) record(ref manifest.Block, created bool, sent int64) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.mu.blocks = append(w.mu.blocks, ref)
	w.mu.sentBytes += sent
	if created {
		w.mu.newBytes += ref.StoredLength
	}
	return len(w.mu.blocks) - 1
}

// Result is what a Writer wrote.
type Result struct {
	Blocks      []manifest.Block // sorted by rank, object, offset
	NewBytes    int64            // stored bytes of blocks no store held before, counted once (not per copy)
	SentBytes   int64            // stored bytes sent to stores
	ReusedBytes int64            // logical bytes referenced from the previous version
	Logical     int64            // logical bytes
	Replicas    int              // copies of each block the writer aimed for
	Redundancy  erasure.Scheme   // the erasure code of new blocks; zero for replicas
}

// Close waits for every outstanding put and returns the blocks written, or
// the first error.
func (w *Writer) Close(ctx context.Context) (Result, error) {
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.mu.closed {
		return Result{}, errors.New("client: writer closed twice")
	}
	w.mu.closed = true
	if w.mu.err != nil {
		return Result{}, w.mu.err
	}
	if n := w.fullLocked(); n > 0 {
		w.log.Warn(fmt.Sprintf("%d of %d stores filled up during the write; their blocks went to the other stores (free space with 'ckpt retain' and 'ckpt gc', or add stores)", n, len(w.targets)))
	}
	blocks := w.mu.blocks
	sort.Slice(blocks, func(a, b int) bool {
		x, y := blocks[a], blocks[b]
		if x.Rank != y.Rank {
			return x.Rank < y.Rank
		}
		if x.Object != y.Object {
			return x.Object < y.Object
		}
		return x.Offset < y.Offset
	})
	res := Result{Blocks: blocks, NewBytes: w.mu.newBytes, SentBytes: w.mu.sentBytes, ReusedBytes: w.mu.reused,
		Replicas: w.opts.Replicas, Redundancy: w.opts.Redundancy}
	for _, b := range blocks {
		res.Logical += b.Length
	}
	return res, nil
}
