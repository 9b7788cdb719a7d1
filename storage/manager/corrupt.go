package manager

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/zap"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/catalog"
)

// Corrupt copies a reader reports (POST /v1/jobs/{job}/corrupt,
// docs/availability.md "Corrupt copies"). A store drops a block it finds
// corrupt on its own read; this covers the rest: a store that did not (an
// older one), and the time until the next repair pass. The manager reads
// each reported copy back itself, so a report can neither make it drop a
// good copy nor stand for a check: only a copy that does not match its
// key when the manager reads it is deleted, and only if nobody touched it
// since that read began (a writer that put the block afresh keeps its
// copy). Then, when background repair is on, a repair of the job is
// queued, which copies the dropped blocks from good holders.

// corruptCheckTimeout bounds one report's reads.
const corruptCheckTimeout = 2 * time.Minute

// ReportCorrupt checks the copies of job's blocks a reader found corrupt
// and drops the corrupt ones (see above).
func (m *Manager) ReportCorrupt(ctx context.Context, job string, req catalog.CorruptRequest) (catalog.CorruptReport, error) {
	rep := catalog.CorruptReport{Schema: catalog.SchemaCorrupt, Reported: len(req.Copies)}
	if len(req.Copies) > catalog.MaxCorruptCopies {
		return rep, fmt.Errorf("%w: %d corrupt copies reported, at most %d a request", catalog.ErrInvalid, len(req.Copies), catalog.MaxCorruptCopies)
	}
	if err := m.db.View(func(tx *bolt.Tx) error {
		_, _, err := m.knownJob(tx, job)
		return err
	}); err != nil {
		return rep, err
	}
	byStore := map[string][]storage.Hash{}
	for _, c := range req.Copies {
		if c.Store == "" || len(c.Store) > 128 {
			return rep, fmt.Errorf("%w: a corrupt copy names store %q: want a store ID", catalog.ErrInvalid, c.Store)
		}
		if !slices.Contains(byStore[c.Store], c.Key) {
			byStore[c.Store] = append(byStore[c.Store], c.Key)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, corruptCheckTimeout)
	defer cancel()
	for _, id := range slices.Sorted(maps.Keys(byStore)) {
		hs := byStore[id]
		st, ok := m.store(id)
		if !ok {
			rep.Failed = append(rep.Failed, catalog.GCStoreReport{ID: id, Error: "no such store"})
			continue
		}
		if !st.Alive {
			rep.Failed = append(rep.Failed, catalog.GCStoreReport{ID: id, Addr: st.Addr, Error: "not alive: its copies do not count until it heartbeats again"})
			continue
		}
		dropped, intact, err := m.checkCopies(ctx, st, hs)
		rep.Dropped += dropped
		rep.Intact += intact
		if err != nil {
			rep.Failed = append(rep.Failed, catalog.GCStoreReport{ID: id, Addr: st.Addr, Error: err.Error()})
		}
	}
	if rep.Dropped > 0 {
		m.log.Warn("corrupt copies reported and dropped", zap.String("job", job), zap.Int("reported", rep.Reported), zap.Int("dropped", rep.Dropped), zap.Int("intact", rep.Intact))
		rep.RepairQueued = m.queueRepair(job)
	}
	return rep, nil
}

// checkCopies reads back the copies hs of store st: those that do not
// match their keys, and were not touched since, are deleted; those the
// store no longer has count as dropped too. Keys no committed version
// names are left alone (garbage collection's).
func (m *Manager) checkCopies(ctx context.Context, st catalog.StoreInfo, hs []storage.Hash) (dropped, intact int, err error) {
	live, err := m.referenced(hs)
	if err != nil {
		return 0, 0, err
	}
	gs, err := m.opts.DialStore(ctx, st.ID, st.Addr)
	if err != nil {
		return 0, 0, err
	}
	defer gs.Close()
	s, ok := gs.(RepairStore)
	if !ok {
		return 0, 0, errors.New("the store connection cannot read blocks")
	}
	// The store's clock before any read: a copy touched after it (put
	// again by a writer) is not the one read, and is kept.
	stat, err := s.Stat(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("reading the store's clock: %w", err)
	}
	since := stat.Now
	if since.IsZero() {
		since = m.now().Add(-m.opts.GCClockSkew)
	}
	var errs []error
	for i, h := range hs {
		if !live[i] {
			continue
		}
		data, err := s.Get(ctx, h)
		switch {
		case err == nil && storage.Sum(data) == h:
			intact++
			continue
		case errors.Is(err, storage.ErrNotFound):
			dropped++ // the store dropped it on its own read
			continue
		case err == nil, errors.Is(err, storage.ErrHashMismatch):
		default:
			errs = append(errs, fmt.Errorf("reading %s back: %w", h.Short(), err))
			continue
		}
		if _, err := s.Delete(ctx, []storage.Hash{h}, since); err != nil {
			errs = append(errs, fmt.Errorf("dropping corrupt %s: %w", h.Short(), err))
			continue
		}
		dropped++
	}
	return dropped, intact, errors.Join(errs...)
}

// queueRepair starts a repair of job in the background, unless background
// repair is off (Options.RepairEvery < 0: the operator repairs by hand) or
// one is queued already; it says whether one is queued.
func (m *Manager) queueRepair(job string) bool {
	if m.opts.RepairEvery <= 0 {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mu.closed {
		return false
	}
	if m.mu.repair.queued == nil {
		m.mu.repair.queued = map[string]bool{}
	}
	if m.mu.repair.queued[job] {
		return true
	}
	m.mu.repair.queued[job] = true
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		// Cleared before the pass reads the catalog, so a report during
		// the pass queues another.
		m.mu.Lock()
		delete(m.mu.repair.queued, job)
		m.mu.Unlock()
		rep, err := m.Repair(m.ctx, job)
		if h := m.opts.hooks; h != nil && h.repaired != nil {
			defer h.repaired(job)
		}
		if err != nil && m.ctx.Err() == nil {
			m.log.Error("repair after corrupt copies were reported", zap.String("job", job), zap.Error(err))
			return
		}
		m.log.Info("repair after corrupt copies were reported", zap.String("job", job), zap.Int64("copies", rep.Copies))
	}()
	return true
}

func (m *Manager) serveCorrupt(w http.ResponseWriter, r *http.Request, body []byte) error {
	var req catalog.CorruptRequest
	if err := decodeJSON(body, &req); err != nil {
		return err
	}
	rep, err := m.ReportCorrupt(context.WithoutCancel(r.Context()), r.PathValue("job"), req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}
