package manager

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/catalog"
)

// Discard deletes blocks an aborted write left behind: of the keys named
// per store, those that no committed version names (the refs bucket) and
// that no writer touched since the horizon T0, on each store's clock. It
// is the sweep of one collection restricted to these keys, so the same
// argument keeps it safe (docs/incremental.md): a writer in flight began
// at or after T0 and touched (Has or Put) every block it relies on after
// its begin, so the store keeps it; a version committed before the
// reference check is in the refs bucket; one committed after it began
// after T0 or touched its blocks after it. A store that cannot be reached
// is reported and its blocks are left to the next collection.
func (m *Manager) Discard(ctx context.Context, req catalog.DiscardRequest) (catalog.DiscardReport, error) {
	var rep catalog.DiscardReport
	n := 0
	for _, hs := range req.Stores {
		n += len(hs)
	}
	if n > catalog.MaxDiscardKeys {
		return rep, fmt.Errorf("%w: %d keys to discard, at most %d a request", catalog.ErrInvalid, n, catalog.MaxDiscardKeys)
	}
	arrived := m.now()
	for id, hs := range req.Stores {
		rep.Asked += int64(len(hs))
		st, ok := m.store(id)
		if !ok || !st.Alive {
			rep.Failed = append(rep.Failed, catalog.GCStoreReport{ID: id, Addr: st.Addr, Error: "not alive: its blocks are left to garbage collection"})
			continue
		}
		deleted, freed, err := m.discardOn(ctx, st, hs, arrived)
		rep.Deleted += deleted
		rep.FreedBytes += freed
		if err != nil {
			rep.Failed = append(rep.Failed, catalog.GCStoreReport{ID: id, Addr: st.Addr, Error: err.Error()})
		}
	}
	return rep, nil
}

// discardMargin is subtracted from the store's horizon for drift and
// timestamp granularity during one discard, which lasts a few requests
// (a sweep allows gcDriftMargin).
const discardMargin = time.Millisecond

// discardTries bounds the horizons a discard reads (discardOn).
const discardTries = 5

// discardOn deletes the unreferenced keys among hs on store st that were
// not touched since the horizon, and refreshes the store's usage. The
// caller touched them before the request arrived (at arrived, manager
// clock); the horizon mapped onto the store's clock is uncertain by the
// round trip of reading it, so the horizon is read again, after waiting
// that long, until it is that much past arrived: otherwise blocks put
// just before the request would be kept for the next collection. A
// transaction in flight since before arrived holds the horizon earlier:
// its blocks, and those the caller put after it began, are kept.
func (m *Manager) discardOn(ctx context.Context, st catalog.StoreInfo, hs []storage.Hash, arrived time.Time) (deleted, freed int64, err error) {
	s, err := m.opts.DialStore(ctx, st.ID, st.Addr)
	if err != nil {
		return 0, 0, err
	}
	defer s.Close()
	var t0 time.Time
	for try := 1; ; try++ {
		if t0, err = m.gcHorizon(); err != nil {
			return 0, 0, err
		}
		before := m.now()
		stat, err := s.Stat(ctx)
		after := m.now()
		if err != nil {
			return 0, 0, fmt.Errorf("reading the store's clock: %w", err)
		}
		if stat.Now.IsZero() {
			t0 = t0.Add(-m.opts.GCClockSkew)
			break
		}
		rtt := after.Sub(before)
		if t0.Sub(arrived) >= rtt+discardMargin || t0.Before(arrived) || try == discardTries {
			t0 = t0.Add(stat.Now.Sub(after) - discardMargin)
			break
		}
		wait := time.NewTimer(rtt + discardMargin)
		select {
		case <-ctx.Done():
			wait.Stop()
			return 0, 0, ctx.Err()
		case <-wait.C:
		}
	}
	live, err := m.referenced(hs)
	if err != nil {
		return 0, 0, err
	}
	var cands []storage.Hash
	for i, h := range hs {
		if !live[i] {
			cands = append(cands, h)
		}
	}
	if len(cands) == 0 {
		return 0, 0, nil
	}
	freed, err = s.Delete(ctx, cands, t0)
	if err != nil {
		return 0, freed, fmt.Errorf("deleting %d blocks: %w", len(cands), err)
	}
	m.refreshUsage(ctx, st.ID, s)
	return int64(len(cands)), freed, nil
}

func (m *Manager) serveDiscard(w http.ResponseWriter, r *http.Request, body []byte) error {
	var req catalog.DiscardRequest
	if err := decodeJSON(body, &req); err != nil {
		return err
	}
	rep, err := m.Discard(context.WithoutCancel(r.Context()), req)
	if err != nil {
		return err
	}
	rep.Schema = catalog.SchemaDiscard
	writeJSON(w, http.StatusOK, rep)
	return nil
}
