package version

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"go.uber.org/zap"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/client"
	"github.com/ckptio/ckptio/storage/erasure"
	"github.com/ckptio/ckptio/storage/manifest"
)

// Ref names a block of an object: where it sits and what it holds.
type Ref struct {
	Object string
	Rank   int32 // MPI rank owning the object; -1 for files
	Offset int64
	Length int64
	Hash   storage.Hash // BLAKE3-256 of the block's bytes
}

// Hints size one writer; zero fields take the job's options.
type Hints struct {
	BlockSize    int   // the largest block the writer is given
	MaxBuffered  int64 // bytes handed to the writer and not yet stored
	ExpectBlocks int   // about how many blocks it will write
	// Bytes, if known, is at most how many logical bytes the writer will
	// be given: NewWriter fails with a *client.SpaceError, before
	// anything is sent, when Bytes times the copies of each block exceed
	// the free space of the alive stores that are not draining (an upper
	// bound: compression and reuse only lower what is stored); an
	// erasure-coded job needs Bytes times (K+M)/K.
	Bytes int64
}

// Writer writes blocks of a version and decides, for each, whether the
// previous version's copy is reused (the rule in doc.go). Its methods are
// safe for concurrent use; Close is called once, after the last write. The
// first error is sticky.
type Writer struct {
	w      *client.Writer
	job    string
	prev   *Previous
	copies int // copies a block needs before it is done: the reuse bar
	// coded: the writer erasure-codes its blocks; only coded rows of the
	// same scheme, every shard confirmed, are reused then.
	coded erasure.Scheme
	// stores answer which blocks they hold: every live store, those
	// without room included.
	stores map[string]storage.BlockStore
	log    *zap.Logger
	// For CheckSpace: the pool, the stores the writer was opened over
	// (with and without room) and its options.
	pool          *client.Pool
	targets, full []client.Target
	opts          client.WriterOptions

	mu struct {
		sync.Mutex
		// planned: blocks Plan found in the previous version and left to
		// be written, with the copies of them confirmed (maybe none).
		planned map[storage.Hash]held
		entries []manifest.Entry
		names   map[entryKey]bool
	}
}

type entryKey struct {
	name string
	rank int32
}

// held is a block's stored key and the stores that confirmed a copy.
type held struct {
	key    storage.Hash
	stores []string
}

// NewWriter opens a writer over the live stores that reuses blocks of prev
// (nil: none).
func (j *Job) NewWriter(ctx context.Context, prev *Previous, h Hints) (*Writer, error) {
	targets, full, err := j.Pool.Targets(ctx)
	if err != nil {
		return nil, err
	}
	opts := j.Writer
	if h.BlockSize > 0 {
		opts.BlockSize = h.BlockSize
	}
	if h.MaxBuffered > 0 {
		opts.MaxBuffered = h.MaxBuffered
	}
	if h.ExpectBlocks > 0 {
		opts.ExpectBlocks = h.ExpectBlocks
	}
	if opts.Logger == nil {
		opts.Logger = j.Logger
	}
	w := &Writer{job: j.Name, prev: prev, stores: map[string]storage.BlockStore{}, log: j.log()}
	w.mu.planned = map[storage.Hash]held{}
	for _, t := range slices.Concat(targets, full) {
		w.stores[t.ID] = t.Store
	}
	opts.Before = w.decide
	onFull := opts.OnFull
	opts.OnFull = func(id string) {
		j.Pool.MarkFull(id)
		if onFull != nil {
			onFull(id)
		}
	}
	w.pool, w.targets, w.full, w.opts = j.Pool, targets, full, opts
	if h.Bytes > 0 {
		if err := w.CheckSpace(ctx, h.Bytes); err != nil {
			return nil, err
		}
	}
	if w.w, err = client.NewWriter(targets, opts); err != nil {
		return nil, err
	}
	w.copies = w.w.Copies()
	w.coded = opts.Redundancy
	return w, nil
}

// Created returns, by store ID, the blocks this writer put that the
// store did not hold before: what Txn.AbortDiscarding discards.
func (w *Writer) Created() map[string][]storage.Hash { return w.w.Created() }

// CheckSpace fails with a *client.SpaceError ("cluster out of space:
// need X, free Y on N stores"), before anything more is sent, when the
// alive stores that are not draining have less free space than bytes
// logical bytes need at this writer's copies (erasure-coded: (K+M)/K of
// them): Hints.Bytes, for a size known only after Plan. The manager's
// figures are a heartbeat old, so the stores are asked before refusing.
func (w *Writer) CheckSpace(ctx context.Context, bytes int64) error {
	if bytes <= 0 {
		return nil
	}
	copies := w.opts.Replicas
	if copies <= 0 {
		copies = min(2, len(w.targets))
	}
	if w.opts.Optimistic {
		copies = 1
	}
	need := bytes * int64(copies)
	if sc := w.opts.Redundancy; !sc.IsZero() {
		need = bytes + (bytes*int64(sc.Parity)+int64(sc.Data)-1)/int64(sc.Data)
	}
	if client.CheckSpace(w.targets, w.full, need) == nil {
		return nil
	}
	targets, full := w.pool.Restat(ctx, slices.Concat(w.targets, w.full))
	return client.CheckSpace(targets, full, need)
}

// Plan decides, for blocks whose data the caller has not moved yet,
// which the previous version's copies stand for: those are recorded in
// the version now and need no data. It returns, per block, whether Put
// must be given its data. One batched Has per store, stores in parallel.
func (w *Writer) Plan(ctx context.Context, refs []Ref) ([]bool, error) {
	need := make([]bool, len(refs))
	// Candidates by their row in the previous manifest: no block record
	// is copied per block.
	rows := make([]int32, 0, len(refs))
	where := make([]int32, 0, len(refs))
	for i, r := range refs {
		need[i] = true
		if row, ok := w.prev.row(r.Hash, r.Length); ok {
			rows = append(rows, row)
			where = append(where, int32(i))
		}
	}
	if len(rows) == 0 {
		return need, nil
	}
	confirmed, err := w.confirm(ctx, rows)
	if err != nil {
		return nil, fmt.Errorf("version: confirming unchanged blocks: %w", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for k, i := range where {
		r := refs[i]
		if h, reused := w.reuse(rows[k], confirmed[k], r.Object, r.Rank, r.Offset); reused {
			need[i] = false
		} else {
			w.mu.planned[r.Hash] = h
		}
	}
	return need, nil
}

// Put writes one block. A block Plan did not decide is decided here, from
// its data's hash: referenced when the previous version's copies suffice,
// written otherwise (only its missing copies when some are confirmed).
// data belongs to the writer until release is called (release may be nil);
// Put blocks while the writer's buffer is full.
func (w *Writer) Put(ctx context.Context, ref Ref, data []byte, release func()) error {
	return w.w.PutBlock(ctx, manifest.Block{Object: ref.Object, Rank: ref.Rank, Offset: ref.Offset, Hash: ref.Hash}, data, release)
}

// WriteObject cuts everything r yields into blocks (the job's block size
// or chunker) and Puts them; it returns the object's size. An empty object
// is recorded too.
func (w *Writer) WriteObject(ctx context.Context, name string, rank int32, r io.Reader) (int64, error) {
	return w.w.WriteObject(ctx, name, rank, r)
}

// AddEntry records the metadata of a file, directory or symlink the
// version holds (the entries of storage/manifest). A file's data are
// written under the same name and rank with WriteObject, Put or Plan; a
// directory or a symlink has none: the writer records its empty row.
func (w *Writer) AddEntry(e manifest.Entry) error {
	if err := manifest.CheckPath(e.Object); err != nil {
		return fmt.Errorf("version: entry: %w", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	k := entryKey{e.Object, e.Rank}
	if w.mu.names[k] {
		return fmt.Errorf("version: entry %q rank %d given twice", e.Object, e.Rank)
	}
	if w.mu.names == nil {
		w.mu.names = map[entryKey]bool{}
	}
	w.mu.names[k] = true
	w.mu.entries = append(w.mu.entries, e)
	return nil
}

// Close waits for every block and returns the writer's blocks and
// entries as a Part.
func (w *Writer) Close(ctx context.Context) (*Part, error) {
	res, err := w.w.Close(ctx)
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	entries := w.mu.entries
	w.mu.Unlock()
	blocks := res.Blocks
	for _, e := range entries {
		if e.Type == manifest.TypeDir || e.Type == manifest.TypeSymlink {
			blocks = append(blocks, manifest.Block{Object: e.Object, Rank: e.Rank})
		}
	}
	return newPart(w.job, blocks, entries, res.Logical, res.NewBytes, res.SentBytes, res.Replicas, res.Redundancy)
}

// decide is the striping writer's Before hook: the reuse rule for a block
// whose hash is known (doc.go). It runs in the block's goroutine.
func (w *Writer) decide(ctx context.Context, b *manifest.Block) bool {
	w.mu.Lock()
	h, planned := w.mu.planned[b.Hash]
	w.mu.Unlock()
	if !planned {
		row, ok := w.prev.row(b.Hash, b.Length)
		if !ok {
			return false
		}
		confirmed, err := w.confirm(ctx, []int32{row})
		if err != nil {
			return false
		}
		var reused bool
		if h, reused = w.reuse(row, confirmed[0], b.Object, b.Rank, b.Offset); reused {
			return true
		}
	}
	b.Key, b.Stores = h.key, h.stores
	return false
}

// reuse is the reuse rule (doc.go) for the previous version's block at
// row, confirmed on the stores in confirmed: with enough copies it is
// referenced as the block at offset of object (rank) and reuse reports
// true; otherwise it returns the copies a write of the block counts.
func (w *Writer) reuse(row int32, confirmed []string, object string, rank int32, offset int64) (held, bool) {
	b := w.prev.m.Blocks[row]
	if b.Erasure() || !w.coded.IsZero() {
		// A coded row is reused whole (confirm lists its stores only
		// when every shard is held) and only by a writer of its scheme;
		// otherwise the block is written afresh.
		if confirmed == nil || b.DataShards != w.coded.Data || len(b.Shards) != w.coded.Shards() {
			return held{}, false
		}
	} else if len(confirmed) < w.copies {
		return held{key: b.Key, stores: confirmed}, false
	}
	b.Stores = confirmed
	w.w.Reference(b, object, rank, offset)
	return held{}, true
}

// confirm asks the stores listed for each block (rows of the previous
// manifest) whether they hold it, which also touches it, protecting it
// from garbage collection while this version is written, and returns, per
// block, the stores that do. A block
// that every listed store confirmed keeps its Stores slice, so nothing is
// allocated per block in the common case. A store that does not answer
// confirms nothing (its blocks are sent again); only ctx ending is an
// error.
func (w *Writer) confirm(ctx context.Context, rows []int32) ([][]string, error) {
	type ask struct {
		idx []int32
		hs  []storage.Hash
		has []bool // the store's answer
	}
	blocks := w.prev.m.Blocks
	asks := map[string]*ask{}
	for i, row := range rows {
		b := &blocks[row]
		for j, id := range b.Stores {
			if _, ok := w.stores[id]; !ok {
				continue
			}
			a := asks[id]
			if a == nil {
				a = &ask{}
				asks[id] = a
			}
			a.idx = append(a.idx, int32(i))
			if b.Erasure() {
				a.hs = append(a.hs, b.Shards[j]) // Stores[j] holds shard j
			} else {
				a.hs = append(a.hs, b.Key)
			}
		}
	}
	count := make([]int32, len(rows))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for id, a := range asks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			has, err := w.stores[id].Has(ctx, a.hs)
			if err == nil && len(has) != len(a.hs) {
				err = fmt.Errorf("%d answers to %d questions", len(has), len(a.hs))
			}
			if err != nil {
				if !errors.Is(err, context.Canceled) {
					w.log.Warn("store did not answer which blocks it holds; sending them again",
						zap.String("store", id), zap.Error(err))
				}
				return
			}
			mu.Lock()
			defer mu.Unlock()
			a.has = has
			for j, ok := range has {
				if ok {
					count[a.idx[j]]++
				}
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([][]string, len(rows))
	for i, row := range rows {
		if int(count[i]) == len(blocks[row].Stores) {
			out[i] = blocks[row].Stores
		}
	}
	// A coded row's stores are positional: it is listed whole or not at
	// all.
	for id, a := range asks {
		for j, ok := range a.has {
			if i := a.idx[j]; ok && int(count[i]) < len(blocks[rows[i]].Stores) && !blocks[rows[i]].Erasure() {
				out[i] = append(out[i], id)
			}
		}
	}
	for i, row := range rows {
		if int(count[i]) < len(blocks[row].Stores) && !blocks[row].Erasure() {
			slices.Sort(out[i])
		}
	}
	return out, nil
}
