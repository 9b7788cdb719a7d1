package manager

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/erasure"
	"github.com/ckptio/ckptio/storage/manifest"
)

// RepairStore is what health checks and repair need of a store, on top of
// garbage collection's primitives: the batched Has (which also touches the
// blocks it reports held), Get and Put of storage.BlockStore, with the
// same contracts. The connections Options.DialStore returns must implement
// it for Health and Repair; *remote.Store does. Methods are called from
// several goroutines at once.
type RepairStore interface {
	GCStore
	Has(ctx context.Context, hs []storage.Hash) ([]bool, error)
	Get(ctx context.Context, h storage.Hash) ([]byte, error)
	Put(ctx context.Context, h storage.Hash, data []byte) (created bool, err error)
}

// storeConns dials the alive stores of one health check or repair pass
// on first use, once each, and keeps a report per store.
type storeConns struct {
	m     *Manager
	alive map[string]catalog.StoreInfo

	mu struct {
		sync.Mutex
		slots   map[string]*connSlot
		reports map[string]*catalog.RepairStoreReport
	}
}

type connSlot struct {
	once sync.Once
	s    RepairStore
	err  error
}

func newStoreConns(m *Manager, alive map[string]catalog.StoreInfo) *storeConns {
	c := &storeConns{m: m, alive: alive}
	c.mu.slots = make(map[string]*connSlot)
	c.mu.reports = make(map[string]*catalog.RepairStoreReport)
	return c
}

// get returns the connection to alive store id, dialing it the first time.
// A failed dial is not retried within the pass.
func (c *storeConns) get(ctx context.Context, id string) (RepairStore, error) {
	c.mu.Lock()
	slot, ok := c.mu.slots[id]
	if !ok {
		slot = &connSlot{}
		c.mu.slots[id] = slot
	}
	c.mu.Unlock()
	slot.once.Do(func() {
		st, ok := c.alive[id]
		if !ok {
			slot.err = fmt.Errorf("store %s is not alive", id)
			return
		}
		s, err := c.m.opts.DialStore(ctx, st.ID, st.Addr)
		if err != nil {
			slot.err = err
			return
		}
		rs, ok := s.(RepairStore)
		if !ok {
			s.Close()
			slot.err = fmt.Errorf("store %s: the connection (%T) cannot check or copy blocks", id, s)
			return
		}
		slot.s = rs
	})
	if slot.err != nil {
		c.report(id, func(r *catalog.RepairStoreReport) {}, slot.err)
	}
	return slot.s, slot.err
}

// report updates store id's report under the lock; a non-nil err is kept
// when it is the store's first.
func (c *storeConns) report(id string, f func(r *catalog.RepairStoreReport), err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.mu.reports[id]
	if !ok {
		r = &catalog.RepairStoreReport{ID: id, Addr: c.alive[id].Addr}
		c.mu.reports[id] = r
	}
	f(r)
	if err != nil && r.Error == "" {
		r.Error = err.Error()
	}
}

// failed reports whether store id had an error in this pass.
func (c *storeConns) failed(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.mu.reports[id]
	return ok && r.Error != ""
}

// reports returns the stores' reports, ordered by ID.
func (c *storeConns) reports() []catalog.RepairStoreReport {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]catalog.RepairStoreReport, 0, len(c.mu.reports))
	for _, r := range c.mu.reports {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b catalog.RepairStoreReport) int { return cmpString(a.ID, b.ID) })
	return out
}

func (c *storeConns) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, slot := range c.mu.slots {
		if slot.s != nil {
			slot.s.Close()
		}
	}
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// blockState is one distinct block key of the versions surveyed.
type blockState struct {
	size   int64    // stored bytes
	target int      // highest target among the versions naming it
	listed []string // union of the stores the manifests list, sorted
	held   []string // alive listed stores that answered held, sorted
	// unsure are alive listed stores that did not answer (dial or Has
	// failed): not counted as copies, not dropped from the manifests.
	unsure []string
	// draining are alive listed stores being drained that answered
	// held: read from, counted by health, but not as copies by repair.
	draining []string
	stale    bool // an alive listed store answered "not held"
	// split: the versions naming this key list different stores for it,
	// so some version's own list may miss holders the others name; its
	// rows are rewritten to the full set even when enough copies exist.
	split bool
	first []string // the first list seen, to detect a split
}

// codedState is one distinct erasure-coded block of the versions
// surveyed (keyed by its Key, the joined stored bytes'). Per shard i, in
// shard order, the stores the manifests list for it and what they said.
type codedState struct {
	sc     erasure.Scheme
	size   int64 // stored bytes of the whole block
	shards []storage.Hash
	listed [][]string // per shard: the stores listed ("" left out), sorted
	held   [][]string // per shard: alive listed stores that answered held
	// draining: alive draining stores that answered held (read from,
	// counted by health, moved by repair); unsure: alive listed stores
	// that did not answer.
	draining [][]string
	unsure   [][]string
	stale    bool // an alive listed store answered "not held"
	split    bool // versions list different stores for some shard
	first    []string
}

// live counts the shards some alive store was found holding.
func (cs *codedState) live() int {
	n := 0
	for i := range cs.shards {
		if len(cs.held[i])+len(cs.draining[i]) > 0 {
			n++
		}
	}
	return n
}

// maybe counts the shards held or possibly held (a store did not answer).
func (cs *codedState) maybe() int {
	n := 0
	for i := range cs.shards {
		if len(cs.held[i])+len(cs.draining[i])+len(cs.unsure[i]) > 0 {
			n++
		}
	}
	return n
}

// surveyVersion is one version surveyed: its target and, per manifest row
// holding data, the index of its key in survey.keys (replicated rows) or
// survey.coded (erasure-coded rows).
type surveyVersion struct {
	version int64
	target  int
	rows    []int32
	scheme  erasure.Scheme // of an erasure-coded version
	coded   []int32
}

// survey is the state of one job's blocks on the alive stores, from its
// manifests and a batched Has to every alive store they list.
type survey struct {
	job      string
	keys     []storage.Hash
	index    map[storage.Hash]int32 // position in keys
	blocks   []blockState
	versions []surveyVersion
	// Erasure-coded blocks, by the position of their Key in ckeys.
	ckeys  []storage.Hash
	cindex map[storage.Hash]int32
	coded  []codedState
}

// aliveStores splits the stores the manager knows into alive ones (by ID)
// and dead ones.
func (m *Manager) aliveStores() (map[string]catalog.StoreInfo, []catalog.StoreRef) {
	alive := make(map[string]catalog.StoreInfo)
	dead := []catalog.StoreRef{}
	for _, st := range m.Stores() {
		if st.Alive {
			alive[st.ID] = st
		} else {
			dead = append(dead, catalog.StoreRef{ID: st.ID, Addr: st.Addr, LastSeen: st.LastSeen})
		}
	}
	return alive, dead
}

// versionNumbers lists a job's committed version numbers, or checks that
// version only (> 0) exists.
func (m *Manager) versionNumbers(job string, only int64) ([]int64, error) {
	var out []int64
	err := m.db.View(func(tx *bolt.Tx) error {
		if only > 0 {
			v, _, err := m.resolve(tx, job, only)
			out = append(out, v)
			return err
		}
		_, jb, err := m.knownJob(tx, job)
		if err != nil {
			return err
		}
		vb := jb.Bucket(bucketVersions)
		if vb == nil {
			return nil
		}
		return vb.ForEach(func(k, _ []byte) error {
			out = append(out, int64(binary.BigEndian.Uint64(k)))
			return nil
		})
	})
	return out, err
}

// storedManifest returns a copy of a version's manifest bytes and its
// info, or ok == false when the version is gone.
func (m *Manager) storedManifest(job string, v int64) (data []byte, vi catalog.VersionInfo, ok bool, err error) {
	err = m.db.View(func(tx *bolt.Tx) error {
		jb := tx.Bucket(bucketJobs).Bucket([]byte(job))
		if jb == nil {
			return nil
		}
		vb, mb := jb.Bucket(bucketVersions), jb.Bucket(bucketManifests)
		if vb == nil || mb == nil || vb.Get(vkey(v)) == nil || mb.Get(vkey(v)) == nil {
			return nil
		}
		if err := json.Unmarshal(vb.Get(vkey(v)), &vi); err != nil {
			return fmt.Errorf("manager: catalog: job %s version %d: %w", job, v, err)
		}
		data = bytes.Clone(mb.Get(vkey(v)))
		ok = true
		return nil
	})
	return data, vi, ok, err
}

// surveyJob reads the manifests of a job's versions (every version, or
// only that one when only > 0) and asks every alive store they list, in
// one batched Has per store, which blocks it holds. A store that cannot be
// reached is recorded in conns and its copies count as unsure.
func (m *Manager) surveyJob(ctx context.Context, conns *storeConns, job string, only int64) (*survey, error) {
	nums, err := m.versionNumbers(job, only)
	if err != nil {
		return nil, err
	}
	index := make(map[storage.Hash]int32)
	sv := &survey{job: job, index: index, cindex: make(map[storage.Hash]int32)}
	for _, v := range nums {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		data, vi, ok, err := m.storedManifest(job, v)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue // deleted meanwhile
		}
		man, err := manifest.Unmarshal(data)
		if err != nil {
			return nil, fmt.Errorf("manager: catalog: manifest of job %s version %d: %w", job, v, err)
		}
		svv := surveyVersion{version: v, target: catalog.ReplicasOf(vi.Meta)}
		svv.scheme, _ = catalog.ParseRedundancy(vi.Meta)
		for i := range man.Blocks {
			b := &man.Blocks[i]
			if b.Length == 0 || b.Key.IsZero() {
				continue
			}
			if b.Erasure() {
				svv.coded = append(svv.coded, sv.addCoded(b))
				continue
			}
			k, ok := index[b.Key]
			if !ok {
				k = int32(len(sv.keys))
				index[b.Key] = k
				sv.keys = append(sv.keys, b.Key)
				sv.blocks = append(sv.blocks, blockState{size: b.StoredLength})
			}
			bs := &sv.blocks[k]
			bs.target = max(bs.target, svv.target)
			if bs.first == nil {
				bs.first = slices.Sorted(slices.Values(b.Stores))
			} else if !bs.split && !slices.Equal(bs.first, slices.Sorted(slices.Values(b.Stores))) {
				bs.split = true
			}
			for _, id := range b.Stores {
				if !slices.Contains(bs.listed, id) {
					bs.listed = append(bs.listed, id)
				}
			}
			svv.rows = append(svv.rows, k)
		}
		sv.versions = append(sv.versions, svv)
	}
	// One Has per alive store over the keys listed on it.
	asks := make(map[string][]int32)
	for k := range sv.blocks {
		bs := &sv.blocks[k]
		slices.Sort(bs.listed)
		for _, id := range bs.listed {
			if _, ok := conns.alive[id]; ok {
				asks[id] = append(asks[id], int32(k))
			}
		}
	}
	var mu sync.Mutex
	var g errgroup.Group
	g.SetLimit(gcParallel)
	for id, ks := range asks {
		g.Go(func() error {
			held, err := m.askHas(ctx, conns, id, sv.keys, ks)
			mu.Lock()
			defer mu.Unlock()
			for i, k := range ks {
				bs := &sv.blocks[k]
				switch {
				case err != nil:
					bs.unsure = append(bs.unsure, id)
				case held[i] && conns.alive[id].Draining:
					bs.draining = append(bs.draining, id)
				case held[i]:
					bs.held = append(bs.held, id)
				default:
					bs.stale = true
				}
			}
			return nil
		})
	}
	// And one per alive store over the shards listed on it.
	type shardRef struct{ c, i int32 }
	var shardKeys []storage.Hash
	var shardRefs []shardRef
	sasks := make(map[string][]int32)
	for c := range sv.coded {
		cs := &sv.coded[c]
		for i := range cs.shards {
			for _, id := range cs.listed[i] {
				if _, ok := conns.alive[id]; ok {
					sasks[id] = append(sasks[id], int32(len(shardKeys)))
					shardKeys = append(shardKeys, cs.shards[i])
					shardRefs = append(shardRefs, shardRef{int32(c), int32(i)})
				}
			}
		}
	}
	for id, ks := range sasks {
		g.Go(func() error {
			held, err := m.askHas(ctx, conns, id, shardKeys, ks)
			mu.Lock()
			defer mu.Unlock()
			for j, k := range ks {
				r := shardRefs[k]
				cs := &sv.coded[r.c]
				switch {
				case err != nil:
					cs.unsure[r.i] = append(cs.unsure[r.i], id)
				case held[j] && conns.alive[id].Draining:
					cs.draining[r.i] = append(cs.draining[r.i], id)
				case held[j]:
					cs.held[r.i] = append(cs.held[r.i], id)
				default:
					cs.stale = true
				}
			}
			return nil
		})
	}
	g.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.spotCheck(ctx, conns, sv)
	for k := range sv.blocks {
		slices.Sort(sv.blocks[k].held)
		slices.Sort(sv.blocks[k].unsure)
		slices.Sort(sv.blocks[k].draining)
	}
	for c := range sv.coded {
		cs := &sv.coded[c]
		for i := range cs.shards {
			slices.Sort(cs.held[i])
			slices.Sort(cs.unsure[i])
			slices.Sort(cs.draining[i])
		}
	}
	return sv, nil
}

// addCoded records an erasure-coded row of a version and returns the
// index of its block in sv.coded.
func (sv *survey) addCoded(b *manifest.Block) int32 {
	c, ok := sv.cindex[b.Key]
	if !ok {
		c = int32(len(sv.coded))
		sv.cindex[b.Key] = c
		sv.ckeys = append(sv.ckeys, b.Key)
		n := len(b.Shards)
		sv.coded = append(sv.coded, codedState{
			sc: erasure.Scheme{Data: b.DataShards, Parity: n - b.DataShards}, size: b.StoredLength, shards: b.Shards,
			listed: make([][]string, n), held: make([][]string, n), draining: make([][]string, n), unsure: make([][]string, n),
			first: b.Stores,
		})
	}
	cs := &sv.coded[c]
	if len(b.Shards) != len(cs.shards) {
		// Validated at commit; a row of another scheme with the same
		// key cannot come from a writer.
		return c
	}
	if !cs.split && !slices.Equal(cs.first, b.Stores) {
		cs.split = true
	}
	for i, id := range b.Stores {
		if id != "" && !slices.Contains(cs.listed[i], id) {
			cs.listed[i] = append(cs.listed[i], id)
			slices.Sort(cs.listed[i])
		}
	}
	return c
}

// askHas asks store id which of keys[ks] it holds.
func (m *Manager) askHas(ctx context.Context, conns *storeConns, id string, keys []storage.Hash, ks []int32) ([]bool, error) {
	s, err := conns.get(ctx, id)
	if err != nil {
		return nil, err
	}
	hs := make([]storage.Hash, len(ks))
	for i, k := range ks {
		hs[i] = keys[k]
	}
	held, err := s.Has(ctx, hs)
	if err == nil && len(held) != len(hs) {
		err = fmt.Errorf("asked about %d blocks, answered %d", len(hs), len(held))
	}
	if err != nil {
		err = fmt.Errorf("has: %w", err)
		conns.report(id, func(r *catalog.RepairStoreReport) { r.Asked += int64(len(hs)) }, err)
		return nil, err
	}
	missing := 0
	for _, ok := range held {
		if !ok {
			missing++
		}
	}
	conns.report(id, func(r *catalog.RepairStoreReport) { r.Asked += int64(len(hs)); r.Missing += int64(missing) }, nil)
	return held, nil
}

// Spot checks. A store's Has is its word: a store that acknowledges puts
// and throws the data away, or claims blocks it never had, would keep
// every copy counted. So each survey reads back up to Options.SpotChecks
// random blocks (or shards) each store answered held, and checks their bytes. A
// copy that fails does not count in this pass (it is unsure: repair
// copies the block elsewhere, the manifests keep listing the store); a
// store all of whose checked copies fail is taken to be lying, and none
// of its copies count. A store serving a corrupt copy of its own drops
// it on that read (storage/disk), so the next survey finds it missing.

// spotCheck reads back random copies sv found held (see above). The
// copies to check are drawn per store by reservoir sampling over what it
// answered held, so a survey of a million blocks allocates nothing per
// copy.
func (m *Manager) spotCheck(ctx context.Context, conns *storeConns, sv *survey) {
	spotChecks := m.opts.SpotChecks
	if spotChecks <= 0 {
		return
	}
	// A copy of a replicated block (shard < 0) or shard i of a coded one.
	type copyRef struct {
		idx   int32 // in sv.blocks or sv.coded
		shard int32
	}
	type sample struct {
		seen  int
		picks []copyRef
	}
	samples := map[string]*sample{}
	offer := func(id string, c copyRef) {
		sm := samples[id]
		if sm == nil {
			sm = &sample{}
			samples[id] = sm
		}
		sm.seen++
		if len(sm.picks) < spotChecks {
			sm.picks = append(sm.picks, c)
		} else if j := rand.IntN(sm.seen); j < spotChecks {
			sm.picks[j] = c
		}
	}
	for k := range sv.blocks {
		for _, id := range sv.blocks[k].held {
			offer(id, copyRef{int32(k), -1})
		}
	}
	for c := range sv.coded {
		for i, ids := range sv.coded[c].held {
			for _, id := range ids {
				offer(id, copyRef{int32(c), int32(i)})
			}
		}
	}
	keyOf := func(c copyRef) (storage.Hash, int64) {
		if c.shard < 0 {
			return sv.keys[c.idx], sv.blocks[c.idx].size
		}
		cs := &sv.coded[c.idx]
		return cs.shards[c.shard], int64(cs.sc.ShardSize(int(cs.size)))
	}
	// drop moves store id's copy c from held to unsure.
	drop := func(id string, c copyRef) {
		held, unsure := &sv.blocks[c.idx].held, &sv.blocks[c.idx].unsure
		if c.shard >= 0 {
			held, unsure = &sv.coded[c.idx].held[c.shard], &sv.coded[c.idx].unsure[c.shard]
		}
		if i := slices.Index(*held, id); i >= 0 {
			*held = slices.Delete(*held, i, i+1)
			*unsure = append(*unsure, id)
		}
	}
	type verdict struct {
		failed []copyRef
		err    error
	}
	verdicts := map[string]verdict{}
	var mu sync.Mutex
	var g errgroup.Group
	g.SetLimit(gcParallel)
	for id, sm := range samples {
		g.Go(func() error {
			s, err := conns.get(ctx, id)
			if err != nil {
				return nil // reported by the Has already
			}
			var v verdict
			for _, c := range sm.picks {
				key, size := keyOf(c)
				data, err := s.Get(ctx, key)
				if ctx.Err() != nil {
					return nil
				}
				if err == nil && (int64(len(data)) != size || storage.Sum(data) != key) {
					err = fmt.Errorf("%w (%d bytes, want %d)", storage.ErrHashMismatch, len(data), size)
				}
				if err != nil {
					v.failed = append(v.failed, c)
					v.err = fmt.Errorf("spot check: it answered that it holds block %s, then %w", key.Short(), err)
				}
			}
			mu.Lock()
			verdicts[id] = v
			mu.Unlock()
			return nil
		})
	}
	g.Wait()
	failed := false
	for id, v := range verdicts {
		if len(v.failed) == 0 {
			continue
		}
		failed = true
		sm := samples[id]
		if len(v.failed) < len(sm.picks) {
			for _, c := range v.failed {
				drop(id, c)
			}
			conns.report(id, func(*catalog.RepairStoreReport) {}, v.err)
			continue
		}
		// Every copy checked failed: none of the store's copies count.
		for k := range sv.blocks {
			drop(id, copyRef{int32(k), -1})
		}
		for c := range sv.coded {
			for i := range sv.coded[c].held {
				drop(id, copyRef{int32(c), int32(i)})
			}
		}
		m.log.Warn("a store failed every spot check: none of its copies count until it passes", zap.String("store", id), zap.Int("copies", sm.seen), zap.Error(v.err))
		conns.report(id, func(*catalog.RepairStoreReport) {}, fmt.Errorf("%w; every copy checked failed: none of its %d copies count", v.err, sm.seen))
	}
	if failed {
		// A health check found it: repair at once, as for a reported
		// corrupt copy (corrupt.go), when background repair is on.
		m.queueRepair(sv.job)
	}
}
