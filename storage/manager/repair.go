package manager

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/manifest"
	"github.com/ckptio/ckptio/storage/placement"
)

// Defaults for the repair Options.
const (
	DefaultRepairEvery    = 30 * time.Second
	DefaultRepairParallel = 8
	DefaultRepairMaxBytes = 64 << 20
	// repairScrubEvery: the periodic repair runs a full pass at least this
	// often even when nothing it watches changed, to find stores that lost
	// blocks without leaving (a disk replaced under a running store).
	repairScrubEvery = 10 * time.Minute
	// maxLostListed bounds the lost blocks a report names.
	maxLostListed = 100
)

// Repair runs one repair pass over every retained version of job (every
// job when job is "") and returns its report. For each block with fewer
// live copies than its target, or listed on an alive store that no longer
// holds it, it reads a copy from an alive holder (checking it against its
// key), puts copies on other alive stores with room where the writers'
// placement puts them (storage/placement), never two on one store, and
// rewrites the Stores lists of every manifest naming
// the block: the alive holders plus the new copies (dead stores are
// dropped). A pass waits for one already running to end. The error is for
// an unknown job, a catalog failure, or ctx or the manager closing; store
// failures are in the report.
func (m *Manager) Repair(ctx context.Context, job string) (catalog.RepairReport, error) {
	if job != "" {
		if err := catalog.ValidJobName(job); err != nil {
			return catalog.RepairReport{}, err
		}
	}
	m.mu.Lock()
	closed := m.mu.closed
	m.mu.Unlock()
	if closed {
		return catalog.RepairReport{}, storage.ErrClosed
	}
	select {
	case m.repairSem <- struct{}{}:
	case <-ctx.Done():
		return catalog.RepairReport{}, fmt.Errorf("manager: repair: waiting for the running pass: %w", ctx.Err())
	case <-m.ctx.Done():
		return catalog.RepairReport{}, storage.ErrClosed
	}
	defer func() { <-m.repairSem }()
	return m.runRepair(ctx, job)
}

// RepairStatus says whether a repair pass runs and returns the last report.
func (m *Manager) RepairStatus() catalog.RepairStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := catalog.RepairStatus{Running: m.mu.repair.running, Last: m.mu.repair.last}
	if st.Running {
		st.Since = m.mu.repair.since
		p := m.mu.repair.progress
		st.Progress = &p
	}
	return st
}

// repairProgressed updates the running pass's progress.
func (m *Manager) repairProgressed(f func(p *catalog.RepairProgress)) {
	m.mu.Lock()
	f(&m.mu.repair.progress)
	m.mu.Unlock()
}

// markRepairDirty makes the next periodic repair run a full pass: a
// version was committed, or a store joined, came back or holds fewer
// blocks than it did.
func (m *Manager) markRepairDirty() {
	m.mu.Lock()
	m.mu.repair.dirty = true
	m.mu.Unlock()
}

// aliveSignature names the set of alive stores.
func (m *Manager) aliveSignature() string {
	var ids []string
	for _, st := range m.Stores() {
		if st.Alive {
			ids = append(ids, st.ID)
		}
	}
	return strings.Join(ids, "\x00")
}

// repairDue reports whether the periodic repair should run a pass now:
// not before DeadAfter has passed since Open (every store is dead until
// it heartbeats), then when something changed since the last full pass
// (see markRepairDirty, or the set of alive stores) or repairScrubEvery
// passed.
func (m *Manager) repairDue() bool {
	now := m.now()
	if now.Sub(m.opened) < m.opts.DeadAfter {
		return false
	}
	sig := m.aliveSignature()
	m.mu.Lock()
	defer m.mu.Unlock()
	r := &m.mu.repair
	return r.dirty || sig != r.aliveSig || now.Sub(r.lastFull) >= repairScrubEvery
}

// repairLoop runs a repair pass every RepairEvery when one is due, until
// ctx is done. It skips a tick while an asked-for pass runs.
func (m *Manager) repairLoop(ctx context.Context) {
	t := time.NewTicker(m.opts.RepairEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !m.repairDue() {
			continue
		}
		select {
		case m.repairSem <- struct{}{}:
		default:
			continue
		}
		_, err := m.runRepair(ctx, "")
		<-m.repairSem
		if err != nil && ctx.Err() == nil {
			m.log.Error("periodic repair failed", zap.Error(err))
		}
	}
}

// runRepair is one pass; the caller holds repairSem.
func (m *Manager) runRepair(ctx context.Context, job string) (catalog.RepairReport, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(m.ctx, cancel)()
	started := m.now()
	sig := m.aliveSignature()
	m.mu.Lock()
	m.mu.repair.running, m.mu.repair.since = true, started
	m.mu.repair.progress = catalog.RepairProgress{}
	if job == "" {
		m.mu.repair.dirty = false
	}
	m.mu.Unlock()

	rep, err := m.repair(ctx, job, started)
	m.observer().RepairDone(rep, err)

	m.mu.Lock()
	r := &m.mu.repair
	r.running = false
	if err == nil {
		r.last = &rep
		if job == "" {
			r.aliveSig, r.lastFull = sig, started
		}
	}
	// Blocks deferred for busy stores wait for them to be idle again
	// (Heartbeat marks the repair dirty then).
	if err != nil || len(rep.Failed()) > 0 {
		r.dirty = true // try again at the next tick
	}
	m.mu.Unlock()
	if err != nil {
		if m.ctx.Err() != nil {
			err = storage.ErrClosed
		}
		if ctx.Err() != nil {
			err = fmt.Errorf("manager: repair interrupted: %w", err)
		}
		return rep, err
	}
	fields := []zap.Field{zap.String("job", job), zap.Int("versions", rep.Versions), zap.Int64("blocks", rep.Blocks),
		zap.Int64("degraded", rep.Degraded), zap.Int64("stale", rep.Stale), zap.Int64("copies", rep.Copies),
		zap.Int64("copied_bytes", rep.CopiedBytes), zap.Int64("lost", rep.Lost), zap.Int64("unrepaired", rep.Unrepaired), zap.Int64("deferred", rep.Deferred),
		zap.Int("updated", rep.Updated), zap.Duration("took", time.Duration(rep.Took))}
	for _, f := range rep.Failed() {
		m.log.Warn("repair: store failed", zap.String("store", f.ID), zap.String("addr", f.Addr), zap.String("error", f.Error))
	}
	switch {
	case rep.Lost > 0 || rep.Unrepaired > 0:
		m.log.Warn("repair pass left blocks below their target", fields...)
	case rep.Copies > 0 || rep.Updated > 0:
		m.log.Info("repair pass done", fields...)
	default:
		m.log.Debug("repair pass found nothing to do", fields...)
	}
	return rep, nil
}

func (m *Manager) repair(ctx context.Context, job string, started time.Time) (catalog.RepairReport, error) {
	alive, dead := m.aliveStores()
	rep := catalog.RepairReport{Started: started, Job: job, Stores: []catalog.RepairStoreReport{}, Skipped: dead}
	var jobs []string
	if job != "" {
		jobs = []string{job}
	} else {
		all, err := m.Jobs()
		if err != nil {
			return rep, err
		}
		for _, j := range all {
			if j.Versions > 0 {
				jobs = append(jobs, j.Name)
			}
		}
	}
	conns := newStoreConns(m, alive)
	defer conns.Close()
	// New copies go to stores that are neither busy (their owners need
	// the desktop) nor draining; busy ones are not read from either.
	dests := make(map[string]catalog.StoreInfo, len(alive))
	for id, st := range alive {
		switch {
		case st.Busy:
			rep.Busy = append(rep.Busy, busyRef(st))
		case !st.Draining:
			dests[id] = st
		}
	}
	slices.SortFunc(rep.Busy, func(a, b catalog.StoreRef) int { return cmpString(a.ID, b.ID) })
	pl := newDestPicker(conns, dests)
	pl.busy = len(rep.Busy) > 0
	m.repairProgressed(func(p *catalog.RepairProgress) { p.Jobs = len(jobs) })
	for _, j := range jobs {
		sv, err := m.surveyJob(ctx, conns, j, 0)
		if err != nil {
			if job == "" && errorsIsUnknown(err) {
				continue // deleted meanwhile
			}
			return rep, err
		}
		if err := m.repairSurvey(ctx, conns, pl, sv, &rep); err != nil {
			return rep, err
		}
		m.repairProgressed(func(p *catalog.RepairProgress) { p.JobsDone++ })
	}
	rep.Stores = conns.reports()
	rep.Took = catalog.Duration(m.now().Sub(started))
	return rep, ctx.Err()
}

func errorsIsUnknown(err error) bool {
	return errors.Is(err, catalog.ErrUnknownJob) || errors.Is(err, catalog.ErrNoVersions)
}

// destPicker chooses the stores new copies go to, by the writers'
// placement (storage/placement) over the stores a writer would place on
// now: alive, with room by their last heartbeat. A store is passed over
// when it failed in this pass or its projected room (heartbeat minus the
// copies this pass placed on it) is too small, and then the block's next
// store in the same ranking gets the copy, as a writer's copy moves on
// when a store refuses it.
type destPicker struct {
	conns *storeConns
	place *placement.Placer
	busy  bool // some alive store was left out as busy
	mu    sync.Mutex
	free  []int64 // projected room, by placer index
}

func newDestPicker(conns *storeConns, alive map[string]catalog.StoreInfo) *destPicker {
	var stores []placement.Store
	for _, st := range alive {
		if f := st.Free(); f > 0 {
			stores = append(stores, placement.Store{ID: st.ID, Free: f})
		}
	}
	slices.SortFunc(stores, func(a, b placement.Store) int { return cmpString(a.ID, b.ID) })
	p := &destPicker{conns: conns, place: placement.New(stores), free: make([]int64, len(stores))}
	for i, s := range stores {
		p.free[i] = s.Free
	}
	return p
}

// pick returns the best store for key that is not in exclude and has size
// bytes of room, and takes size from it.
func (p *destPicker) pick(key storage.Hash, size int64, exclude []string) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	best := p.place.Pick(key, 1, func(i int) bool {
		id := p.place.ID(i)
		return p.free[i] < size || slices.Contains(exclude, id) || p.conns.failed(id)
	})
	if len(best) == 0 {
		return "", false
	}
	p.free[best[0]] -= size
	return p.place.ID(best[0]), true
}

// repairSurvey makes the copies one surveyed job needs and rewrites its
// manifests.
func (m *Manager) repairSurvey(ctx context.Context, conns *storeConns, pl *destPicker, sv *survey, rep *catalog.RepairReport) error {
	rep.Versions += len(sv.versions)
	rep.Blocks += int64(len(sv.blocks))
	var planned int64
	for k := range sv.blocks {
		bs := &sv.blocks[k]
		if need := bs.target - len(bs.held); need > 0 && len(bs.held)+len(bs.unsure) > 0 {
			planned += int64(need) * bs.size
		}
	}
	m.repairProgressed(func(p *catalog.RepairProgress) {
		p.Blocks += int64(len(sv.blocks))
		p.CopyBytes += planned
	})
	maxBytes := m.opts.RepairMaxBytes
	sem := semaphore.NewWeighted(maxBytes)
	var g errgroup.Group
	g.SetLimit(m.opts.RepairParallel)
	var mu sync.Mutex
	finals := make(map[int32][]string) // new Stores lists, by key index
	var lost []int32
	for k := range sv.blocks {
		bs := &sv.blocks[k]
		// A draining store's copy is a source, not a copy: once enough
		// copies are elsewhere, the manifests stop listing it.
		need := bs.target - len(bs.held)
		kept := append(slices.Clone(bs.held), bs.unsure...)
		sources := append(slices.Clone(kept), bs.draining...)
		if bs.stale && len(sources) > 0 {
			rep.Stale++
		}
		switch {
		case len(sources) == 0:
			rep.Lost++
			lost = append(lost, int32(k))
			continue
		case need <= 0 && !bs.stale && !bs.split && len(bs.draining) == 0:
			continue
		case need > 0:
			rep.Degraded++
		}
		if need <= 0 {
			slices.Sort(kept)
			mu.Lock()
			finals[int32(k)] = kept
			mu.Unlock()
			continue
		}
		w := min(max(bs.size, 1), maxBytes)
		if err := sem.Acquire(ctx, w); err != nil {
			break
		}
		g.Go(func() error {
			defer sem.Release(w)
			added, deferred := m.copyBlock(ctx, conns, pl, sv.keys[k], bs, sources, need)
			m.repairProgressed(func(p *catalog.RepairProgress) { p.CopiedBytes += int64(need) * bs.size })
			mu.Lock()
			defer mu.Unlock()
			rep.Copies += int64(len(added))
			rep.CopiedBytes += int64(len(added)) * bs.size
			if len(added) < need {
				rep.Unrepaired++
				if deferred {
					rep.Deferred++
				}
			}
			if len(added) > 0 || bs.stale {
				final := append(sources, added...)
				if len(added) >= need {
					final = append(kept, added...)
				}
				slices.Sort(final)
				finals[int32(k)] = final
			}
			return nil
		})
	}
	g.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	m.listLost(sv, lost, rep)
	rep.Blocks += int64(len(sv.coded))
	cfinals := m.repairCoded(ctx, conns, pl, sv, rep)
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(finals) == 0 && len(cfinals) == 0 {
		return nil
	}
	for _, svv := range sv.versions {
		touched := false
		for _, k := range svv.rows {
			if _, ok := finals[k]; ok {
				touched = true
				break
			}
		}
		for _, c := range svv.coded {
			if _, ok := cfinals[c]; ok {
				touched = true
				break
			}
		}
		if !touched {
			continue
		}
		updated, err := m.rewriteStores(sv, svv.version, finals, cfinals)
		if err != nil {
			return err
		}
		if updated {
			rep.Updated++
			m.recordChange(sv.job, svv.version) // the new manifest, on its new holders (records.go)
		} else {
			rep.Gone++
		}
	}
	return nil
}

// copyBlock reads block key from the first source that returns bytes
// matching it and puts need copies on stores picked by pl, none in
// sources. It returns the stores that took a copy, and whether fewer than
// need did because busy stores were spared: every source was busy, or
// no store had room while some were busy.
func (m *Manager) copyBlock(ctx context.Context, conns *storeConns, pl *destPicker, key storage.Hash, bs *blockState, sources []string, need int) (added []string, deferred bool) {
	var data []byte
	spared := 0
	for _, id := range sources {
		if conns.alive[id].Busy {
			spared++
			continue
		}
		s, err := conns.get(ctx, id)
		if err != nil {
			continue
		}
		d, err := s.Get(ctx, key)
		if err == nil && (int64(len(d)) != bs.size || storage.Sum(d) != key) {
			err = fmt.Errorf("%w (%d bytes returned, %d expected)", storage.ErrHashMismatch, len(d), bs.size)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, false
			}
			conns.report(id, func(*catalog.RepairStoreReport) {}, fmt.Errorf("get %s: %w", key.Short(), err))
			continue
		}
		data = d
		break
	}
	if data == nil && bs.size > 0 {
		return nil, spared > 0
	}
	exclude := slices.Clone(sources)
	for len(added) < need {
		id, ok := pl.pick(key, bs.size, exclude)
		if !ok {
			deferred = pl.busy
			break
		}
		exclude = append(exclude, id)
		s, err := conns.get(ctx, id)
		if err != nil {
			continue
		}
		if _, err := s.Put(ctx, key, data); err != nil {
			if ctx.Err() != nil {
				break
			}
			conns.report(id, func(*catalog.RepairStoreReport) {}, fmt.Errorf("put %s: %w", key.Short(), err))
			continue
		}
		conns.report(id, func(r *catalog.RepairStoreReport) { r.Received++; r.ReceivedBytes += bs.size }, nil)
		added = append(added, id)
	}
	return added, deferred
}

// listLost names up to maxLostListed lost blocks in the report.
func (m *Manager) listLost(sv *survey, lost []int32, rep *catalog.RepairReport) {
	room := maxLostListed - len(rep.LostBlocks)
	if len(lost) == 0 || room <= 0 {
		return
	}
	lost = lost[:min(len(lost), room)]
	at := make(map[int32]int, len(lost))
	for _, k := range lost {
		at[k] = len(rep.LostBlocks)
		rep.LostBlocks = append(rep.LostBlocks, catalog.LostBlock{Job: sv.job, Key: sv.keys[k], Stores: sv.blocks[k].listed, Versions: []int64{}})
	}
	for _, svv := range sv.versions {
		for _, k := range svv.rows {
			if i, ok := at[k]; ok {
				lb := &rep.LostBlocks[i]
				if n := len(lb.Versions); n == 0 || lb.Versions[n-1] != svv.version {
					lb.Versions = append(lb.Versions, svv.version)
				}
			}
		}
	}
}

// rewriteStores replaces the Stores list of every block of version v whose
// key has an entry in finals (cfinals, for an erasure-coded block), and stores the manifest, its size and its
// placement. The manifest is decoded and encoded outside the catalog's
// write lock; the write checks that the version still exists with the
// bytes read, so a version deleted meanwhile is not brought back (false).
func (m *Manager) rewriteStores(sv *survey, v int64, finals, cfinals map[int32][]string) (bool, error) {
	job := sv.job
	old, _, ok, err := m.storedManifest(job, v)
	if err != nil || !ok {
		return false, err
	}
	man, err := manifest.Unmarshal(old)
	if err != nil {
		return false, fmt.Errorf("manager: catalog: manifest of job %s version %d: %w", job, v, err)
	}
	for i := range man.Blocks {
		b := &man.Blocks[i]
		if b.Erasure() {
			if c, ok := sv.cindex[b.Key]; ok && len(b.Shards) == len(sv.coded[c].shards) {
				if final, ok := cfinals[c]; ok {
					b.Stores = slices.Clone(final)
				}
			}
			continue
		}
		if k, ok := sv.index[b.Key]; ok && b.Length > 0 {
			if final, ok := finals[k]; ok {
				b.Stores = slices.Clone(final)
			}
		}
	}
	data, err := manifest.Marshal(man)
	if err != nil {
		return false, fmt.Errorf("manager: repair: encoding the manifest of job %s version %d: %w", job, v, err)
	}
	p := placementOf(man)
	written := false
	err = m.db.Update(func(tx *bolt.Tx) error {
		jb := tx.Bucket(bucketJobs).Bucket([]byte(job))
		if jb == nil {
			return nil
		}
		vb, mb := jb.Bucket(bucketVersions), jb.Bucket(bucketManifests)
		if vb == nil || mb == nil || vb.Get(vkey(v)) == nil || !bytes.Equal(mb.Get(vkey(v)), old) {
			return nil // deleted (or rewritten) meanwhile
		}
		var vi catalog.VersionInfo
		if err := json.Unmarshal(vb.Get(vkey(v)), &vi); err != nil {
			return fmt.Errorf("manager: catalog: job %s version %d: %w", job, v, err)
		}
		vi.ManifestBytes = int64(len(data))
		if err := putJSON(vb, vkey(v), vi); err != nil {
			return err
		}
		if err := mb.Put(vkey(v), data); err != nil {
			return err
		}
		if err := putPlacement(jb, v, p); err != nil {
			return err
		}
		written = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("manager: repair: storing the manifest of job %s version %d: %w", job, v, err)
	}
	return written, nil
}
