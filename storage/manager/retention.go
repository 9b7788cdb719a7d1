package manager

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/zap"
)

var keyRetention = []byte("retention")

// Retention is a job's retention policy. A zero field is a rule not set; a
// policy with no rule set keeps every version (and is not stored). A
// version is kept when any rule keeps it, when it is pinned, or when it is
// the job's latest; every other version is deleted. The manager applies
// the policy after each commit of the job and when it is set.
type Retention struct {
	// KeepLast keeps the KeepLast highest-numbered versions held.
	KeepLast int `json:"keep_last"`
	// KeepEvery keeps the versions whose number is a multiple of KeepEvery.
	KeepEvery int64 `json:"keep_every"`
	// KeepWithin keeps the versions committed at most KeepWithin ago.
	KeepWithin Duration `json:"keep_within"`
}

// IsSet reports whether any rule is set.
func (r Retention) IsSet() bool { return r.KeepLast != 0 || r.KeepEvery != 0 || r.KeepWithin != 0 }

func (r Retention) validate() error {
	if r.KeepLast < 0 || r.KeepEvery < 0 || r.KeepWithin < 0 {
		return fmt.Errorf("%w: retention: keep_last, keep_every and keep_within must not be negative (0 = not set)", ErrInvalid)
	}
	return nil
}

// String describes the policy for people: "keep the last 3, every 10th,
// those committed within 7d", or "keep everything".
func (r Retention) String() string {
	var rules []string
	if r.KeepLast > 0 {
		rules = append(rules, fmt.Sprintf("the last %d", r.KeepLast))
	}
	if r.KeepEvery > 0 {
		rules = append(rules, fmt.Sprintf("every version numbered a multiple of %d", r.KeepEvery))
	}
	if r.KeepWithin > 0 {
		rules = append(rules, "those committed within "+r.KeepWithin.String())
	}
	if len(rules) == 0 {
		return "keep everything (no policy)"
	}
	return "keep " + strings.Join(rules, ", ") + ", the pinned ones and the latest"
}

// Select returns the numbers of the versions the policy deletes among vs,
// at time now, in ascending order. The latest version (highest number) and
// pinned versions are never selected; nothing is when no rule is set.
func (r Retention) Select(vs []VersionInfo, now time.Time) []int64 {
	if !r.IsSet() || len(vs) == 0 {
		return nil
	}
	nums := make([]int64, len(vs))
	for i, v := range vs {
		nums[i] = v.Version
	}
	slices.Sort(nums)
	keep := make(map[int64]bool)
	keep[nums[len(nums)-1]] = true
	if r.KeepLast > 0 {
		for _, n := range nums[max(0, len(nums)-r.KeepLast):] {
			keep[n] = true
		}
	}
	var out []int64
	for _, v := range vs {
		switch {
		case keep[v.Version], v.Pinned:
		case r.KeepEvery > 0 && v.Version%r.KeepEvery == 0:
		case r.KeepWithin > 0 && !v.Committed.Before(now.Add(-time.Duration(r.KeepWithin))):
		default:
			out = append(out, v.Version)
		}
	}
	slices.Sort(out)
	return out
}

// Duration is a time.Duration that reads and writes as text in JSON:
// "72h0m0s" out; Go durations ("90m", "1h30m") and whole days ("7d") in.
type Duration time.Duration

// ParseDuration parses a Go duration ("36h", "90m") or a number of days
// ("7d", "1.5d").
func ParseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		f, err := strconv.ParseFloat(days, 64)
		if err == nil && f >= 0 && f < 1e5 {
			return time.Duration(f * float64(24*time.Hour)), nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("duration %q: want a Go duration like 36h or 90m, or days like 7d", s)
	}
	return d, nil
}

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler; "" is zero.
func (d *Duration) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*d = 0
		return nil
	}
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Retention returns a job's retention policy; the zero policy if none is
// set.
func (m *Manager) Retention(job string) (Retention, error) {
	var r Retention
	err := m.db.View(func(tx *bolt.Tx) error {
		_, jb, err := m.knownJob(tx, job)
		if err != nil {
			return err
		}
		return readRetention(jb, job, &r)
	})
	return r, err
}

func readRetention(jb *bolt.Bucket, job string, r *Retention) error {
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
func (m *Manager) SetRetention(job string, r Retention) ([]int64, error) {
	if err := ValidJobName(job); err != nil {
		return nil, err
	}
	if err := r.validate(); err != nil {
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
	return deleted, nil
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
	var r Retention
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

func readVersions(jb *bolt.Bucket, job string) ([]VersionInfo, error) {
	var out []VersionInfo
	vb := jb.Bucket(bucketVersions)
	if vb == nil {
		return nil, nil
	}
	err := vb.ForEach(func(k, v []byte) error {
		var vi VersionInfo
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
func deleteVersionTx(jb *bolt.Bucket, tx *bolt.Tx, job string, rec *jobRecord, v int64) (VersionInfo, error) {
	var vi VersionInfo
	vb, mb := jb.Bucket(bucketVersions), jb.Bucket(bucketManifests)
	if vb == nil || mb == nil || vb.Get(vkey(v)) == nil {
		return vi, fmt.Errorf("%w: job %s has no version %d", ErrUnknownVersion, job, v)
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
			var latest VersionInfo
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
func (m *Manager) DeleteVersion(job string, v int64) (VersionInfo, error) {
	var vi VersionInfo
	if v <= 0 {
		return vi, fmt.Errorf("%w: version %d: deleting takes an explicit version number", ErrInvalid, v)
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
			return fmt.Errorf("%w: job %s version %d is pinned; unpin it first (ckpt unpin %s --version %d)", ErrPinned, job, v, job, v)
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
		return VersionInfo{}, err
	}
	m.log.Info("version deleted", zap.String("job", job), zap.Int64("version", v))
	return vi, nil
}

// Pin marks version v of a job (0 = the latest) pinned or not, and returns
// its info. A pinned version is kept by every retention policy and refused
// by DeleteVersion. Pinning twice is harmless.
func (m *Manager) Pin(job string, v int64, pinned bool) (VersionInfo, error) {
	var vi VersionInfo
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
		return VersionInfo{}, err
	}
	m.log.Info("pin", zap.String("job", job), zap.Int64("version", vi.Version), zap.Bool("pinned", pinned))
	return vi, nil
}
