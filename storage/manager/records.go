package manager

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/zap"

	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/manifest"
	"github.com/ckptio/ckptio/storage/remote"
	"github.com/ckptio/ckptio/storage/wire"
)

// Catalog records: a copy of the catalog on the stores, from which Recover
// rebuilds it when the manager's data directory is lost
// (docs/availability.md, "Recovering the catalog").
//
// The manager writes them with the stores' named-record ops
// (storage/wire, "Catalog records") right after each change it makes, and
// before it answers the request that made it:
//
//	j/JOB           job record: created, last version number, retention
//	v/JOB/VERSION   version record: VersionInfo (pin included) and the
//	                stored manifest, byte for byte; or, once the version is
//	                deleted, a tombstone with no manifest
//	v/JOB/VERSION/NNNN
//	                part NNNN (from 0001) of a manifest too large for one
//	                record (over recordPartSize bytes): the version record
//	                holds the first recordPartSize bytes, the number of
//	                parts that follow, the whole manifest's length and
//	                SHA-256; each part holds the next recordPartSize bytes
//	                and the version record's sequence number. Parts are
//	                written before their version record, on the same
//	                stores, so a version record on a store means its parts
//	                are there too. A tombstone overwrites the parts a store
//	                holds with empty part tombstones, so a deleted large
//	                manifest does not keep its disk space
//
// VERSION is the number in 20 decimal digits, so names sort by version. A
// version record goes to max(r, 1) distinct alive stores, r the version's
// replica target, preferring the stores that hold most of its blocks (if
// they are all lost, so is the version), the next ones in place of those
// that fail; a repair that rewrites a version's manifest writes its record
// again, on the new holders; job records and tombstones, which
// are small, go to every alive store. Every record carries a sequence
// number, increasing on this manager (its clock in nanoseconds, or one
// more than the last); recovery keeps, per name, the record with the
// highest, so a tombstone beats the live record a store that missed the
// delete still holds.
//
// Writing records is best effort: a store that fails or is older than the
// ops is logged and skipped, and the catalog change stands.
//
// Record bytes: the 8-byte magic "ckptrec1", a u32 big-endian length n,
// n bytes of JSON (recordHeader), then the manifest of a live version
// record (nothing for the others).

// RecordStore is what a store connection (Options.DialStore) must
// implement for the manager to keep catalog records on it; remote.Store
// does. Connections that do not are skipped.
type RecordStore interface {
	PutRecord(ctx context.Context, name string, data []byte) error
	GetRecord(ctx context.Context, name string) ([]byte, error)
	ListRecords(ctx context.Context, after string, max int) ([]string, error)
}

const (
	recordMagic = "ckptrec1"
	// recordTimeout bounds the writing of one change's records.
	recordTimeout = 30 * time.Second
	// recordStoreTimeout bounds one store's share of it: a store that was
	// alive at its last heartbeat but does not answer (gone since, its
	// address black-holed) holds a commit this long, not recordTimeout,
	// before the next store is tried.
	recordStoreTimeout = 5 * time.Second
	// recordRate is the slowest store link assumed for records: a large
	// manifest's records get recordStoreTimeout plus their size at this
	// rate.
	recordRate  = 2 << 20 // bytes per second
	kindJob     = "job"
	kindVersion = "version"
	kindPart    = "part"
	// maxRecordParts bounds the parts of one manifest (four digits).
	maxRecordParts = 9999
)

// recordPartSize is how many manifest bytes one record carries; the rest
// of a larger manifest goes in parts. The headroom below the stores'
// record limit is for the record's JSON header. Tests lower it.
var recordPartSize = wire.MaxRecordSize - 64<<10

// recordHeader is a record's JSON part.
type recordHeader struct {
	Kind string `json:"kind"` // kindJob or kindVersion
	Job  string `json:"job"`
	Seq  int64  `json:"seq"`
	// Job records.
	Created     time.Time          `json:"created,omitzero"`
	LastVersion int64              `json:"last_version,omitempty"`
	Retention   *catalog.Retention `json:"retention,omitempty"`
	// Version records.
	Version int64                `json:"version,omitempty"`
	Deleted bool                 `json:"deleted,omitempty"`
	Info    *catalog.VersionInfo `json:"info,omitempty"`
	// Version records of a manifest split in parts: how many parts
	// follow, and the whole manifest's length and SHA-256 (hex).
	Parts int    `json:"parts,omitempty"`
	Size  int64  `json:"size,omitempty"`
	Sum   string `json:"sha256,omitempty"`
	// Part records: which part (from 1); Seq is the version record's.
	Part int `json:"part,omitempty"`
}

// namedRecord is a record to write. A tombstone's (blankParts) also
// overwrites the parts the store holds of version job/version, with its
// sequence number seq.
type namedRecord struct {
	name       string
	data       []byte
	blankParts bool
	job        string
	version    int64
	seq        int64
}

func recordsSize(recs []namedRecord) int {
	n := 0
	for _, r := range recs {
		n += len(r.data)
	}
	return n
}

// recordWait is how long one store may take to write recs.
func recordWait(recs []namedRecord) time.Duration {
	return recordStoreTimeout + time.Duration(recordsSize(recs))*time.Second/recordRate
}

// recordState orders the records this manager writes.
type recordState struct {
	mu      sync.Mutex // held while one change's records are read and written
	lastSeq int64
	// noRecords: store IDs whose failure to keep records was logged at
	// warning level once already.
	noRecords sync.Map
	// syncing: store IDs whose records syncRecords is bringing up to date.
	syncing sync.Map
}

// errNoRecords: the store, or its connection, keeps no catalog records.
var errNoRecords = fmt.Errorf("the store keeps no catalog records: %w", remote.ErrNoRecords)

func isNoRecords(err error) bool {
	return errors.Is(err, errNoRecords) || errors.Is(err, remote.ErrNoRecords)
}

func jobRecordName(job string) string { return "j/" + job }

// cursorBefore is a ListRecords cursor from which every name starting
// with prefix (which ends in "/") follows: prefix without its "/". A
// store's wire decoder takes only record names as cursors, and a name
// cannot end in "/"; the few names between the two (those going on with
// '-' or '.') are skipped by the caller.
func cursorBefore(prefix string) string { return strings.TrimSuffix(prefix, "/") }

func versionRecordName(job string, v int64) string {
	return fmt.Sprintf("v/%s/%020d", job, v)
}

func partRecordName(job string, v int64, part int) string {
	return fmt.Sprintf("v/%s/%020d/%04d", job, v, part)
}

func encodeRecord(h recordHeader, body []byte) ([]byte, error) {
	js, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(recordMagic)+4+len(js)+len(body))
	out = append(out, recordMagic...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(js)))
	out = append(out, js...)
	return append(out, body...), nil
}

// decodeRecord parses a record read from a store named name; body aliases
// data. It checks that the record is what its name says.
func decodeRecord(name string, data []byte) (recordHeader, []byte, error) {
	var h recordHeader
	if len(data) < len(recordMagic)+4 || string(data[:len(recordMagic)]) != recordMagic {
		return h, nil, fmt.Errorf("manager: record %s: not a catalog record (bad magic)", name)
	}
	n := binary.BigEndian.Uint32(data[len(recordMagic):])
	rest := data[len(recordMagic)+4:]
	if uint64(n) > uint64(len(rest)) {
		return h, nil, fmt.Errorf("manager: record %s: header of %d bytes, only %d follow", name, n, len(rest))
	}
	if err := json.Unmarshal(rest[:n], &h); err != nil {
		return h, nil, fmt.Errorf("manager: record %s: %w", name, err)
	}
	body := rest[n:]
	if err := catalog.ValidJobName(h.Job); err != nil {
		return h, nil, fmt.Errorf("manager: record %s: %w", name, err)
	}
	switch h.Kind {
	case kindJob:
		if name != jobRecordName(h.Job) || len(body) != 0 || h.LastVersion < 0 {
			return h, nil, fmt.Errorf("manager: record %s: job record for %q does not match its name", name, h.Job)
		}
		if h.Retention != nil {
			if err := h.Retention.Validate(); err != nil {
				return h, nil, fmt.Errorf("manager: record %s: %w", name, err)
			}
		}
	case kindVersion:
		if h.Version <= 0 || name != versionRecordName(h.Job, h.Version) {
			return h, nil, fmt.Errorf("manager: record %s: version record for %s version %d does not match its name", name, h.Job, h.Version)
		}
		if h.Deleted != (h.Info == nil) || h.Deleted != (len(body) == 0) {
			return h, nil, fmt.Errorf("manager: record %s: a version record has info and a manifest, a tombstone neither", name)
		}
		if h.Info != nil && (h.Info.Job != h.Job || h.Info.Version != h.Version) {
			return h, nil, fmt.Errorf("manager: record %s: info is for %s version %d", name, h.Info.Job, h.Info.Version)
		}
		if h.Parts < 0 || h.Parts > maxRecordParts || h.Part != 0 ||
			(h.Parts > 0 && (h.Deleted || h.Size <= int64(len(body)) || len(h.Sum) != 2*sha256.Size)) {
			return h, nil, fmt.Errorf("manager: record %s: %d parts of a %d-byte manifest do not fit the record", name, h.Parts, h.Size)
		}
	case kindPart:
		if h.Version <= 0 || h.Part < 1 || h.Part > maxRecordParts || name != partRecordName(h.Job, h.Version, h.Part) {
			return h, nil, fmt.Errorf("manager: record %s: part %d of %s version %d does not match its name", name, h.Part, h.Job, h.Version)
		}
		if h.Info != nil || h.Parts != 0 || h.Deleted != (len(body) == 0) {
			return h, nil, fmt.Errorf("manager: record %s: a part has manifest bytes and no info, a blanked part neither", name)
		}
	default:
		return h, nil, fmt.Errorf("manager: record %s: unknown kind %q", name, h.Kind)
	}
	return h, body, nil
}

// nextSeqLocked returns the next sequence number; m.records.mu is held.
func (m *Manager) nextSeqLocked() int64 {
	s := max(m.now().UnixNano(), m.records.lastSeq+1)
	m.records.lastSeq = s
	return s
}

// recordTarget is a store to write records on.
type recordTarget struct {
	id, addr string
	blocks   int // blocks of the version it holds (version records)
}

// publish writes recs, in order, on targets and returns how many stores
// took them all; failures are logged.
func (m *Manager) publish(ctx context.Context, targets []recordTarget, recs []namedRecord) int {
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for _, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := m.putRecords(ctx, t, recs); err != nil {
				// A store without records says so on every change: warn once.
				if isNoRecords(err) {
					if _, again := m.records.noRecords.LoadOrStore(t.id, true); again {
						m.log.Debug("writing catalog records to a store", zap.String("store", t.id), zap.Error(err))
						return
					}
				}
				m.log.Warn("writing catalog records to a store", zap.String("store", t.id), zap.String("addr", t.addr), zap.Error(err))
				return
			}
			mu.Lock()
			ok++
			mu.Unlock()
		}()
	}
	wg.Wait()
	return ok
}

func (m *Manager) putRecords(ctx context.Context, t recordTarget, recs []namedRecord) error {
	ctx, cancel := context.WithTimeout(ctx, recordWait(recs))
	defer cancel()
	s, err := m.opts.DialStore(ctx, t.id, t.addr)
	if err != nil {
		return err
	}
	defer s.Close()
	rs, ok := s.(RecordStore)
	if !ok {
		return errNoRecords
	}
	return writeRecords(ctx, rs, recs)
}

// writeRecords writes recs on rs in order, blanking the parts of the
// versions whose tombstones they are.
func writeRecords(ctx context.Context, rs RecordStore, recs []namedRecord) error {
	for _, r := range recs {
		if err := rs.PutRecord(ctx, r.name, r.data); err != nil {
			return err
		}
		if r.blankParts {
			if err := blankParts(ctx, rs, r); err != nil {
				return err
			}
		}
	}
	return nil
}

// blankParts overwrites the parts of r's version on rs with part
// tombstones, which hold no manifest bytes.
func blankParts(ctx context.Context, rs RecordStore, r namedRecord) error {
	prefix := r.name + "/"
	for after := cursorBefore(prefix); ; {
		names, err := rs.ListRecords(ctx, after, recoverPage)
		if err != nil || len(names) == 0 {
			return err
		}
		for _, n := range names {
			if n < prefix {
				continue
			}
			if !strings.HasPrefix(n, prefix) {
				return nil
			}
			part, err := strconv.Atoi(n[len(prefix):])
			if err != nil || part < 1 || part > maxRecordParts || n != partRecordName(r.job, r.version, part) {
				continue // not a part this manager writes
			}
			data, err := encodeRecord(recordHeader{Kind: kindPart, Job: r.job, Version: r.version, Part: part, Deleted: true, Seq: r.seq}, nil)
			if err != nil {
				return err
			}
			if err := rs.PutRecord(ctx, n, data); err != nil {
				return err
			}
		}
		after = names[len(names)-1]
	}
}

// aliveTargets lists the alive stores, by ID.
func (m *Manager) aliveTargets() []recordTarget {
	alive, _ := m.aliveStores()
	out := make([]recordTarget, 0, len(alive))
	for id, st := range alive {
		out = append(out, recordTarget{id: id, addr: st.Addr})
	}
	slices.SortFunc(out, func(a, b recordTarget) int { return strings.Compare(a.id, b.id) })
	return out
}

// recordJobLocked encodes job's record from the catalog; nil when the job
// is unknown.
func (m *Manager) recordJobLocked(job string) ([]byte, error) {
	var h *recordHeader
	err := m.db.View(func(tx *bolt.Tx) error {
		rec, jb, err := readJob(tx, job)
		if err != nil || jb == nil {
			return err
		}
		h = &recordHeader{Kind: kindJob, Job: job, Created: rec.Created, LastVersion: rec.LastVersion}
		var r catalog.Retention
		if err := readRetention(jb, job, &r); err != nil {
			return err
		}
		if r.IsSet() {
			h.Retention = &r
		}
		return nil
	})
	if err != nil || h == nil {
		return nil, err
	}
	h.Seq = m.nextSeqLocked()
	return encodeRecord(*h, nil)
}

// recordChange writes the records of a change to job: its job record, the
// version records of versions (live ones with their manifests, deleted
// ones as tombstones). It returns when the stores have answered or
// recordTimeout (more for large manifests) passed.
func (m *Manager) recordChange(job string, versions ...int64) {
	m.records.mu.Lock()
	defer m.records.mu.Unlock()
	all := m.aliveTargets()
	if len(all) == 0 {
		m.log.Warn("no alive store to keep catalog records on; this change cannot be recovered from the stores", zap.String("job", job))
		return
	}
	var small []namedRecord
	jrec, err := m.recordJobLocked(job)
	if err != nil {
		m.log.Error("encoding a job's catalog record", zap.String("job", job), zap.Error(err))
		return
	}
	if jrec != nil {
		small = append(small, namedRecord{name: jobRecordName(job), data: jrec})
	}
	type live struct {
		v        int64
		recs     []namedRecord
		replicas int
		holders  map[string]int
	}
	var lives []live
	wait := recordTimeout
	for _, v := range versions {
		recs, replicas, holders, err := m.recordVersionLocked(job, v)
		if err != nil {
			m.log.Error("encoding a version's catalog record", zap.String("job", job), zap.Int64("version", v), zap.Error(err))
			continue
		}
		if holders == nil { // a tombstone
			small = append(small, recs...)
			continue
		}
		lives = append(lives, live{v, recs, replicas, holders})
		wait += recordWait(recs)
	}
	ctx, cancel := context.WithTimeout(m.ctx, wait)
	defer cancel()
	for _, l := range lives {
		targets := slices.Clone(all)
		for i := range targets {
			targets[i].blocks = l.holders[targets[i].id]
		}
		slices.SortStableFunc(targets, func(a, b recordTarget) int { return cmp.Compare(b.blocks, a.blocks) })
		// A store that fails (alive by its last heartbeat, gone since) is
		// replaced by the next one.
		need, n := max(l.replicas, 1), 0
		for n < need && len(targets) > 0 && ctx.Err() == nil {
			batch := targets[:min(need-n, len(targets))]
			targets = targets[len(batch):]
			n += m.publish(ctx, batch, l.recs)
		}
		if n < need {
			m.log.Warn("a version's catalog record is on fewer stores than its replica target",
				zap.String("job", job), zap.Int64("version", l.v), zap.Int("stores", n), zap.Int("replicas", l.replicas))
		}
	}
	if len(small) > 0 {
		if n := m.publish(ctx, all, small); n == 0 {
			m.log.Warn("no store took a job's catalog records", zap.String("job", job))
		}
	}
}

// recordVersionLocked encodes version v's records: the live version with
// its manifest (its parts first, when it needs any, the version record
// last), the number of its blocks each store holds and its replica
// target; or, when the catalog no longer has v, a tombstone and nil
// holders.
func (m *Manager) recordVersionLocked(job string, v int64) ([]namedRecord, int, map[string]int, error) {
	var vi catalog.VersionInfo
	var man []byte
	err := m.db.View(func(tx *bolt.Tx) error {
		_, jb, err := readJob(tx, job)
		if err != nil || jb == nil {
			return err
		}
		vb, mb := jb.Bucket(bucketVersions), jb.Bucket(bucketManifests)
		if vb == nil || mb == nil || vb.Get(vkey(v)) == nil {
			return nil
		}
		if err := json.Unmarshal(vb.Get(vkey(v)), &vi); err != nil {
			return err
		}
		man = bytes.Clone(mb.Get(vkey(v)))
		return nil
	})
	if err != nil {
		return nil, 0, nil, err
	}
	h := recordHeader{Kind: kindVersion, Job: job, Version: v, Seq: m.nextSeqLocked()}
	name := versionRecordName(job, v)
	if man == nil {
		h.Deleted = true
		data, err := encodeRecord(h, nil)
		return []namedRecord{{name: name, data: data, blankParts: true, job: job, version: v, seq: h.Seq}}, 0, nil, err
	}
	parsed, err := manifest.Unmarshal(man)
	if err != nil {
		return nil, 0, nil, err
	}
	holders := map[string]int{}
	for _, b := range parsed.Blocks {
		for _, s := range b.Stores {
			if s != "" { // a shard no store holds
				holders[s]++
			}
		}
	}
	vi.Protected = false // computed when read
	replicas, err := catalog.ParseReplicas(vi.Meta)
	if err != nil {
		return nil, 0, nil, err
	}
	// An erasure-coded version survives M lost stores: its record, kept
	// whole, needs M+1 copies to survive as many.
	if sc, err := catalog.ParseRedundancy(vi.Meta); err != nil {
		return nil, 0, nil, err
	} else if !sc.IsZero() {
		replicas = max(replicas, sc.Parity+1)
	}
	h.Info = &vi
	first := man
	var recs []namedRecord
	if len(man) > recordPartSize {
		first = man[:recordPartSize]
		h.Parts = (len(man) - 1) / recordPartSize
		if h.Parts > maxRecordParts {
			return nil, 0, nil, fmt.Errorf("a manifest of %d bytes needs %d record parts, above the %d a version record can name", len(man), h.Parts, maxRecordParts)
		}
		sum := sha256.Sum256(man)
		h.Size, h.Sum = int64(len(man)), hex.EncodeToString(sum[:])
		for p := 1; p <= h.Parts; p++ {
			chunk := man[p*recordPartSize : min((p+1)*recordPartSize, len(man))]
			data, err := encodeRecord(recordHeader{Kind: kindPart, Job: job, Version: v, Part: p, Seq: h.Seq}, chunk)
			if err != nil {
				return nil, 0, nil, err
			}
			recs = append(recs, namedRecord{name: partRecordName(job, v, p), data: data})
		}
	}
	data, err := encodeRecord(h, first)
	if err != nil {
		return nil, 0, nil, err
	}
	if len(data) > wire.MaxRecordSize {
		return nil, 0, nil, fmt.Errorf("record of %d bytes is above the stores' limit of %d (the version's metadata is too large to keep on the stores)", len(data), wire.MaxRecordSize)
	}
	return append(recs, namedRecord{name: name, data: data}), replicas, holders, nil
}

// Stores that join. A store that is new to the catalog, or comes back
// after being dead, missed the records written meanwhile: the job records
// of every change, and the tombstones of versions deleted while it was
// away, while it may still hold those versions' live records. Left so, a
// recovery from the stores alive later could lose a retention policy, or
// bring back a deleted version whose tombstones went down with the
// stores that had them. syncRecords writes the store every job's record
// and a tombstone over each live version record it holds of a version
// the catalog no longer has. Version records of live versions are not
// copied to it: they go to the stores that hold the versions' blocks,
// and a repair that copies blocks there writes them again.

// rejoined says whether a heartbeat is a store joining: one the catalog
// does not know (known false), or one silent for longer than, by the catalog,
// the dead threshold, plus, when this manager has not heard from it since
// it started (live false), the age the persisted last-seen time may have
// (storePersistEvery).
func (m *Manager) rejoined(known, live bool, lastSeen, now time.Time) bool {
	if !known {
		return true
	}
	gap := m.opts.DeadAfter
	if !live {
		gap += storePersistEvery
	}
	return now.Sub(lastSeen) > gap
}

// queueRecordSync starts syncRecords for store id in the background,
// once at a time per store.
func (m *Manager) queueRecordSync(id, addr string) {
	if _, busy := m.records.syncing.LoadOrStore(id, true); busy {
		return
	}
	// Added under m.mu, as Close sets closed before it waits.
	m.mu.Lock()
	if m.mu.closed {
		m.mu.Unlock()
		m.records.syncing.Delete(id)
		return
	}
	m.wg.Add(1)
	m.mu.Unlock()
	go func() {
		defer m.wg.Done()
		n, err := m.syncRecords(id, addr)
		m.records.syncing.Delete(id)
		if h := m.opts.hooks; h != nil && h.recordsSynced != nil {
			defer h.recordsSynced(id)
		}
		switch {
		case err == nil:
			m.log.Info("catalog records brought up to date on a store that joined", zap.String("store", id), zap.Int("records", n))
		case isNoRecords(err), m.ctx.Err() != nil:
		default:
			m.log.Warn("bringing the catalog records up to date on a store that joined", zap.String("store", id), zap.String("addr", addr), zap.Error(err))
		}
	}()
}

// syncRecords writes store id the records it missed (see above) and
// returns how many it wrote. Each record is encoded and written under
// m.records.mu, so it cannot overwrite a newer one a change writes
// meanwhile, and the lock is released between records, so commits are
// not held for the whole sync; each write has recordStoreTimeout, and the
// first failure ends the sync (the store is tried again when it next
// joins).
func (m *Manager) syncRecords(id, addr string) (int, error) {
	jobs, err := m.Jobs()
	if err != nil {
		return 0, err
	}
	ctx := m.ctx
	dctx, dcancel := context.WithTimeout(ctx, recordStoreTimeout)
	s, err := m.opts.DialStore(dctx, id, addr)
	dcancel()
	if err != nil {
		return 0, err
	}
	defer s.Close()
	rs, ok := s.(RecordStore)
	if !ok {
		return 0, errNoRecords
	}
	// put encodes records with enc and writes them, under the lock.
	put := func(enc func() ([]namedRecord, error)) (int, error) {
		m.records.mu.Lock()
		defer m.records.mu.Unlock()
		recs, err := enc()
		if err != nil {
			return 0, err
		}
		pctx, pcancel := context.WithTimeout(ctx, recordWait(recs))
		defer pcancel()
		if err := writeRecords(pctx, rs, recs); err != nil {
			return 0, err
		}
		return len(recs), nil
	}
	n := 0
	for _, j := range jobs {
		k, err := put(func() ([]namedRecord, error) {
			data, err := m.recordJobLocked(j.Name)
			if err != nil || data == nil {
				return nil, err
			}
			return []namedRecord{{name: jobRecordName(j.Name), data: data}}, nil
		})
		n += k
		if err != nil {
			return n, err
		}
	}
	// Live records of versions deleted meanwhile.
	for after := cursorBefore("v/"); ; {
		lctx, lcancel := context.WithTimeout(ctx, recordStoreTimeout)
		names, err := rs.ListRecords(lctx, after, recoverPage)
		lcancel()
		if err != nil || len(names) == 0 {
			return n, err
		}
		for _, name := range names {
			if name < "v/" {
				continue
			}
			if !strings.HasPrefix(name, "v/") {
				return n, nil
			}
			job, v, ok := parseVersionRecordName(name)
			if !ok {
				continue // a part, or not a name this manager writes
			}
			if _, err := m.Version(job, v); err == nil {
				continue
			} else if !errors.Is(err, catalog.ErrUnknownVersion) && !errors.Is(err, catalog.ErrUnknownJob) {
				return n, err
			}
			gctx, gcancel := context.WithTimeout(ctx, recordStoreTimeout+wire.MaxRecordSize*time.Second/recordRate)
			data, err := rs.GetRecord(gctx, name)
			gcancel()
			if err != nil {
				return n, err
			}
			if h, _, err := decodeRecord(name, data); err == nil && h.Deleted {
				continue // a tombstone already
			}
			k, err := put(func() ([]namedRecord, error) {
				recs, _, holders, err := m.recordVersionLocked(job, v)
				if err == nil && holders != nil {
					return nil, nil // the catalog has the version after all: nothing to bury
				}
				return recs, err
			})
			n += k
			if err != nil {
				return n, err
			}
		}
		after = names[len(names)-1]
	}
}

// parseVersionRecordName splits "v/JOB/VERSION" (versionRecordName); ok
// is false for any other name.
func parseVersionRecordName(name string) (string, int64, bool) {
	parts := strings.Split(name, "/")
	if len(parts) != 3 || parts[0] != "v" || len(parts[2]) != 20 {
		return "", 0, false
	}
	v, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil || v <= 0 || catalog.ValidJobName(parts[1]) != nil || versionRecordName(parts[1], v) != name {
		return "", 0, false
	}
	return parts[1], v, true
}
