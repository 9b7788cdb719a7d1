package manager

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/zap"

	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/manifest"
)

// RecoverReport says what Recover found and rebuilt.
type RecoverReport struct {
	Stores   []RecoveredStore
	Jobs     int
	Versions int // live versions rebuilt
	Deleted  int // tombstones found: versions deleted before the loss
	// Missing lists, per job, the version numbers at or below the job's
	// last number for which no store reached had a record: versions whose
	// record was only on stores not reached, or that were never recorded.
	Missing map[string][]int64
	// Bad lists records that could not be decoded (skipped).
	Bad []string
}

// RecoveredStore is one store Recover asked.
type RecoveredStore struct {
	Addr    string
	Records int    // records read
	Err     string // why it could not be read; "" when it was
}

// recoverPage is how many record names Recover asks a store for at once.
const recoverPage = 1024

// Recover rebuilds the catalog in dataDir from the catalog records kept on
// the stores at addrs (records.go), then opens it as Open does. dataDir
// must not exist or be empty: Recover never overwrites a catalog. It fails
// without creating a catalog when no store could be read.
//
// It recovers jobs (creation time, last version number, retention
// policy), and committed versions with their VersionInfo (pin included)
// and manifests byte for byte; deleted versions stay deleted. Stores,
// transactions in flight, drain state and GC and repair history are not
// kept on the stores: stores are known again from their heartbeats.
func Recover(ctx context.Context, dataDir string, addrs []string, opts Options) (*Manager, RecoverReport, error) {
	var rep RecoverReport
	if ents, err := os.ReadDir(dataDir); err == nil && len(ents) > 0 {
		return nil, rep, fmt.Errorf("%w: recover into %s: the directory is not empty (it may hold a catalog); recover into a new, empty directory", catalog.ErrInvalid, dataDir)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, rep, fmt.Errorf("manager: recover into %s: %w", dataDir, err)
	}
	if len(addrs) == 0 {
		return nil, rep, fmt.Errorf("%w: recover: no store address given", catalog.ErrInvalid)
	}
	dial := opts.DialStore
	if dial == nil {
		tmp := &Manager{opts: opts, log: zap.NewNop()}
		dial = tmp.dialRemote
	}
	recs, rep := gatherRecords(ctx, dial, addrs)
	read := 0
	for _, s := range rep.Stores {
		if s.Err == "" {
			read++
		}
	}
	if read == 0 {
		var errs []string
		for _, s := range rep.Stores {
			errs = append(errs, s.Addr+": "+s.Err)
		}
		return nil, rep, fmt.Errorf("manager: recover: no store could be read, nothing recovered (%s)", strings.Join(errs, "; "))
	}
	// Rebuild with the background loops off, so no GC runs on a
	// half-built catalog; then reopen with the caller's options.
	build := opts
	build.GCEvery, build.RepairEvery = -1, -1
	m, err := Open(dataDir, build)
	if err != nil {
		return nil, rep, err
	}
	err = m.db.Update(func(tx *bolt.Tx) error { return restoreRecords(tx, recs, &rep) })
	if cerr := m.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, rep, fmt.Errorf("manager: recover: rebuilding the catalog in %s: %w (remove the directory before trying again)", dataDir, err)
	}
	m, err = Open(dataDir, opts)
	if err != nil {
		return nil, rep, err
	}
	// Records written from now on must win over those found, whatever
	// this machine's clock says.
	m.records.mu.Lock()
	for _, g := range recs.best {
		m.records.lastSeq = max(m.records.lastSeq, g.h.Seq)
	}
	m.records.mu.Unlock()
	m.log.Info("catalog recovered from the stores", zap.Int("stores_read", read), zap.Int("stores", len(addrs)),
		zap.Int("jobs", rep.Jobs), zap.Int("versions", rep.Versions), zap.Int("deleted", rep.Deleted))
	return m, rep, nil
}

// gathered is the best record found for a name.
type gathered struct {
	h    recordHeader
	body []byte
}

// partKey names one part of one version record's manifest: the part's
// record name and the version record's sequence number.
type partKey struct {
	name string
	seq  int64
}

// found is what gatherRecords read: per name the record with the highest
// sequence number, and every manifest part by the version record it
// belongs to.
type found struct {
	best  map[string]gathered
	parts map[partKey][]byte
}

// manifest joins the manifest of version record g from its parts; ok is
// false, with the reason, when a part is missing or the whole does not
// match the length and SHA-256 recorded.
func (f found) manifest(g gathered) ([]byte, string) {
	if g.h.Parts == 0 {
		return g.body, ""
	}
	man := make([]byte, 0, g.h.Size)
	man = append(man, g.body...)
	for p := 1; p <= g.h.Parts; p++ {
		b, ok := f.parts[partKey{partRecordName(g.h.Job, g.h.Version, p), g.h.Seq}]
		if !ok {
			return nil, fmt.Sprintf("manifest part %d of %d (the bytes after the version record's first %d) is on no store read", p, g.h.Parts, len(g.body))
		}
		man = append(man, b...)
	}
	if sum := sha256.Sum256(man); int64(len(man)) != g.h.Size || hex.EncodeToString(sum[:]) != g.h.Sum {
		return nil, fmt.Sprintf("its record and %d manifest parts join to %d bytes that do not match the %d bytes and SHA-256 recorded", g.h.Parts, len(man), g.h.Size)
	}
	return man, ""
}

// gatherRecords reads every record of every store, in parallel, and keeps
// per name the one with the highest sequence number, and every part.
func gatherRecords(ctx context.Context, dial func(ctx context.Context, id, addr string) (GCStore, error), addrs []string) (found, RecoverReport) {
	var rep RecoverReport
	rep.Stores = make([]RecoveredStore, len(addrs))
	best := map[string]gathered{}
	parts := map[partKey][]byte{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, addr := range addrs {
		rep.Stores[i].Addr = addr
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := readStoreRecords(ctx, dial, addr, func(name string, data []byte) {
				h, body, err := decodeRecord(name, data)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					rep.Bad = append(rep.Bad, fmt.Sprintf("%s on %s: %v", name, addr, err))
					return
				}
				if h.Kind == kindPart {
					if !h.Deleted {
						parts[partKey{name, h.Seq}] = body
					}
					return
				}
				if g, ok := best[name]; !ok || h.Seq > g.h.Seq {
					best[name] = gathered{h: h, body: body}
				}
			})
			rep.Stores[i].Records = n
			if err != nil {
				rep.Stores[i].Err = err.Error()
			}
		}()
	}
	wg.Wait()
	slices.Sort(rep.Bad)
	return found{best, parts}, rep
}

func readStoreRecords(ctx context.Context, dial func(ctx context.Context, id, addr string) (GCStore, error), addr string, found func(name string, data []byte)) (int, error) {
	s, err := dial(ctx, addr, addr)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	rs, ok := s.(RecordStore)
	if !ok {
		return 0, errNoRecords
	}
	n := 0
	for after := ""; ; {
		names, err := rs.ListRecords(ctx, after, recoverPage)
		if err != nil {
			return n, err
		}
		if len(names) == 0 {
			return n, nil
		}
		for _, name := range names {
			data, err := rs.GetRecord(ctx, name)
			if err != nil {
				return n, err
			}
			found(name, data)
			n++
		}
		after = names[len(names)-1]
	}
}

// restoreRecords writes the catalog of the records found into a fresh
// catalog.
func restoreRecords(tx *bolt.Tx, recs found, rep *RecoverReport) error {
	type jobState struct {
		rec       jobRecord
		hasRec    bool // a job record was found
		retention *catalog.Retention
		seen      map[int64]bool // versions with a record, tombstones included
		live      []gathered
	}
	jobs := map[string]*jobState{}
	get := func(job string) *jobState {
		js := jobs[job]
		if js == nil {
			js = &jobState{rec: jobRecord{Name: job}, seen: map[int64]bool{}}
			jobs[job] = js
		}
		return js
	}
	for _, g := range recs.best {
		js := get(g.h.Job)
		switch g.h.Kind {
		case kindJob:
			js.rec.Created, js.hasRec = g.h.Created, true
			js.rec.LastVersion = max(js.rec.LastVersion, g.h.LastVersion)
			js.retention = g.h.Retention
		case kindVersion:
			js.seen[g.h.Version] = true
			js.rec.LastVersion = max(js.rec.LastVersion, g.h.Version)
			if g.h.Deleted {
				rep.Deleted++
				break
			}
			man, why := recs.manifest(g)
			if why != "" {
				// Listed as missing: its record is incomplete.
				rep.Bad = append(rep.Bad, fmt.Sprintf("%s version %d is not recovered: %s", g.h.Job, g.h.Version, why))
				delete(js.seen, g.h.Version)
				break
			}
			g.body = man
			js.live = append(js.live, g)
		}
	}
	rep.Missing = map[string][]int64{}
	for _, name := range slices.Sorted(maps.Keys(jobs)) {
		js := jobs[name]
		jb, err := tx.Bucket(bucketJobs).CreateBucket([]byte(name))
		if err != nil {
			return err
		}
		vb, err := jb.CreateBucket(bucketVersions)
		if err != nil {
			return err
		}
		mb, err := jb.CreateBucket(bucketManifests)
		if err != nil {
			return err
		}
		slices.SortFunc(js.live, func(a, b gathered) int { return cmp.Compare(a.h.Version, b.h.Version) })
		for _, g := range js.live {
			vi := *g.h.Info
			man, err := manifest.Unmarshal(g.body)
			if err != nil {
				return fmt.Errorf("job %s version %d: manifest: %w", name, vi.Version, err)
			}
			if err := putJSON(vb, vkey(vi.Version), vi); err != nil {
				return err
			}
			if err := mb.Put(vkey(vi.Version), g.body); err != nil {
				return err
			}
			if err := addRefs(tx, manifestKeys(man), +1); err != nil {
				return err
			}
			if err := putPlacement(jb, vi.Version, placementOf(man)); err != nil {
				return err
			}
			js.rec.Versions++
			js.rec.Latest, js.rec.Updated = vi.Version, vi.Committed
			if !js.hasRec && (js.rec.Created.IsZero() || vi.Created.Before(js.rec.Created)) {
				js.rec.Created = vi.Created
			}
			rep.Versions++
		}
		if js.retention != nil {
			if err := putJSON(jb, keyRetention, *js.retention); err != nil {
				return err
			}
		}
		if err := putJSON(jb, keyInfo, js.rec); err != nil {
			return err
		}
		for v := int64(1); v <= js.rec.LastVersion; v++ {
			if !js.seen[v] {
				rep.Missing[name] = append(rep.Missing[name], v)
			}
		}
		rep.Jobs++
	}
	return nil
}
