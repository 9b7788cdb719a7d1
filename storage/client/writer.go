package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"go.uber.org/zap"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/manifest"
)

// DefaultBlockSize is the size a Writer cuts objects into when
// WriterOptions.BlockSize is zero.
const DefaultBlockSize = 1 << 20

// DefaultWindow is the number of puts a Writer keeps outstanding per store
// when WriterOptions.Window is zero. Chosen by BenchmarkPutWindow in
// storage/remote (docs/benchmarks.md): throughput over loopback stops
// growing past it.
const DefaultWindow = 16

// Target is a store a Writer may place blocks on.
type Target struct {
	ID    string             // the store's stable identity, recorded in the manifest
	Addr  string             // for messages
	Free  int64              // bytes it can still take; weights placement
	Store storage.BlockStore // the connection; the Writer does not close it
}

// WriterOptions tunes a Writer. Zero values pick the defaults.
type WriterOptions struct {
	BlockSize int // bytes per block; 0 = DefaultBlockSize
	Window    int // outstanding puts per store; 0 = DefaultWindow
	// MaxBuffered bounds the bytes of blocks handed to the writer and not
	// yet acknowledged, across all stores; 0 = only the per-store windows
	// bound it. PutBlock blocks while the bound is reached.
	MaxBuffered int64
	Logger      *zap.Logger // nil = no logging
}

// Writer stripes the blocks of one version over a set of stores. Its methods
// are safe for concurrent use; Close must be called once, after the last
// write, and returns the blocks written. The first error is sticky: every
// later call returns it.
type Writer struct {
	opts    WriterOptions
	targets []Target
	sems    []chan struct{}
	budget  chan struct{} // one token per block buffered; nil = unbounded
	place   *placer
	log     *zap.Logger
	bufs    sync.Pool
	wg      sync.WaitGroup

	mu struct {
		sync.Mutex
		blocks    []manifest.Block
		newBytes  int64
		sentBytes int64
		err       error
		closed    bool
	}
}

// NewWriter returns a Writer over targets. It fails when there is none.
func NewWriter(targets []Target, opts WriterOptions) (*Writer, error) {
	if len(targets) == 0 {
		return nil, errors.New("client: no live store to write to (are ckpt-store daemons running and registered with the manager? see 'ckpt stores')")
	}
	if opts.BlockSize <= 0 {
		opts.BlockSize = DefaultBlockSize
	}
	if opts.BlockSize > storage.MaxBlockSize {
		return nil, fmt.Errorf("client: block size %d above the limit %d", opts.BlockSize, storage.MaxBlockSize)
	}
	if opts.Window <= 0 {
		opts.Window = DefaultWindow
	}
	w := &Writer{opts: opts, targets: targets, log: opts.Logger}
	if w.log == nil {
		w.log = zap.NewNop()
	}
	free := make([]int64, len(targets))
	for i, t := range targets {
		free[i] = t.Free
		w.sems = append(w.sems, make(chan struct{}, opts.Window))
	}
	w.place = newPlacer(free)
	if opts.MaxBuffered > 0 {
		w.budget = make(chan struct{}, max(1, opts.MaxBuffered/int64(opts.BlockSize)))
	}
	bs := opts.BlockSize
	w.bufs.New = func() any { b := make([]byte, bs); return &b }
	return w, nil
}

// BlockSize is the size objects are cut into.
func (w *Writer) BlockSize() int { return w.opts.BlockSize }

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

// WriteObject cuts everything r yields into blocks and puts them; it returns
// the object's size. An empty object is recorded too.
func (w *Writer) WriteObject(ctx context.Context, name string, rank int32, r io.Reader) (int64, error) {
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

// PutBlock places one block of an object. ref names the object, rank and
// offset; its other fields are filled in. data is owned by the writer until
// release is called (release may be nil). PutBlock blocks while the chosen
// store's window is full, which bounds the writer's memory to Window blocks
// per store. An empty data records an empty object.
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
	ref.Codec = manifest.CodecRaw
	if len(data) == 0 {
		ref.Stores = nil
		w.record(ref, false)
		done()
		return nil
	}
	ref.Hash = storage.Sum(data)
	ref.Key = ref.Hash
	ref.StoredLength = int64(len(data))

	if w.budget != nil {
		select {
		case w.budget <- struct{}{}:
		case <-ctx.Done():
			done()
			w.fail(ctx.Err())
			return ctx.Err()
		}
		inner := done
		done = func() { <-w.budget; inner() }
	}
	i, err := w.acquire(ctx, nil)
	if err != nil {
		done()
		w.fail(err)
		return err
	}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer done()
		w.put(ctx, i, ref, data)
	}()
	return nil
}

// acquire picks a store and takes a slot of its window.
func (w *Writer) acquire(ctx context.Context, skip map[int]bool) (int, error) {
	i := w.place.next(skip)
	if i < 0 {
		return -1, errors.New("client: every store refused or failed; no store left to write to")
	}
	select {
	case w.sems[i] <- struct{}{}:
		return i, nil
	case <-ctx.Done():
		return -1, ctx.Err()
	}
}

// put stores one block on store i (whose window slot the caller holds),
// moving it to another store when i refuses it.
func (w *Writer) put(ctx context.Context, i int, ref manifest.Block, data []byte) {
	var errs []string
	tried := map[int]bool{}
	for {
		t := w.targets[i]
		created, err := t.Store.Put(ctx, ref.Key, data)
		<-w.sems[i]
		if err == nil {
			ref.Stores = []string{t.ID}
			w.record(ref, created)
			return
		}
		if ctx.Err() != nil {
			w.fail(ctx.Err())
			return
		}
		berr := &storage.BlockError{Op: "put", Store: t.ID + " (" + t.Addr + ")", Hash: ref.Key, Err: err}
		if errors.Is(err, storage.ErrHashMismatch) || errors.Is(err, storage.ErrTooLarge) || errors.Is(err, storage.ErrUnauthorized) {
			// Another store would refuse it the same way.
			w.fail(berr)
			return
		}
		w.log.Warn("store refused a block; moving it to another store",
			zap.String("store", t.ID), zap.String("addr", t.Addr), zap.String("block", ref.Key.Short()), zap.Error(err))
		w.place.exclude(i)
		errs = append(errs, berr.Error())
		tried[i] = true
		i, err = w.acquire(ctx, tried)
		if err != nil {
			w.fail(fmt.Errorf("client: block %s of %q at offset %d: no store took it: %s",
				ref.Key.Short(), ref.Object, ref.Offset, strings.Join(errs, "; ")))
			return
		}
	}
}

func (w *Writer) record(ref manifest.Block, created bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.mu.blocks = append(w.mu.blocks, ref)
	w.mu.sentBytes += ref.StoredLength
	if created {
		w.mu.newBytes += ref.StoredLength
	}
}

// Result is what a Writer wrote.
type Result struct {
	Blocks    []manifest.Block // sorted by rank, object, offset
	NewBytes  int64            // stored bytes no store held before
	SentBytes int64            // stored bytes sent
	Logical   int64            // logical bytes
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
	res := Result{Blocks: blocks, NewBytes: w.mu.newBytes, SentBytes: w.mu.sentBytes}
	for _, b := range blocks {
		res.Logical += b.Length
	}
	return res, nil
}
