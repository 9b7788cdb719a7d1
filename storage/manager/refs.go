package manager

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/manifest"
)

// Reference counts. The refs bucket maps every block key named by a
// committed manifest (of any job) to the number of committed versions
// naming it: 32-byte key -> uint64 big endian, never zero (a key whose
// count drops to zero is removed). Commit adds one per distinct key of its
// manifest and deleting a version subtracts one, each in the same bbolt
// transaction as the manifest itself, so the bucket always equals a count
// over the stored manifests; garbage collection reads the live set from
// it without decoding a manifest.
//
// The meta key "refs" is set once the bucket is complete. A catalog
// written before reference counts existed lacks it, and Open then builds
// the bucket from the manifests (rebuildRefs) before serving.
var (
	bucketRefs   = []byte("refs")
	keyRefsBuilt = []byte("refs")
)

// manifestKeys returns the distinct keys the stores hold for a manifest,
// sorted, and without the zero key of empty objects: each replicated
// block's key, and the shard keys of an erasure-coded block (its own key
// names the joined bytes, which no store holds).
func manifestKeys(man *manifest.Manifest) []storage.Hash {
	keys := make([]storage.Hash, 0, len(man.Blocks))
	for _, b := range man.Blocks {
		switch {
		case b.Erasure():
			keys = append(keys, b.Shards...)
		case !b.Key.IsZero():
			keys = append(keys, b.Key)
		}
	}
	slices.SortFunc(keys, func(a, b storage.Hash) int { return bytes.Compare(a[:], b[:]) })
	return slices.Compact(keys)
}

// storedKeys decodes a stored manifest and returns its keys.
func storedKeys(data []byte) ([]storage.Hash, error) {
	man, err := manifest.Unmarshal(data)
	if err != nil {
		return nil, err
	}
	return manifestKeys(man), nil
}

// addRefs adds one reference to each key (delta > 0) or removes one
// (delta < 0). Removing a reference the bucket does not hold is catalog
// corruption and fails the transaction.
func addRefs(tx *bolt.Tx, keys []storage.Hash, delta int) error {
	b := tx.Bucket(bucketRefs)
	for i := range keys {
		k := keys[i][:]
		var n uint64
		if v := b.Get(k); v != nil {
			if len(v) != 8 {
				return fmt.Errorf("manager: catalog: reference count of block %s is %d bytes, want 8", keys[i].Short(), len(v))
			}
			n = binary.BigEndian.Uint64(v)
		}
		switch {
		case delta > 0:
			n++
		case n == 0:
			return fmt.Errorf("manager: catalog: block %s has no reference to remove (reference counts are corrupt)", keys[i].Short())
		default:
			n--
		}
		if n == 0 {
			if err := b.Delete(k); err != nil {
				return err
			}
			continue
		}
		v := make([]byte, 8) // bbolt keeps it until the transaction ends
		binary.BigEndian.PutUint64(v, n)
		if err := b.Put(k, v); err != nil {
			return err
		}
	}
	return nil
}

// countRefs counts the references of every committed manifest, as the
// refs bucket should hold them.
func countRefs(tx *bolt.Tx) (map[storage.Hash]uint64, error) {
	counts := make(map[storage.Hash]uint64)
	err := tx.Bucket(bucketJobs).ForEach(func(job, _ []byte) error {
		jb := tx.Bucket(bucketJobs).Bucket(job)
		if jb == nil {
			return nil
		}
		mb := jb.Bucket(bucketManifests)
		if mb == nil {
			return nil
		}
		return mb.ForEach(func(k, v []byte) error {
			keys, err := storedKeys(v)
			if err != nil {
				return fmt.Errorf("manager: catalog: job %s version %d: %w", job, binary.BigEndian.Uint64(k), err)
			}
			for _, h := range keys {
				counts[h]++
			}
			return nil
		})
	})
	return counts, err
}

// rebuildRefs replaces the refs bucket with a count over the stored
// manifests and marks it complete.
func rebuildRefs(tx *bolt.Tx) (int, error) {
	counts, err := countRefs(tx)
	if err != nil {
		return 0, err
	}
	if tx.Bucket(bucketRefs) != nil {
		if err := tx.DeleteBucket(bucketRefs); err != nil {
			return 0, err
		}
	}
	b, err := tx.CreateBucket(bucketRefs)
	if err != nil {
		return 0, err
	}
	keys := make([]storage.Hash, 0, len(counts))
	for h := range counts {
		keys = append(keys, h)
	}
	slices.SortFunc(keys, func(a, b storage.Hash) int { return bytes.Compare(a[:], b[:]) })
	b.FillPercent = 1 // sequential inserts
	for _, h := range keys {
		v := make([]byte, 8)
		binary.BigEndian.PutUint64(v, counts[h])
		if err := b.Put(h[:], v); err != nil {
			return 0, err
		}
	}
	return len(keys), tx.Bucket(bucketMeta).Put(keyRefsBuilt, []byte("1"))
}

// referenced reports, for each key, whether a committed version names it.
func (m *Manager) referenced(keys []storage.Hash) ([]bool, error) {
	live := make([]bool, len(keys))
	err := m.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRefs)
		for i := range keys {
			live[i] = b.Get(keys[i][:]) != nil
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("manager: reading reference counts: %w", err)
	}
	return live, nil
}
