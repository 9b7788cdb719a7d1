package manager

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/zap"

	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/manifest"
)

// Catalog layout (bbolt buckets; values are JSON unless noted):
//
//	meta      "format" -> "1", "refs" -> "1" once the refs bucket is complete,
//	          "placements" -> "1" once every version has its placement
//	stores    store ID -> storeRecord
//	forgotten store ID -> time it was forgotten (stores.go; created on the first forget)
//	txns      txn ID   -> Txn
//	refs      block key (32 bytes) -> uint64 BE count of committed versions naming it (refs.go)
//	jobs      job name -> bucket:
//	            "info"      -> jobRecord
//	            "retention" -> Retention (absent: no policy)
//	            "versions"  -> bucket: uint64 BE version -> VersionInfo
//	            "manifests" -> bucket: uint64 BE version -> Arrow IPC manifest bytes
//	            "placements" -> bucket: uint64 BE version -> placement (health.go)
var (
	bucketMeta      = []byte("meta")
	bucketStores    = []byte("stores")
	bucketTxns      = []byte("txns")
	bucketJobs      = []byte("jobs")
	bucketVersions  = []byte("versions")
	bucketManifests = []byte("manifests")
	keyFormat       = []byte("format")
	keyInfo         = []byte("info")
)

const catalogFormat = "1"

// jobRecord is a job's header in the catalog.
type jobRecord struct {
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
	// LastVersion is the highest version number ever assigned; the next
	// commit gets LastVersion+1 even if versions were deleted.
	LastVersion int64     `json:"last_version"`
	Versions    int       `json:"versions"` // versions held
	Latest      int64     `json:"latest"`   // highest version held
	Updated     time.Time `json:"updated"`
}

func vkey(v int64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], uint64(v))
	return k[:]
}

func (m *Manager) init() error {
	return m.db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketMeta, bucketStores, bucketTxns, bucketJobs, bucketRefs} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return fmt.Errorf("manager: init catalog: %w", err)
			}
		}
		meta := tx.Bucket(bucketMeta)
		switch f := meta.Get(keyFormat); {
		case f == nil:
			if err := meta.Put(keyFormat, []byte(catalogFormat)); err != nil {
				return fmt.Errorf("manager: init catalog: %w", err)
			}
		case string(f) != catalogFormat:
			return fmt.Errorf("manager: catalog format %q, this build reads %q", f, catalogFormat)
		}
		if meta.Get(keyRefsBuilt) == nil {
			n, err := rebuildRefs(tx)
			if err != nil {
				return fmt.Errorf("manager: init catalog: counting block references: %w", err)
			}
			m.log.Info("block reference counts built from the manifests", zap.Int("blocks", n))
		}
		if meta.Get(keyPlacements) == nil {
			n, err := buildPlacements(tx)
			if err != nil {
				return fmt.Errorf("manager: init catalog: recording block placements: %w", err)
			}
			if n > 0 {
				m.log.Info("block placements recorded from the manifests", zap.Int("versions", n))
			}
		}
		if err := m.loadForgotten(tx); err != nil {
			return err
		}
		return tx.Bucket(bucketStores).ForEach(func(k, v []byte) error {
			var info catalog.StoreInfo
			if err := json.Unmarshal(v, &info); err != nil {
				return fmt.Errorf("manager: catalog: store %q: %w", k, err)
			}
			info.Alive = false
			m.mu.stores[info.ID] = &storeState{info: info, persisted: info.LastSeen}
			return nil
		})
	})
}

func putJSON(b *bolt.Bucket, k []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(k, data)
}

func unknownTxn(id string, timeout time.Duration) error {
	return fmt.Errorf("%w: transaction %s (never begun, already committed or aborted, or not renewed within %s)", catalog.ErrUnknownTxn, id, timeout)
}

// getTxn reads a live transaction; an expired one is deleted and reported
// as unknown.
func (m *Manager) getTxn(tx *bolt.Tx, id string, now time.Time) (catalog.Txn, error) {
	b := tx.Bucket(bucketTxns)
	var t catalog.Txn
	if len(id) == 0 || len(id) > 64 {
		return t, unknownTxn(id, m.opts.TxnTimeout)
	}
	v := b.Get([]byte(id))
	if v == nil {
		return t, unknownTxn(id, m.opts.TxnTimeout)
	}
	if err := json.Unmarshal(v, &t); err != nil {
		return t, fmt.Errorf("manager: catalog: txn %s: %w", id, err)
	}
	if now.After(t.Expires) {
		if tx.Writable() {
			if err := b.Delete([]byte(id)); err != nil {
				return t, err
			}
		}
		return t, fmt.Errorf("%w: transaction %s of job %s expired at %s (not renewed within %s)",
			catalog.ErrUnknownTxn, id, t.Job, t.Expires.UTC().Format(time.RFC3339), m.opts.TxnTimeout)
	}
	return t, nil
}

// Begin starts a version of job and returns its transaction. Nothing of it
// is listed until Commit.
func (m *Manager) Begin(job string) (catalog.Txn, error) {
	if err := catalog.ValidJobName(job); err != nil {
		return catalog.Txn{}, err
	}
	var raw [16]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return catalog.Txn{}, fmt.Errorf("manager: begin: %w", err)
	}
	t := catalog.Txn{ID: hex.EncodeToString(raw[:]), Job: job}
	// Began is read under bbolt's writer lock: garbage collection reads its
	// horizon under the same lock (gcHorizon), so a transaction it does not
	// see began after the horizon was taken.
	if err := m.db.Update(func(tx *bolt.Tx) error {
		now := m.now()
		t.Began, t.Expires = now, now.Add(m.opts.TxnTimeout)
		return putJSON(tx.Bucket(bucketTxns), []byte(t.ID), t)
	}); err != nil {
		return catalog.Txn{}, fmt.Errorf("manager: begin %s: %w", job, err)
	}
	m.log.Debug("begin", zap.String("job", job), zap.String("txn", t.ID))
	return t, nil
}

// Renew pushes a transaction's expiry TxnTimeout into the future.
func (m *Manager) Renew(id string) (catalog.Txn, error) {
	var t catalog.Txn
	err := m.db.Update(func(tx *bolt.Tx) error {
		now := m.now()
		var err error
		if t, err = m.getTxn(tx, id, now); err != nil {
			return err
		}
		t.Expires = now.Add(m.opts.TxnTimeout)
		return putJSON(tx.Bucket(bucketTxns), []byte(id), t)
	})
	return t, err
}

// Abort discards a transaction.
func (m *Manager) Abort(id string) error {
	return m.db.Update(func(tx *bolt.Tx) error {
		t, err := m.getTxn(tx, id, m.now())
		if err != nil {
			return err
		}
		m.log.Info("abort", zap.String("job", t.Job), zap.String("txn", id))
		return tx.Bucket(bucketTxns).Delete([]byte(id))
	})
}

// expireTxns removes the transactions past their expiry.
func (m *Manager) expireTxns() (int, error) {
	var expired []catalog.Txn
	err := m.db.Update(func(tx *bolt.Tx) error {
		now := m.now()
		b := tx.Bucket(bucketTxns)
		expired = expired[:0]
		if err := b.ForEach(func(k, v []byte) error {
			var t catalog.Txn
			if err := json.Unmarshal(v, &t); err != nil || now.After(t.Expires) {
				t.ID = string(k)
				expired = append(expired, t)
			}
			return nil
		}); err != nil {
			return err
		}
		for _, t := range expired {
			if err := b.Delete([]byte(t.ID)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("manager: expire transactions: %w", err)
	}
	for _, t := range expired {
		m.log.Warn("abandoned transaction removed", zap.String("txn", t.ID), zap.String("job", t.Job),
			zap.Time("began", t.Began), zap.Time("expired", t.Expires))
	}
	return len(expired), nil
}

// Commit validates the manifest (Arrow IPC bytes) of a transaction, assigns
// the job's next version number, and stores the manifest and its
// VersionInfo, adds its block references and removes the transaction in
// one catalog transaction. The stored manifest carries the assigned
// version and the computed logical bytes in its version-level fields; its
// blocks are stored as the writer encoded them. When the job has a retention
// policy it is applied right after; a failure to apply it is logged, the
// commit stands.
func (m *Manager) Commit(id string, manifestBytes []byte) (vi catalog.VersionInfo, err error) {
	defer m.observeCommit(time.Now(), &vi, &err)
	vi, policy, err := m.commit(id, manifestBytes)
	if err != nil {
		return vi, err
	}
	if !policy {
		m.recordChange(vi.Job, vi.Version) // records.go
		return vi, nil
	}
	deleted, err := m.ApplyRetention(vi.Job)
	if err != nil {
		m.log.Error("applying the retention policy after a commit", zap.String("job", vi.Job), zap.Int64("version", vi.Version), zap.Error(err))
	} else if len(deleted) > 0 {
		m.log.Info("retention deleted versions", zap.String("job", vi.Job), zap.Int64s("versions", deleted))
	}
	m.recordChange(vi.Job, append([]int64{vi.Version}, deleted...)...)
	return vi, nil
}

// commit is Commit without the retention; policy reports whether the job
// has a retention policy.
func (m *Manager) commit(id string, manifestBytes []byte) (vi catalog.VersionInfo, policy bool, err error) {
	var t catalog.Txn
	err = m.db.View(func(tx *bolt.Tx) error {
		var err error
		t, err = m.getTxn(tx, id, m.now())
		return err
	})
	if err != nil {
		return catalog.VersionInfo{}, false, err
	}
	man, err := manifest.Unmarshal(manifestBytes)
	if err != nil {
		return catalog.VersionInfo{}, false, fmt.Errorf("%w: commit %s: %w", catalog.ErrInvalid, id, err)
	}
	if man.Job != t.Job {
		return catalog.VersionInfo{}, false, fmt.Errorf("%w: manifest is for job %q but transaction %s is for job %q", catalog.ErrConflict, man.Job, id, t.Job)
	}
	replicas, err := catalog.ParseReplicas(man.Meta)
	if err != nil {
		return catalog.VersionInfo{}, false, fmt.Errorf("commit %s: %w", id, err)
	}
	if err := checkRedundancy(man); err != nil {
		return catalog.VersionInfo{}, false, fmt.Errorf("commit %s: %w", id, err)
	}
	man.LogicalBytes = man.Size()
	keys := manifestKeys(man)
	place := placementOf(man)
	vi = catalog.VersionInfo{
		Job: t.Job, Created: man.Created, Kind: man.Kind, Meta: man.Meta,
		Objects: len(man.Objects()), Blocks: len(man.Blocks),
		LogicalBytes: man.LogicalBytes, NewBytes: man.NewBytes, SentBytes: man.SentBytes,
		Status: catalog.StatusCommitted, Replicas: replicas,
	}
	// Stamp the version it will most likely get outside the write
	// transaction; if another commit of the job takes it first, stamp
	// again. Stamping encodes the version-level fields only: the blocks'
	// batches are kept as the writer encoded them (manifest.Splice).
	hdr := *man
	hdr.Blocks = nil
	for {
		var next int64
		if err := m.db.View(func(tx *bolt.Tx) error {
			rec, _, err := readJob(tx, t.Job)
			next = rec.LastVersion + 1
			return err
		}); err != nil {
			return catalog.VersionInfo{}, false, err
		}
		hdr.Version = next
		data, err := manifest.Splice(&hdr, manifestBytes)
		if err != nil {
			return catalog.VersionInfo{}, false, fmt.Errorf("manager: commit %s: %w", id, err)
		}
		vi.Version, vi.ManifestBytes = next, int64(len(data))
		raced := false
		err = m.db.Update(func(tx *bolt.Tx) error {
			now := m.now()
			if _, err := m.getTxn(tx, id, now); err != nil {
				return err
			}
			rec, jb, err := readJob(tx, t.Job)
			if err != nil {
				return err
			}
			if rec.LastVersion+1 != next {
				raced = true
				return nil
			}
			if jb == nil {
				if jb, err = tx.Bucket(bucketJobs).CreateBucket([]byte(t.Job)); err != nil {
					return err
				}
				rec = jobRecord{Name: t.Job, Created: now}
			}
			vi.Committed = now
			rec.LastVersion, rec.Latest, rec.Updated = next, next, now
			rec.Versions++
			vb, err := jb.CreateBucketIfNotExists(bucketVersions)
			if err != nil {
				return err
			}
			mb, err := jb.CreateBucketIfNotExists(bucketManifests)
			if err != nil {
				return err
			}
			if err := putJSON(vb, vkey(next), vi); err != nil {
				return err
			}
			if err := mb.Put(vkey(next), data); err != nil {
				return err
			}
			if err := putJSON(jb, keyInfo, rec); err != nil {
				return err
			}
			if err := addRefs(tx, keys, +1); err != nil {
				return err
			}
			if err := putPlacement(jb, next, place); err != nil {
				return err
			}
			policy = jb.Get(keyRetention) != nil
			return tx.Bucket(bucketTxns).Delete([]byte(id))
		})
		if err != nil {
			return catalog.VersionInfo{}, false, fmt.Errorf("manager: commit %s of job %s: %w", id, t.Job, err)
		}
		if !raced {
			alive, _ := m.aliveStores()
			vi.Protected = place.protected(withTarget(&vi), alive)
			m.markRepairDirty()
			m.log.Info("commit", zap.String("job", t.Job), zap.Int64("version", next), zap.String("txn", id),
				zap.Int("blocks", vi.Blocks), zap.Int64("logical_bytes", vi.LogicalBytes))
			return vi, policy, nil
		}
	}
}

// readJob returns a job's record and bucket; a zero record and nil bucket
// if the job has never committed.
func readJob(tx *bolt.Tx, job string) (jobRecord, *bolt.Bucket, error) {
	var rec jobRecord
	jb := tx.Bucket(bucketJobs).Bucket([]byte(job))
	if jb == nil {
		return rec, nil, nil
	}
	if err := json.Unmarshal(jb.Get(keyInfo), &rec); err != nil {
		return rec, nil, fmt.Errorf("manager: catalog: job %s: %w", job, err)
	}
	return rec, jb, nil
}

func (m *Manager) knownJob(tx *bolt.Tx, job string) (jobRecord, *bolt.Bucket, error) {
	if err := catalog.ValidJobName(job); err != nil {
		return jobRecord{}, nil, err
	}
	rec, jb, err := readJob(tx, job)
	if err == nil && jb == nil {
		err = fmt.Errorf("%w: no version of job %q was ever committed", catalog.ErrUnknownJob, job)
	}
	return rec, jb, err
}

// Versions lists a job's committed versions, oldest first.
func (m *Manager) Versions(job string) ([]catalog.VersionInfo, error) {
	var out []catalog.VersionInfo
	alive, _ := m.aliveStores()
	err := m.db.View(func(tx *bolt.Tx) error {
		_, jb, err := m.knownJob(tx, job)
		if err != nil {
			return err
		}
		vb := jb.Bucket(bucketVersions)
		if vb == nil {
			return nil
		}
		return vb.ForEach(func(k, v []byte) error {
			var vi catalog.VersionInfo
			if err := json.Unmarshal(v, &vi); err != nil {
				return fmt.Errorf("manager: catalog: job %s version %x: %w", job, k, err)
			}
			if err := withProtection(jb, &vi, alive); err != nil {
				return err
			}
			out = append(out, vi)
			return nil
		})
	})
	return out, err
}

// resolve finds version v of a job (0 = latest) and returns its bucket.
func (m *Manager) resolve(tx *bolt.Tx, job string, v int64) (int64, *bolt.Bucket, error) {
	rec, jb, err := m.knownJob(tx, job)
	if err != nil {
		return 0, nil, err
	}
	if rec.Versions == 0 {
		return 0, nil, fmt.Errorf("%w: job %s has no committed versions", catalog.ErrNoVersions, job)
	}
	if v == 0 {
		v = rec.Latest
	}
	vb := jb.Bucket(bucketVersions)
	if v < 0 || vb == nil || vb.Get(vkey(v)) == nil {
		return 0, nil, fmt.Errorf("%w: job %s has no version %d (latest is %d)", catalog.ErrUnknownVersion, job, v, rec.Latest)
	}
	return v, jb, nil
}

// Version returns one version's info; v = 0 means the latest.
func (m *Manager) Version(job string, v int64) (catalog.VersionInfo, error) {
	var vi catalog.VersionInfo
	alive, _ := m.aliveStores()
	err := m.db.View(func(tx *bolt.Tx) error {
		v, jb, err := m.resolve(tx, job, v)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(jb.Bucket(bucketVersions).Get(vkey(v)), &vi); err != nil {
			return err
		}
		return withProtection(jb, &vi, alive)
	})
	return vi, err
}

// Manifest returns a copy of the stored manifest bytes of one version
// (v = 0 means the latest) and the version number resolved.
func (m *Manager) Manifest(job string, v int64) ([]byte, int64, error) {
	var data []byte
	err := m.db.View(func(tx *bolt.Tx) error {
		var jb *bolt.Bucket
		var err error
		v, jb, err = m.resolve(tx, job, v)
		if err != nil {
			return err
		}
		mb := jb.Bucket(bucketManifests)
		if mb == nil || mb.Get(vkey(v)) == nil {
			return fmt.Errorf("manager: catalog: job %s version %d has no manifest", job, v)
		}
		data = append([]byte(nil), mb.Get(vkey(v))...)
		return nil
	})
	return data, v, err
}

// Jobs lists the jobs with committed versions or transactions in flight,
// ordered by name.
func (m *Manager) Jobs() ([]catalog.JobInfo, error) {
	var out []catalog.JobInfo
	err := m.db.View(func(tx *bolt.Tx) error {
		inflight := make(map[string]int)
		now := m.now()
		if err := tx.Bucket(bucketTxns).ForEach(func(k, v []byte) error {
			var t catalog.Txn
			if json.Unmarshal(v, &t) == nil && !now.After(t.Expires) {
				inflight[t.Job]++
			}
			return nil
		}); err != nil {
			return err
		}
		if err := tx.Bucket(bucketJobs).ForEach(func(k, _ []byte) error {
			rec, jb, err := readJob(tx, string(k))
			if err != nil {
				return err
			}
			ji := catalog.JobInfo{Name: rec.Name, Versions: rec.Versions, Latest: rec.Latest, Updated: rec.Updated, InFlight: inflight[rec.Name]}
			if jb != nil {
				vs, err := readVersions(jb, rec.Name)
				if err != nil {
					return err
				}
				for _, v := range vs {
					ji.LogicalBytes += v.LogicalBytes
					if v.Version == rec.Latest {
						if n, err := strconv.ParseInt(v.Meta[catalog.MetaStep], 10, 64); err == nil {
							ji.LatestStep = &n
						}
					}
				}
			}
			out = append(out, ji)
			delete(inflight, rec.Name)
			return nil
		}); err != nil {
			return err
		}
		for job, n := range inflight {
			out = append(out, catalog.JobInfo{Name: job, InFlight: n})
		}
		return nil
	})
	sortJobs(out)
	return out, err
}
func sortJobs(js []catalog.JobInfo) {
	slices.SortFunc(js, func(a, b catalog.JobInfo) int { return strings.Compare(a.Name, b.Name) })
}

// checkRedundancy checks that a manifest's rows agree with its meta: an
// erasure-coded version (catalog.MetaRedundancy) has every row holding
// data coded with its scheme, a replicated one has no coded row. Health,
// repair and the records kept on the stores count a version's copies by
// one rule, so a version mixing both is refused.
func checkRedundancy(man *manifest.Manifest) error {
	sc, err := catalog.ParseRedundancy(man.Meta)
	if err != nil {
		return err
	}
	for i := range man.Blocks {
		b := &man.Blocks[i]
		if b.Length == 0 {
			continue
		}
		switch {
		case sc.IsZero() && b.Erasure():
			return fmt.Errorf("%w: block of %q at offset %d is erasure-coded (%d of %d shards) but the version's meta names no %q",
				catalog.ErrInvalid, b.Object, b.Offset, b.DataShards, len(b.Shards), catalog.MetaRedundancy)
		case !sc.IsZero() && (b.DataShards != sc.Data || len(b.Shards) != sc.Shards()):
			return fmt.Errorf("%w: version is %s but its block of %q at offset %d has %d data shards of %d",
				catalog.ErrInvalid, sc, b.Object, b.Offset, b.DataShards, len(b.Shards))
		}
	}
	return nil
}
