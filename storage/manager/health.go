package manager

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/manifest"
)

// Health reports the state of a job's versions (all of them, or only
// version v when v > 0) from the stores' own answers: one batched Has per
// alive store over the blocks the manifests list on it. No block is read.
// A store that does not answer is reported and its copies are not
// counted. Has touches the blocks held, as a writer's reuse does.
func (m *Manager) Health(ctx context.Context, job string, v int64) (catalog.JobHealth, error) {
	alive, dead := m.aliveStores()
	h := catalog.JobHealth{Job: job, Checked: m.now(), Versions: []catalog.VersionHealth{}, Skipped: dead}
	conns := newStoreConns(m, alive)
	defer conns.Close()
	sv, err := m.surveyJob(ctx, conns, job, v)
	if err != nil {
		return h, err
	}
	// Stores not heard from since this manager started, while a store
	// that is alive could still be about to heartbeat: their copies may
	// be fine.
	unheard := map[string]bool{}
	if m.now().Sub(m.opened) < m.opts.DeadAfter {
		for _, st := range dead {
			if st.LastSeen.Before(m.opened) {
				unheard[st.ID] = true
				h.Unheard = append(h.Unheard, st)
			}
		}
	}
	for _, svv := range sv.versions {
		vh := sv.versionHealth(svv)
		if vh.State != catalog.StateHealthy && len(unheard) > 0 && sv.names(svv, unheard) {
			vh.State = catalog.StateUnknown
		}
		h.Versions = append(h.Versions, vh)
	}
	h.Stores = conns.reports()
	return h, nil
}

// names reports whether the manifests list a block (or shard) of version
// svv on one of the stores in ids.
func (sv *survey) names(svv surveyVersion, ids map[string]bool) bool {
	for _, k := range svv.rows {
		for _, id := range sv.blocks[k].listed {
			if ids[id] {
				return true
			}
		}
	}
	for _, c := range svv.coded {
		for _, id := range sv.coded[c].named() {
			if ids[id] {
				return true
			}
		}
	}
	return false
}

// versionHealth classifies one surveyed version's blocks.
func (sv *survey) versionHealth(svv surveyVersion) catalog.VersionHealth {
	vh := catalog.VersionHealth{Version: svv.version, Target: svv.target, Blocks: len(svv.rows), State: catalog.StateHealthy}
	for i, k := range svv.rows {
		// A draining store's copy is still there to read.
		n := len(sv.blocks[k].held) + len(sv.blocks[k].draining)
		if i == 0 || n < vh.MinCopies {
			vh.MinCopies = n
		}
		switch {
		case n == 0:
			vh.LostBlocks++
		case n < svv.target:
			vh.DegradedBlocks++
		}
	}
	if sc := svv.scheme; !sc.IsZero() {
		vh.Target, vh.Redundancy = sc.Shards(), sc.String()
	}
	vh.Blocks += len(svv.coded)
	for i, c := range svv.coded {
		cs := &sv.coded[c]
		n := cs.live()
		if (i == 0 && len(svv.rows) == 0) || n < vh.MinCopies {
			vh.MinCopies = n
		}
		switch {
		case n < cs.sc.Data:
			vh.LostBlocks++
		case n < cs.sc.Shards():
			vh.DegradedBlocks++
		}
	}
	switch {
	case vh.LostBlocks > 0:
		vh.State = catalog.StateLost
	case vh.DegradedBlocks > 0:
		vh.State = catalog.StateDegraded
	}
	return vh
}

// Placements. Whether a version is protected (VersionInfo.Protected) is
// answered from the catalog alone: each version's placement, kept in the
// job's "placements" bucket (version -> placement JSON) and written with
// its manifest (commit, repair), lists the distinct store sets its blocks
// are listed on. With many distinct sets only their union and the fewest
// stores a block lists are kept, which answers conservatively.
var (
	bucketPlacements = []byte("placements")
	keyPlacements    = []byte("placements")
)

// maxPlacementSets bounds the store sets a placement keeps.
const maxPlacementSets = 256

// storeSets is a version's placement, in the sense above.
type storeSets struct {
	// Sets are the distinct sorted Stores lists of the blocks holding
	// data; nil when there are more than maxPlacementSets.
	Sets [][]string `json:"sets,omitempty"`
	// Stores is the union of the stores listed; MinListed the fewest any
	// block holding data lists.
	Stores    []string `json:"stores"`
	MinListed int      `json:"min_listed"`
	Blocks    int      `json:"blocks"` // rows holding data
}

// sortedDistinct reports whether ids is in increasing order.
func sortedDistinct(ids []string) bool {
	for i := 1; i < len(ids); i++ {
		if ids[i-1] >= ids[i] {
			return false
		}
	}
	return true
}

func placementOf(man *manifest.Manifest) storeSets {
	var p storeSets
	sets := map[string][]string{}
	union := map[string]bool{}
	var key []byte
	for i := range man.Blocks {
		b := &man.Blocks[i]
		if b.Length == 0 || b.Key.IsZero() {
			continue
		}
		// Writers list stores sorted and distinct; only other lists are
		// copied to be put in order.
		ids := b.Stores
		if !sortedDistinct(ids) {
			ids = slices.Compact(slices.Sorted(slices.Values(ids)))
		}
		if p.Blocks == 0 || len(ids) < p.MinListed {
			p.MinListed = len(ids)
		}
		p.Blocks++
		for _, id := range ids {
			union[id] = true
		}
		if len(sets) <= maxPlacementSets {
			key = key[:0]
			for _, id := range ids {
				key = append(append(key, id...), 0)
			}
			if _, ok := sets[string(key)]; !ok {
				sets[string(key)] = ids
			}
		}
	}
	for id := range union {
		p.Stores = append(p.Stores, id)
	}
	slices.Sort(p.Stores)
	if len(sets) <= maxPlacementSets {
		p.Sets = make([][]string, 0, len(sets))
		for _, ids := range sets {
			p.Sets = append(p.Sets, ids)
		}
		slices.SortFunc(p.Sets, func(a, b []string) int { return cmpString(strings.Join(a, "\x00"), strings.Join(b, "\x00")) })
	}
	return p
}

// protected reports whether every block is listed on at least target
// alive stores.
func (p storeSets) protected(target int, alive map[string]catalog.StoreInfo) bool {
	if p.Blocks == 0 {
		return true
	}
	count := func(ids []string) int {
		n := 0
		for _, id := range ids {
			if _, ok := alive[id]; ok {
				n++
			}
		}
		return n
	}
	if p.Sets == nil {
		return p.MinListed >= target && count(p.Stores) == len(p.Stores)
	}
	for _, ids := range p.Sets {
		if count(ids) < target {
			return false
		}
	}
	return true
}

func putPlacement(jb *bolt.Bucket, v int64, p storeSets) error {
	pb, err := jb.CreateBucketIfNotExists(bucketPlacements)
	if err != nil {
		return err
	}
	return putJSON(pb, vkey(v), p)
}

// readPlacement returns version v's placement, computing it from the
// manifest when the catalog lacks it.
func readPlacement(jb *bolt.Bucket, job string, v int64) (storeSets, error) {
	var p storeSets
	if pb := jb.Bucket(bucketPlacements); pb != nil {
		if raw := pb.Get(vkey(v)); raw != nil {
			if err := json.Unmarshal(raw, &p); err != nil {
				return p, fmt.Errorf("manager: catalog: placement of job %s version %d: %w", job, v, err)
			}
			return p, nil
		}
	}
	mb := jb.Bucket(bucketManifests)
	if mb == nil || mb.Get(vkey(v)) == nil {
		return p, nil
	}
	man, err := manifest.Unmarshal(mb.Get(vkey(v)))
	if err != nil {
		return p, fmt.Errorf("manager: catalog: manifest of job %s version %d: %w", job, v, err)
	}
	return placementOf(man), nil
}

// withProtection fills the fields of vi computed when it is read: the
// replication target or erasure code, and whether the catalog lists every
// block on that many alive stores (every shard's, when coded).
func withProtection(jb *bolt.Bucket, vi *catalog.VersionInfo, alive map[string]catalog.StoreInfo) error {
	target := withTarget(vi)
	p, err := readPlacement(jb, vi.Job, vi.Version)
	if err != nil {
		return err
	}
	vi.Protected = p.protected(target, alive)
	return nil
}

// withTarget sets vi's Replicas and Redundancy from its meta and returns
// the alive stores each block must be listed on to be protected: the
// replicas, or K+M for an erasure-coded version.
func withTarget(vi *catalog.VersionInfo) int {
	vi.Replicas = catalog.ReplicasOf(vi.Meta)
	vi.Redundancy = ""
	if sc, err := catalog.ParseRedundancy(vi.Meta); err == nil && !sc.IsZero() {
		vi.Redundancy = sc.String()
		return sc.Shards()
	}
	return vi.Replicas
}

// buildPlacements writes the placement of every version that lacks one
// (a catalog from before placements) and marks the catalog done.
func buildPlacements(tx *bolt.Tx) (int, error) {
	var jobs []string
	if err := tx.Bucket(bucketJobs).ForEach(func(job, _ []byte) error {
		jobs = append(jobs, string(job))
		return nil
	}); err != nil {
		return 0, err
	}
	n := 0
	for _, job := range jobs {
		jb := tx.Bucket(bucketJobs).Bucket([]byte(job))
		if jb == nil || jb.Bucket(bucketManifests) == nil {
			continue
		}
		var todo []int64
		if err := jb.Bucket(bucketManifests).ForEach(func(k, _ []byte) error {
			if pb := jb.Bucket(bucketPlacements); pb == nil || pb.Get(k) == nil {
				todo = append(todo, int64(binary.BigEndian.Uint64(k)))
			}
			return nil
		}); err != nil {
			return n, err
		}
		for _, v := range todo {
			p, err := readPlacement(jb, job, v)
			if err != nil {
				return n, err
			}
			if err := putPlacement(jb, v, p); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, tx.Bucket(bucketMeta).Put(keyPlacements, []byte("1"))
}
