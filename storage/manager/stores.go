package manager

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/zap"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/manifest"
)

// Stores leaving the cluster. An operator drains a store (DrainStore):
// writers place no new blocks on it (it is left out of their targets),
// and repair counts its copies as absent, so every block it holds is
// copied to other stores and the manifests stop listing it. Its copies
// are still read meanwhile, and health counts them. Once nothing is left
// only on it, ForgetStore removes it from the catalog and remembers its ID
// in the "forgotten" bucket (ID -> time forgotten), so that the manager
// refuses its heartbeats rather than take it back as a new store.
var bucketForgotten = []byte("forgotten")

// store returns store id as Stores shows it.
func (m *Manager) store(id string) (catalog.StoreInfo, bool) {
	for _, st := range m.Stores() {
		if st.ID == id {
			return st, true
		}
	}
	return catalog.StoreInfo{}, false
}

func unknownStore(id string) error {
	return fmt.Errorf("%w %q (see 'ckpt stores' for the IDs the manager knows)", catalog.ErrUnknownStore, id)
}

// DrainStore starts (on) or ends a drain of store id and returns the store
// as the catalog now has it. The drain state is persisted at once.
func (m *Manager) DrainStore(id string, on bool) (catalog.StoreInfo, error) {
	m.mu.Lock()
	st, ok := m.mu.stores[id]
	if !ok {
		m.mu.Unlock()
		return catalog.StoreInfo{}, unknownStore(id)
	}
	changed := st.info.Draining != on
	if changed {
		st.info.Draining = on
		st.info.DrainingSince = time.Time{}
		if on {
			st.info.DrainingSince = m.now()
		}
		m.mu.repair.dirty = true
	}
	m.mu.Unlock()
	if changed {
		if err := m.persistStore(id); err != nil {
			return catalog.StoreInfo{}, err
		}
		m.log.Info("store drain", zap.String("id", id), zap.Bool("draining", on))
	}
	info, ok := m.store(id)
	if !ok {
		return catalog.StoreInfo{}, unknownStore(id) // forgotten meanwhile
	}
	return info, nil
}

// persistStore writes store id's state, read from memory inside the
// catalog's write transaction: writes are serialised by bbolt, so the last
// one written is the newest state (a heartbeat cannot write back a state
// older than a drain). A store forgotten meanwhile is not written.
func (m *Manager) persistStore(id string) error {
	err := m.db.Update(func(tx *bolt.Tx) error {
		m.mu.Lock()
		st, ok := m.mu.stores[id]
		var info catalog.StoreInfo
		if ok {
			info = st.info
		}
		m.mu.Unlock()
		if !ok {
			return nil
		}
		info.Alive = false
		return putJSON(tx.Bucket(bucketStores), []byte(id), info)
	})
	if err != nil {
		return fmt.Errorf("manager: store %s: %w", id, err)
	}
	return nil
}

// forgottenError is the answer to a heartbeat from a forgotten store.
func forgottenError(id string, at time.Time) error {
	return fmt.Errorf("%w: store %s was forgotten by this manager at %s ('ckpt stores forget'); it is not taken back: stop it, or start it with an empty --dir to join as a new store",
		catalog.ErrConflict, id, at.UTC().Format(time.RFC3339))
}

// ForgetStore removes store id from the catalog. It refuses (ErrConflict)
// an alive store that is not draining, and (ErrOnlyCopy) a store the
// manifests list as the only copy of any block, alive and not draining
// stores elsewhere counted; a dead store holding nothing unique is
// forgotten. It returns what the manifests placed on the store.
func (m *Manager) ForgetStore(id string) (catalog.StoreCopies, error) {
	info, ok := m.store(id)
	if !ok {
		return catalog.StoreCopies{}, unknownStore(id)
	}
	if info.Alive && !info.Draining {
		return catalog.StoreCopies{}, fmt.Errorf("%w: store %s (%s) is alive and not draining: drain it first ('ckpt stores drain %s'), wait until 'ckpt stores' says drained, then forget it",
			catalog.ErrConflict, id, info.Addr, id)
	}
	c, err := m.StoreCopies(id)
	if err != nil {
		return c, err
	}
	if c.OnlyCopy > 0 {
		how := fmt.Sprintf("drain it ('ckpt stores drain %s') and let repair copy them elsewhere", id)
		if !info.Alive {
			how = "bring it back so repair can copy them elsewhere, or delete those versions"
		}
		return c, fmt.Errorf("%w: store %s holds the only copy of %d blocks, named by %d versions (no other store that is alive and not draining has them): forgetting it would lose them; %s, then forget it",
			catalog.ErrOnlyCopy, id, c.OnlyCopy, c.OnlyVersions, how)
	}
	now := m.now()
	err = m.db.Update(func(tx *bolt.Tx) error {
		fb, err := tx.CreateBucketIfNotExists(bucketForgotten)
		if err != nil {
			return err
		}
		if err := putJSON(fb, []byte(id), now); err != nil {
			return err
		}
		if err := tx.Bucket(bucketStores).Delete([]byte(id)); err != nil {
			return err
		}
		m.mu.Lock()
		delete(m.mu.stores, id)
		m.mu.forgotten[id] = now
		m.mu.repair.dirty = true
		m.mu.Unlock()
		return nil
	})
	if err != nil {
		return c, fmt.Errorf("manager: forget store %s: %w", id, err)
	}
	m.log.Info("store forgotten", zap.String("id", id), zap.String("addr", info.Addr), zap.Int64("blocks_listed", c.Blocks))
	return c, nil
}

// loadForgotten reads the forgotten stores at Open.
func (m *Manager) loadForgotten(tx *bolt.Tx) error {
	fb := tx.Bucket(bucketForgotten)
	if fb == nil {
		return nil
	}
	return fb.ForEach(func(k, v []byte) error {
		var at time.Time
		if err := json.Unmarshal(v, &at); err != nil {
			return fmt.Errorf("manager: catalog: forgotten store %q: %w", k, err)
		}
		m.mu.forgotten[string(k)] = at
		return nil
	})
}

// StoreCopies counts what the catalog's manifests place on store id, and
// how many of those blocks have no copy, or fewer than their target, on
// other stores that are alive and not draining (for an erasure-coded
// block: fewer than K, or than K+M, shards elsewhere). It reads the manifests of
// the versions whose placement names the store.
func (m *Manager) StoreCopies(id string) (catalog.StoreCopies, error) {
	c := catalog.StoreCopies{Schema: catalog.SchemaStoreCopies, ID: id}
	if _, ok := m.store(id); !ok {
		return c, unknownStore(id)
	}
	good := map[string]bool{}
	for _, st := range m.Stores() {
		if st.Alive && !st.Draining && st.ID != id {
			good[st.ID] = true
		}
	}
	// A coded block counts shards: its target is K+M, and it is lost
	// below K (need).
	type agg struct{ target, elsewhere, need int }
	blocks := map[storage.Hash]*agg{}
	type ver struct {
		job  string
		v    int64
		keys []storage.Hash
	}
	var vers []ver
	jobs, err := m.Jobs()
	if err != nil {
		return c, err
	}
	for _, j := range jobs {
		nums, err := m.versionNumbers(j.Name, 0)
		if err != nil {
			if errorsIsUnknown(err) {
				continue
			}
			return c, err
		}
		for _, v := range nums {
			names, err := m.placementNames(j.Name, v, id)
			if err != nil {
				return c, err
			}
			if !names {
				continue
			}
			data, vi, ok, err := m.storedManifest(j.Name, v)
			if err != nil {
				return c, err
			}
			if !ok {
				continue
			}
			man, err := manifest.Unmarshal(data)
			if err != nil {
				return c, fmt.Errorf("manager: catalog: manifest of job %s version %d: %w", j.Name, v, err)
			}
			target := catalog.ReplicasOf(vi.Meta)
			vv := ver{job: j.Name, v: v}
			for i := range man.Blocks {
				b := &man.Blocks[i]
				if b.Length == 0 || b.Key.IsZero() || !slices.Contains(b.Stores, id) {
					continue
				}
				n := 0
				for _, s := range b.Stores {
					if good[s] {
						n++
					}
				}
				a, ok := blocks[b.Key]
				if !ok {
					a = &agg{need: 1}
					blocks[b.Key] = a
				}
				t := target
				if b.Erasure() {
					t, a.need = len(b.Shards), b.DataShards
				}
				a.target, a.elsewhere = max(a.target, t), max(a.elsewhere, n)
				vv.keys = append(vv.keys, b.Key)
			}
			if len(vv.keys) > 0 {
				vers = append(vers, vv)
			}
		}
	}
	c.Blocks, c.Versions = int64(len(blocks)), len(vers)
	for _, a := range blocks {
		if a.elsewhere < a.target {
			c.Pending++
		}
		if a.elsewhere < a.need {
			c.OnlyCopy++
		}
	}
	for _, vv := range vers {
		for _, k := range vv.keys {
			if a := blocks[k]; a.elsewhere < a.need {
				c.OnlyVersions++
				break
			}
		}
	}
	return c, nil
}

// placementNames reports whether version v's placement lists store id.
func (m *Manager) placementNames(job string, v int64, id string) (bool, error) {
	var names bool
	err := m.db.View(func(tx *bolt.Tx) error {
		jb := tx.Bucket(bucketJobs).Bucket([]byte(job))
		if jb == nil {
			return nil
		}
		p, err := readPlacement(jb, job, v)
		if err != nil {
			return err
		}
		names = slices.Contains(p.Stores, id)
		return nil
	})
	return names, err
}

// serveDrain answers POST (on) and DELETE (off) /v1/stores/{id}/drain.
func (m *Manager) serveDrain(on bool) func(w http.ResponseWriter, r *http.Request, body []byte) error {
	return func(w http.ResponseWriter, r *http.Request, body []byte) error {
		if err := emptyBody(body); err != nil {
			return err
		}
		info, err := m.DrainStore(r.PathValue("id"), on)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, catalog.StoreDoc{Schema: catalog.SchemaStore, StoreInfo: info})
		return nil
	}
}

// busyRef names a busy store in a report.
func busyRef(st catalog.StoreInfo) catalog.StoreRef {
	reason := "busy"
	if st.BusyReason != "" {
		reason += ": " + st.BusyReason
	}
	return catalog.StoreRef{ID: st.ID, Addr: st.Addr, LastSeen: st.LastSeen, Reason: reason}
}

// gcCatchUp asks the periodic garbage collection to run now: a store it
// skipped as busy is idle again. It never blocks.
func (m *Manager) gcCatchUp() {
	select {
	case m.gcWake <- struct{}{}:
	default:
	}
}

// deferGC records that a GC skipped store id as busy.
func (m *Manager) deferGC(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if st, ok := m.mu.stores[id]; ok {
		st.gcDeferred = true
	}
}
