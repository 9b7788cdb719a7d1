package version

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/crypt"
	"github.com/ckptio/ckptio/storage/erasure"
	"github.com/ckptio/ckptio/storage/manifest"
)

// ErrDone is returned by Commit on a transaction already committed or
// aborted.
var ErrDone = errors.New("version: transaction already committed or aborted")

// Txn is a version being written: a manager transaction, the previous
// version it may reuse, and the renewal of its lease. Commit or Abort ends
// it; both may be called from any goroutine, and Abort after the end does
// nothing.
type Txn struct {
	job     *Job
	kind    Kind
	id      string
	created time.Time
	prev    *Previous

	stopRenew context.CancelFunc
	renewed   sync.WaitGroup

	mu   sync.Mutex
	done bool
}

// Begin starts a version of kind. meta is the meta the version will be
// committed with as far as it decides reuse (the encryption key's
// fields, catalog.MetaEncrypted and MetaFingerprint): the job's latest
// version becomes the Previous one only if it has the same kind and was
// encrypted with the same key, or both were not.
func (j *Job) Begin(ctx context.Context, kind Kind, meta map[string]string) (*Txn, error) {
	t0, err := j.Catalog.Begin(ctx, j.Name)
	if err != nil {
		return nil, err
	}
	t := &Txn{job: j, kind: kind, id: t0.ID, created: time.Now().UTC()}
	// After Begin: the stores' confirmations of the previous version's
	// blocks come after the transaction began, which protects those
	// blocks from garbage collection (doc.go).
	raw, _, err := j.Catalog.ManifestBytes(ctx, j.Name, 0)
	switch {
	case err == nil:
		prev, perr := ParsePrevious(raw)
		if perr != nil {
			j.Catalog.Abort(context.WithoutCancel(ctx), t.id)
			return nil, fmt.Errorf("version: the latest version of %s: %w", j.Name, perr)
		}
		// Blocks are reused only under the same redundancy: a coded row
		// is not a copy, nor a copy a shard (doc.go).
		psc, _ := catalog.ParseRedundancy(prev.m.Meta)
		if prev.m.Kind == kind && crypt.SameKey(prev.m.Meta, meta) && psc == j.Writer.Redundancy {
			t.prev = prev
		}
	case errors.Is(err, catalog.ErrNoVersions), errors.Is(err, catalog.ErrUnknownJob):
	default:
		j.Catalog.Abort(context.WithoutCancel(ctx), t.id)
		return nil, fmt.Errorf("version: reading the previous version of %s: %w", j.Name, err)
	}
	rctx, cancel := context.WithCancel(context.Background())
	t.stopRenew = cancel
	t.renewed.Add(1)
	go t.renew(rctx)
	return t, nil
}

func (t *Txn) renew(ctx context.Context) {
	defer t.renewed.Done()
	every := t.job.RenewEvery
	if every <= 0 {
		every = DefaultRenewEvery
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if err := t.job.Catalog.Renew(ctx, t.id); err != nil && ctx.Err() == nil {
				t.job.log().Warn("renewing the version's lease failed", zap.String("job", t.job.Name), zap.Error(err))
			}
		}
	}
}

// ID is the manager's transaction ID.
func (t *Txn) ID() string { return t.id }

// Previous is the version this one may reuse blocks from; nil when there
// is none (a first version, another kind, another key).
func (t *Txn) Previous() *Previous { return t.prev }

// end stops the renewal and marks the transaction ended; it reports
// whether it had ended already.
func (t *Txn) end() bool {
	t.mu.Lock()
	done := t.done
	t.done = true
	t.mu.Unlock()
	if !done {
		t.stopRenew()
		t.renewed.Wait()
	}
	return done
}

// Committed describes a committed version.
type Committed struct {
	Version      int64
	LogicalBytes int64
	NewBytes     int64 // stored bytes no store held before, counted once
	SentBytes    int64 // stored bytes sent to stores, every copy
	Replicas     int   // the replication target recorded
	// Redundancy is the erasure code recorded; zero for replicas.
	Redundancy erasure.Scheme
	// Stores counts the distinct stores the blocks of the parts written in
	// this process are on; 0 when every part came from elsewhere.
	Stores int
}

// Commit commits the blocks of parts (in order) as the version, with meta
// (the caller's; the replication target is added) and returns it. The
// manifest is put together from the parts' encodings without decoding
// them (manifest.Splice). On failure the transaction is aborted: nothing
// is listed.
func (t *Txn) Commit(ctx context.Context, meta map[string]string, parts ...*Part) (Committed, error) {
	if t.end() {
		return Committed{}, ErrDone
	}
	abort := func() { t.job.Catalog.Abort(context.WithoutCancel(ctx), t.id) }
	hdr := &manifest.Manifest{Job: t.job.Name, Created: t.created, Kind: t.kind, Meta: maps.Clone(meta)}
	if hdr.Meta == nil {
		hdr.Meta = map[string]string{}
	}
	var c Committed
	data := make([][]byte, len(parts))
	stores := map[string]bool{}
	for i, p := range parts {
		if i > 0 && p.redundancy != c.Redundancy {
			abort()
			return Committed{}, fmt.Errorf("version: the writers of a version of %s used different redundancy (%s and %s): a version is erasure-coded with one scheme or replicated",
				t.job.Name, schemeName(c.Redundancy), schemeName(p.redundancy))
		}
		c.Redundancy = p.redundancy
		data[i] = p.data
		hdr.LogicalBytes += p.hdr.LogicalBytes
		hdr.NewBytes += p.hdr.NewBytes
		hdr.SentBytes += p.hdr.SentBytes
		c.Replicas = max(c.Replicas, p.replicas)
		for _, id := range p.stores {
			stores[id] = true
		}
	}
	c.Replicas = max(1, c.Replicas)
	hdr.Meta[catalog.MetaReplicas] = strconv.Itoa(c.Replicas)
	delete(hdr.Meta, catalog.MetaRedundancy)
	if !c.Redundancy.IsZero() {
		hdr.Meta[catalog.MetaRedundancy] = c.Redundancy.String()
	}
	hdr.Meta[catalog.MetaTxn] = t.id // finds a commit whose answer was lost (catalog.Retrying)
	raw, err := manifest.Splice(hdr, data...)
	if err != nil {
		abort()
		return Committed{}, fmt.Errorf("version: the manifest of %s: %w", t.job.Name, err)
	}
	n, err := t.job.Catalog.Commit(ctx, t.id, raw)
	if err != nil {
		abort()
		return Committed{}, fmt.Errorf("version: committing a version of %s: %w", t.job.Name, err)
	}
	c.Version, c.LogicalBytes, c.NewBytes, c.SentBytes, c.Stores = n, hdr.LogicalBytes, hdr.NewBytes, hdr.SentBytes, len(stores)
	return c, nil
}

// Abort discards the transaction: nothing is listed, and the blocks
// already stored are left to garbage collection. After Commit or Abort it
// does nothing and returns nil.
func (t *Txn) Abort(ctx context.Context) error {
	if t.end() {
		return nil
	}
	return t.job.Catalog.Abort(ctx, t.id)
}

// Discarder is implemented by catalogs that can delete the blocks an
// aborted write left behind (*catalog.Client: POST /v1/blocks/discard).
type Discarder interface {
	Discard(ctx context.Context, stores map[string][]storage.Hash) (catalog.DiscardReport, error)
}

// AbortDiscarding is Abort followed by a discard of the blocks the
// writers created (Writer.Created): the manager deletes those that no
// committed version names and that no writer in flight has touched
// (catalog.DiscardRequest), so a concurrent writer that deduplicated
// against one of them keeps it. The rest, and everything when the
// catalog cannot discard, is left to garbage collection. It returns the
// discard's report; after Commit it does nothing.
func (t *Txn) AbortDiscarding(ctx context.Context, ws ...*Writer) (catalog.DiscardReport, error) {
	if t.end() {
		return catalog.DiscardReport{}, nil
	}
	if err := t.job.Catalog.Abort(ctx, t.id); err != nil {
		// The transaction still holds the horizon: a discard would
		// delete nothing.
		return catalog.DiscardReport{}, err
	}
	d, ok := t.job.Catalog.(Discarder)
	if !ok {
		return catalog.DiscardReport{}, nil
	}
	created := map[string][]storage.Hash{}
	for _, w := range ws {
		if w == nil {
			continue
		}
		for id, hs := range w.Created() {
			created[id] = append(created[id], hs...)
		}
	}
	if len(created) == 0 {
		return catalog.DiscardReport{}, nil
	}
	rep, err := d.Discard(ctx, created)
	if err != nil {
		return rep, fmt.Errorf("version: discarding the blocks of an aborted version of %s (garbage collection will): %w", t.job.Name, err)
	}
	return rep, nil
}

// Previous is a committed version a new one may reuse blocks from: its
// blocks by logical hash. It is read-only and safe for concurrent use.
type Previous struct {
	raw []byte
	m   *manifest.Manifest
	// idx maps a block's logical hash to its row in m.Blocks: an int32
	// per block rather than a copy of its row.
	idx map[storage.Hash]int32
}

// ParsePrevious decodes an encoded manifest (Previous.Bytes, from another
// process) as a Previous version; nil bytes give a nil Previous (none).
func ParsePrevious(raw []byte) (*Previous, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	m, err := manifest.Unmarshal(raw)
	if err != nil {
		return nil, err
	}
	p := &Previous{raw: raw, m: m, idx: make(map[storage.Hash]int32, len(m.Blocks))}
	for i, b := range m.Blocks {
		if b.Length > 0 && len(b.Stores) > 0 {
			p.idx[b.Hash] = int32(i)
		}
	}
	return p, nil
}

// Bytes is the encoded manifest, to hand to the other processes that
// write the version; nil for a nil Previous.
func (p *Previous) Bytes() []byte {
	if p == nil {
		return nil
	}
	return p.raw
}

// DropBytes lets the encoding go once nobody needs Bytes any more (it
// was sent to the other writers, or there are none): it is as large as
// the version's block list, about 150 bytes a block, 10 MiB at 4 GiB of
// 64 KiB blocks. Bytes returns nil after. Nothing else changes.
func (p *Previous) DropBytes() {
	if p != nil {
		p.raw = nil
	}
}

// Version is the previous version's number; 0 for a nil Previous.
func (p *Previous) Version() int64 {
	if p == nil {
		return 0
	}
	return p.m.Version
}

// row returns the row of the previous version's block with logical hash h
// and length n.
func (p *Previous) row(h storage.Hash, n int64) (int32, bool) {
	if p == nil {
		return 0, false
	}
	i, ok := p.idx[h]
	if !ok || p.m.Blocks[i].Length != n {
		return 0, false
	}
	return i, true
}

// Part is the blocks one writer wrote, encoded as a manifest of their own:
// what a writer hands to the process that commits (Bytes, ParsePart).
type Part struct {
	data       []byte
	hdr        *manifest.Manifest // the part's figures; no blocks
	replicas   int
	redundancy erasure.Scheme
	stores     []string // known only where the part was written
}

// schemeName is a scheme's name, "replicas" for none.
func schemeName(sc erasure.Scheme) string {
	if sc.IsZero() {
		return "replicas"
	}
	return sc.String()
}

// Bytes is the part's encoding.
func (p *Part) Bytes() []byte { return p.data }

// ParsePart reads a part's encoding. Only its figures are decoded; its
// blocks are decoded by the manager when the version commits.
func ParsePart(data []byte) (*Part, error) {
	hdr, err := manifest.Header(data)
	if err != nil {
		return nil, fmt.Errorf("version: a writer's blocks: %w", err)
	}
	r, err := catalog.ParseReplicas(hdr.Meta)
	if err != nil {
		return nil, fmt.Errorf("version: a writer's blocks: %w", err)
	}
	sc, err := catalog.ParseRedundancy(hdr.Meta)
	if err != nil {
		return nil, fmt.Errorf("version: a writer's blocks: %w", err)
	}
	return &Part{data: data, hdr: hdr, replicas: r, redundancy: sc}, nil
}

// newPart encodes a writer's blocks as a part.
func newPart(job string, blocks []manifest.Block, entries []manifest.Entry, logical, newBytes, sent int64, replicas int, sc erasure.Scheme) (*Part, error) {
	m := &manifest.Manifest{Job: job, LogicalBytes: logical, NewBytes: newBytes, SentBytes: sent, Blocks: blocks, Entries: entries,
		Meta: map[string]string{catalog.MetaReplicas: strconv.Itoa(max(1, replicas))}}
	if !sc.IsZero() {
		m.Meta[catalog.MetaRedundancy] = sc.String()
	}
	data, err := manifest.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("version: encoding a writer's blocks: %w", err)
	}
	seen := map[string]bool{}
	var stores []string
	for _, b := range blocks {
		for _, id := range b.Stores {
			if !seen[id] {
				seen[id] = true
				stores = append(stores, id)
			}
		}
	}
	slices.Sort(stores)
	m.Blocks, m.Entries = nil, nil
	return &Part{data: data, hdr: m, replicas: max(1, replicas), redundancy: sc, stores: stores}, nil
}

// Write writes a whole version in this process: Begin, one Writer over
// the previous version, fill (which writes the objects), Commit. When
// fill or anything else fails, nothing is listed and the error is
// returned.
func (j *Job) Write(ctx context.Context, kind Kind, meta map[string]string, fill func(*Writer) error) (Committed, error) {
	txn, err := j.Begin(ctx, kind, meta)
	if err != nil {
		return Committed{}, err
	}
	defer txn.Abort(context.WithoutCancel(ctx)) // unless committed
	w, err := j.NewWriter(ctx, txn.Previous(), Hints{})
	if err != nil {
		return Committed{}, err
	}
	ferr := fill(w)
	part, err := w.Close(ctx)
	if ferr != nil {
		return Committed{}, ferr
	}
	if err != nil {
		return Committed{}, err
	}
	return txn.Commit(ctx, meta, part)
}
