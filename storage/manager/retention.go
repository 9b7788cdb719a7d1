package manager

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ckptio/ckptio/storage/catalog"
	bolt "go.etcd.io/bbolt"
	"go.uber.org/zap"
)

var keyRetention = []byte("retention")

// Retention returns a job's retention policy; the zero policy if none is
// set.
func (m *Manager) Retention(job string) (catalog.Retention, error) {
	var r catalog.Retention
	err := m.db.View(func(tx *bolt.Tx) error {
		_, jb, err := m.knownJob(tx, job)
		if err != nil {
			return err
		}
		return readRetention(jb, job, &r)
	})
	return r, err
}

func readRetention(jb *bolt.Bucket, job string, r *catalog.Retention) error {
	v := jb.Get(keyRetention)
	if v == nil {
		return nil
	}
	if err := json.Unmarshal(v, r); err != nil {
		return fmt.Errorf("manager: catalog: retention policy of job %s: %w", job, err)
	}
	return nil
}

// SetRetention stores a job's retention policy (the zero policy removes
// it) and applies it at once; it returns the versions deleted. A job that
// never committed is created, so a policy can be set before the first
// checkpoint.
func (m *Manager) SetRetention(job string, r catalog.Retention) ([]int64, error) {
	if err := catalog.ValidJobName(job); err != nil {
		return nil, err
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	var deleted []int64
	err := m.db.Update(func(tx *bolt.Tx) error {
		now := m.now()
		_, jb, err := readJob(tx, job)
		if err != nil {
			return err
		}
		if jb == nil && !r.IsSet() {
			return nil // nothing to clear
		}
		if jb == nil {
			if jb, err = tx.Bucket(bucketJobs).CreateBucket([]byte(job)); err != nil {
				return err
			}
			if err := putJSON(jb, keyInfo, jobRecord{Name: job, Created: now}); err != nil {
				return err
			}
		}
		if !r.IsSet() {
			return jb.Delete(keyRetention)
		}
		if err := putJSON(jb, keyRetention, r); err != nil {
			return err
		}
		deleted, err = m.applyRetentionTx(tx, job, now)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("manager: retention of job %s: %w", job, err)
	}
	m.log.Info("retention policy set", zap.String("job", job), zap.Stringer("policy", r), zap.Int64s("deleted", deleted))
	m.recordChange(job, deleted...) // records.go
	return deleted, nil
}

// PreviewRetention returns the versions SetRetention(job, r) would delete
// now, changing nothing: none for a job that never committed.
func (m *Manager) PreviewRetention(job string, r catalog.Retention) ([]int64, error) {
	if err := catalog.ValidJobName(job); err != nil {
		return nil, err
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	var out []int64
	err := m.db.View(func(tx *bolt.Tx) error {
		_, jb, err := readJob(tx, job)
		if err != nil || jb == nil {
			return err
		}
		vs, err := readVersions(jb, job)
		if err != nil {
			return err
		}
		out = r.Select(vs, m.now())
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("manager: retention of job %s: %w", job, err)
	}
	return out, nil
}

// ApplyRetention applies a job's retention policy now and returns the
// versions it deleted (none if the job has no policy).
func (m *Manager) ApplyRetention(job string) ([]int64, error) {
	var deleted []int64
	err := m.db.Update(func(tx *bolt.Tx) error {
		if _, _, err := m.knownJob(tx, job); err != nil {
			return err
		}
		var err error
		deleted, err = m.applyRetentionTx(tx, job, m.now())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("manager: applying the retention policy of job %s: %w", job, err)
	}
	return deleted, nil
}

func (m *Manager) applyRetentionTx(tx *bolt.Tx, job string, now time.Time) ([]int64, error) {
	rec, jb, err := readJob(tx, job)
	if err != nil || jb == nil {
		return nil, err
	}
	var r catalog.Retention
	if err := readRetention(jb, job, &r); err != nil || !r.IsSet() {
		return nil, err
	}
	vs, err := readVersions(jb, job)
	if err != nil {
		return nil, err
	}
	deleted := r.Select(vs, now)
	for _, v := range deleted {
		if _, err := deleteVersionTx(jb, tx, job, &rec, v); err != nil {
			return nil, err
		}
	}
	if len(deleted) == 0 {
		return nil, nil
	}
	return deleted, putJSON(jb, keyInfo, rec)
}

func readVersions(jb *bolt.Bucket, job string) ([]catalog.VersionInfo, error) {
	var out []catalog.VersionInfo
	vb := jb.Bucket(bucketVersions)
	if vb == nil {
		return nil, nil
	}
	err := vb.ForEach(func(k, v []byte) error {
		var vi catalog.VersionInfo
		if err := json.Unmarshal(v, &vi); err != nil {
			return fmt.Errorf("manager: catalog: job %s version %d: %w", job, binary.BigEndian.Uint64(k), err)
		}
		out = append(out, vi)
		return nil
	})
	return out, err
}

// deleteVersionTx removes version v (which must exist) of a job: its
// VersionInfo, its manifest and its block references, and updates rec
// (the caller stores it).
func deleteVersionTx(jb *bolt.Bucket, tx *bolt.Tx, job string, rec *jobRecord, v int64) (catalog.VersionInfo, error) {
	var vi catalog.VersionInfo
	vb, mb := jb.Bucket(bucketVersions), jb.Bucket(bucketManifests)
	if vb == nil || mb == nil || vb.Get(vkey(v)) == nil {
		return vi, fmt.Errorf("%w: job %s has no version %d", catalog.ErrUnknownVersion, job, v)
	}
	if err := json.Unmarshal(vb.Get(vkey(v)), &vi); err != nil {
		return vi, fmt.Errorf("manager: catalog: job %s version %d: %w", job, v, err)
	}
	if data := mb.Get(vkey(v)); data != nil {
		keys, err := storedKeys(data)
		if err != nil {
			return vi, fmt.Errorf("manager: catalog: manifest of job %s version %d: %w", job, v, err)
		}
		if err := addRefs(tx, keys, -1); err != nil {
			return vi, err
		}
	}
	if err := vb.Delete(vkey(v)); err != nil {
		return vi, err
	}
	if err := mb.Delete(vkey(v)); err != nil {
		return vi, err
	}
	if pb := jb.Bucket(bucketPlacements); pb != nil {
		if err := pb.Delete(vkey(v)); err != nil {
			return vi, err
		}
	}
	rec.Versions--
	if rec.Latest == v {
		rec.Latest = 0
		if k, raw := vb.Cursor().Last(); k != nil {
			var latest catalog.VersionInfo
			if err := json.Unmarshal(raw, &latest); err != nil {
				return vi, fmt.Errorf("manager: catalog: job %s version %d: %w", job, binary.BigEndian.Uint64(k), err)
			}
			rec.Latest, rec.Updated = latest.Version, latest.Committed
		}
	}
	return vi, nil
}

// DeleteVersion deletes version v (> 0) of a job, the latest included,
// unless it is pinned (ErrPinned). The version's
// manifest, info and block references go in one catalog transaction; its
// number is never given again. The blocks only it referenced are freed by
// the next garbage collection.
func (m *Manager) DeleteVersion(job string, v int64) (catalog.VersionInfo, error) {
	var vi catalog.VersionInfo
	if v <= 0 {
		return vi, fmt.Errorf("%w: version %d: deleting takes an explicit version number", catalog.ErrInvalid, v)
	}
	err := m.db.Update(func(tx *bolt.Tx) error {
		v, jb, err := m.resolve(tx, job, v)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(jb.Bucket(bucketVersions).Get(vkey(v)), &vi); err != nil {
			return fmt.Errorf("manager: catalog: job %s version %d: %w", job, v, err)
		}
		if vi.Pinned {
			return fmt.Errorf("%w: job %s version %d is pinned; unpin it first (ckpt unpin %s --version %d)", catalog.ErrPinned, job, v, job, v)
		}
		rec, _, err := readJob(tx, job)
		if err != nil {
			return err
		}
		if vi, err = deleteVersionTx(jb, tx, job, &rec, v); err != nil {
			return err
		}
		return putJSON(jb, keyInfo, rec)
	})
	if err != nil {
		return catalog.VersionInfo{}, err
	}
	m.log.Info("version deleted", zap.String("job", job), zap.Int64("version", v))
	m.recordChange(job, v) // records.go
	return vi, nil
}

// Pin marks version v of a job (0 = the latest) pinned or not, and returns
// its info. A pinned version is kept by every retention policy and refused
// by DeleteVersion. Pinning twice is harmless.
func (m *Manager) Pin(job string, v int64, pinned bool) (catalog.VersionInfo, error) {
	var vi catalog.VersionInfo
	alive, _ := m.aliveStores()
	err := m.db.Update(func(tx *bolt.Tx) error {
		v, jb, err := m.resolve(tx, job, v)
		if err != nil {
			return err
		}
		vb := jb.Bucket(bucketVersions)
		if err := json.Unmarshal(vb.Get(vkey(v)), &vi); err != nil {
			return fmt.Errorf("manager: catalog: job %s version %d: %w", job, v, err)
		}
		vi.Pinned = pinned
		if err := putJSON(vb, vkey(v), vi); err != nil {
			return err
		}
		return withProtection(jb, &vi, alive)
	})
	if err != nil {
		return catalog.VersionInfo{}, err
	}
	m.log.Info("pin", zap.String("job", job), zap.Int64("version", vi.Version), zap.Bool("pinned", pinned))
	m.recordChange(job, vi.Version) // records.go
	return vi, nil
}
