package manager

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/remote"
)

// Defaults for the garbage collection Options.
const (
	DefaultGCEvery        = 10 * time.Minute
	DefaultGCSweepTimeout = 10 * time.Minute
	DefaultGCClockSkew    = 10 * time.Minute
	// gcPage is how many keys one List asks a store for; the candidates of
	// a page go to the store in one Delete.
	gcPage = 4096
	// gcDriftMargin is subtracted from a store's measured horizon for clock
	// drift and timestamp granularity during one sweep.
	gcDriftMargin = 50 * time.Millisecond
	// gcParallel bounds the stores swept at once.
	gcParallel = 8
)

// GCStore is what garbage collection needs of a store: the two store
// primitives the sweep uses. *remote.Store implements it. Methods are
// called from one goroutine per store, Close once at the end.
type GCStore interface {
	// List returns up to max keys the store holds that are greater than
	// after, in ascending order; none once the walk is over.
	List(ctx context.Context, after storage.Hash, max int) ([]storage.Hash, error)
	// Delete deletes the blocks among hs that the store holds and last
	// touched (Put, or named in a Has) before notSince, atomically with
	// respect to touches, and returns the bytes freed. Blocks touched since
	// are kept; a zero notSince deletes unconditionally.
	Delete(ctx context.Context, hs []storage.Hash, notSince time.Time) (freed int64, err error)
	// Stat reports the store's usage and its clock (Stat.Now).
	Stat(ctx context.Context) (storage.Stat, error)
	Close() error
}

// GC runs one garbage collection, mark and sweep, and returns its report.
// The mark is the refs bucket: the keys of every committed version of
// every job. The sweep walks every alive store's keys and asks the store
// to delete the unreferenced ones not touched since the horizon T0, the
// begin time of the oldest transaction in flight (or now), mapped onto each
// store's clock (Options.GCClockSkew for a store that does not tell it). docs/incremental.md gives the safety argument.
//
// Only one GC runs at a time: GC fails with ErrGCRunning while another
// runs. A store that fails is reported in its GCStoreReport and the others
// are swept still; the error is for a catalog failure, ErrGCRunning, or
// ctx or the manager closing.
func (m *Manager) GC(ctx context.Context) (catalog.GCReport, error) {
	return m.runGC(ctx, false)
}

// GCDryRun is GC without deleting: each alive store is listed and its
// report counts the blocks a collection would ask it to delete
// (Unreferenced, an upper bound: the store keeps those touched since the
// horizon) with an estimate of their bytes. It takes the same turn as a
// collection (ErrGCRunning while one runs) and is not recorded as the
// last collection.
func (m *Manager) GCDryRun(ctx context.Context) (catalog.GCReport, error) {
	return m.runGC(ctx, true)
}

func (m *Manager) runGC(ctx context.Context, dry bool) (catalog.GCReport, error) {
	m.mu.Lock()
	if m.mu.closed {
		m.mu.Unlock()
		return catalog.GCReport{}, storage.ErrClosed
	}
	if m.mu.gcRunning {
		since := m.mu.gcSince
		m.mu.Unlock()
		return catalog.GCReport{}, fmt.Errorf("%w (started at %s); try again when it ends", catalog.ErrGCRunning, since.UTC().Format(time.RFC3339))
	}
	m.mu.gcRunning = true
	started := m.now()
	m.mu.gcSince = started
	m.mu.Unlock()
	rep, err := m.gc(ctx, started, dry)
	m.observer().GCDone(rep, err)
	m.mu.Lock()
	m.mu.gcRunning = false
	if err == nil && !dry {
		m.mu.lastGC = &rep
	}
	m.mu.Unlock()
	return rep, err
}

// GCStatus says whether a GC runs and returns the last report.
func (m *Manager) GCStatus() catalog.GCStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := catalog.GCStatus{Running: m.mu.gcRunning, Last: m.mu.lastGC}
	if st.Running {
		st.Since = m.mu.gcSince
	}
	return st
}

func (m *Manager) gc(ctx context.Context, started time.Time, dry bool) (catalog.GCReport, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(m.ctx, cancel)()
	rep := catalog.GCReport{DryRun: dry, Started: started, Stores: []catalog.GCStoreReport{}, Skipped: []catalog.StoreRef{}}
	t0, err := m.gcHorizon()
	if err != nil {
		return rep, err
	}
	rep.NotSince = t0
	var alive []catalog.StoreInfo
	for _, st := range m.Stores() {
		if st.Alive && st.Busy {
			// Its owner needs the desktop: swept once it says it is idle.
			rep.Skipped = append(rep.Skipped, busyRef(st))
			m.deferGC(st.ID)
			continue
		}
		if st.Alive {
			alive = append(alive, st)
		} else {
			rep.Skipped = append(rep.Skipped, catalog.StoreRef{ID: st.ID, Addr: st.Addr, LastSeen: st.LastSeen})
		}
	}
	rep.Stores = make([]catalog.GCStoreReport, len(alive))
	var g errgroup.Group
	g.SetLimit(gcParallel)
	for i, st := range alive {
		g.Go(func() error {
			rep.Stores[i] = m.sweep(ctx, st, t0, dry)
			return nil
		})
	}
	g.Wait()
	for _, s := range rep.Stores {
		rep.FreedBytes += s.FreedBytes
		rep.Unreferenced += s.Unreferenced
		rep.EstimatedBytes += s.EstimatedBytes
	}
	rep.Took = catalog.Duration(m.now().Sub(started))
	if err := ctx.Err(); err != nil {
		if m.ctx.Err() != nil {
			err = storage.ErrClosed
		}
		return rep, fmt.Errorf("manager: garbage collection interrupted: %w", err)
	}
	fields := []zap.Field{zap.Time("not_since", t0), zap.Int("stores", len(rep.Stores)), zap.Int("skipped", len(rep.Skipped)),
		zap.Int64("unreferenced", rep.Unreferenced), zap.Int64("freed_bytes", rep.FreedBytes), zap.Duration("took", time.Duration(rep.Took))}
	if failed := rep.Failed(); len(failed) > 0 {
		for _, f := range failed {
			m.log.Warn("garbage collection: store not swept completely", zap.String("store", f.ID), zap.String("addr", f.Addr), zap.String("error", f.Error))
		}
		m.log.Warn("garbage collection done with failures", append(fields, zap.Int("failed", len(failed)))...)
	} else {
		m.log.Info("garbage collection done", fields...)
	}
	return rep, nil
}

// gcHorizon returns T0 on the manager's clock: the begin time of the oldest
// live transaction, or now if none (sweep maps it onto each store's clock). It reads under bbolt's
// writer lock, as Begin stamps its transactions, so a transaction begun
// after the horizon was read has a later begin time than that now.
func (m *Manager) gcHorizon() (time.Time, error) {
	var t0 time.Time
	err := m.db.Update(func(tx *bolt.Tx) error {
		now := m.now()
		t0 = now
		return tx.Bucket(bucketTxns).ForEach(func(k, v []byte) error {
			var t catalog.Txn
			if err := json.Unmarshal(v, &t); err != nil {
				return nil // unreadable: it can never commit; the janitor removes it
			}
			if !now.After(t.Expires) && t.Began.Before(t0) {
				t0 = t.Began
			}
			return nil
		})
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("manager: garbage collection: reading transactions: %w", err)
	}
	return t0, nil
}

// storeHorizon maps the horizon t0 (manager clock) onto store s's clock,
// where its touch times are kept. It reads the store's clock once, between
// two readings of the manager's, and takes the offset's lower bound, minus
// a second for drift during the sweep: a block touched at or after t0 on
// the manager's clock is then touched at or after the result on the
// store's. A store that does not report its clock gets the blanket
// allowance Options.GCClockSkew.
func (m *Manager) storeHorizon(ctx context.Context, s GCStore, t0 time.Time) (time.Time, error) {
	st, err := s.Stat(ctx)
	after := m.now()
	if err != nil {
		return time.Time{}, fmt.Errorf("reading the store's clock: %w", err)
	}
	if st.Now.IsZero() {
		return t0.Add(-m.opts.GCClockSkew), nil
	}
	offset := st.Now.Sub(after) // the store read its clock before after: <= the true offset
	return t0.Add(offset - gcDriftMargin), nil
}

// sweep walks one store's keys and deletes the unreferenced ones not
// touched since t0; with dry, it only counts them.
func (m *Manager) sweep(ctx context.Context, st catalog.StoreInfo, t0 time.Time, dry bool) (rep catalog.GCStoreReport) {
	rep = catalog.GCStoreReport{ID: st.ID, Addr: st.Addr}
	ctx, cancel := context.WithTimeout(ctx, m.opts.GCSweepTimeout)
	defer cancel()
	defer func() {
		if rep.Error != "" && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			rep.Error = fmt.Sprintf("not swept within %v (the rest waits for the next collection): %s", m.opts.GCSweepTimeout, rep.Error)
		}
	}()
	s, err := m.opts.DialStore(ctx, st.ID, st.Addr)
	if err != nil {
		rep.Error = err.Error()
		return rep
	}
	defer s.Close()
	if t0, err = m.storeHorizon(ctx, s, t0); err != nil {
		rep.Error = err.Error()
		return rep
	}
	if dry {
		// Stores do not list sizes: estimate with the average block.
		stat, err := s.Stat(ctx)
		if err != nil {
			rep.Error = fmt.Sprintf("reading the store's figures: %v", err)
			return rep
		}
		defer func() {
			if stat.Blocks > 0 {
				rep.EstimatedBytes = int64(float64(rep.Unreferenced) * float64(stat.Used) / float64(stat.Blocks))
			}
		}()
	}
	var after storage.Hash
	for {
		page, err := s.List(ctx, after, gcPage)
		if err != nil {
			rep.Error = fmt.Sprintf("listing blocks: %v", err)
			return rep
		}
		if len(page) == 0 {
			if !dry {
				m.refreshUsage(ctx, st.ID, s)
			}
			return rep
		}
		if len(page) > gcPage {
			rep.Error = fmt.Sprintf("listing blocks: %d keys asked, %d returned", gcPage, len(page))
			return rep
		}
		// The cursor must advance, or a faulty store would keep the sweep
		// here forever.
		prev := after
		for _, h := range page {
			if bytes.Compare(h[:], prev[:]) <= 0 {
				rep.Error = fmt.Sprintf("listing blocks: key %s after %s: the store's listing is not in ascending order", h.Short(), prev.Short())
				return rep
			}
			prev = h
		}
		rep.Listed += int64(len(page))
		live, err := m.referenced(page)
		if err != nil {
			rep.Error = err.Error()
			return rep
		}
		var cands []storage.Hash
		for i, h := range page {
			if !live[i] {
				cands = append(cands, h)
			}
		}
		if dry {
			rep.Unreferenced += int64(len(cands))
		} else if len(cands) > 0 {
			freed, err := s.Delete(ctx, cands, t0)
			rep.FreedBytes += freed
			if err != nil {
				rep.Error = fmt.Sprintf("deleting %d blocks: %v", len(cands), err)
				return rep
			}
			rep.Unreferenced += int64(len(cands))
		}
		after = page[len(page)-1]
	}
}

// refreshUsage sets store id's usage in the store list from its own Stat,
// right after a sweep or a discard freed space: a writer that asks the
// manager next sees the room without waiting for the store's heartbeat.
// A store that does not answer keeps its heartbeat's figures.
func (m *Manager) refreshUsage(ctx context.Context, id string, s GCStore) {
	stat, err := s.Stat(ctx)
	if err != nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if st, ok := m.mu.stores[id]; ok {
		st.info.Usage = stat.Usage
	}
}

// gcLoop runs a GC every GCEvery, and when a store it skipped as busy is
// idle again (gcCatchUp), until ctx is done. A failure is logged; the next
// run tries again.
func (m *Manager) gcLoop(ctx context.Context) {
	t := time.NewTicker(m.opts.GCEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-m.gcWake:
		}
		if _, err := m.GC(ctx); err != nil && ctx.Err() == nil {
			m.log.Error("periodic garbage collection failed", zap.Error(err))
		}
	}
}

var _ GCStore = (*remote.Store)(nil)

// dialRemote reaches a store over TCP with the cluster token.
func (m *Manager) dialRemote(ctx context.Context, id, addr string) (GCStore, error) {
	s, err := remote.Dial(ctx, addr, m.opts.Token, remote.Options{Logger: m.log})
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", id, err)
	}
	return s, nil
}
