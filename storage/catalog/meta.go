package catalog

import (
	"fmt"
	"strconv"

	"github.com/ckptio/ckptio/storage/erasure"
)

// Keys of a version's meta (manifest.Manifest.Meta, VersionInfo.Meta):
// every key ckptio writes or reads is named here, so that writers, the
// manager and the tools agree on them.
const (
	// MetaReplicas holds a version's replication target: how many copies,
	// on distinct stores, each of its blocks should have. A decimal from 1
	// to MaxReplicas; absent means 1. The version writer records it.
	MetaReplicas = "replicas"
	// MetaRedundancy holds the Reed-Solomon scheme ("rs:K+M",
	// storage/erasure) a version's new blocks were written with; absent
	// for replicated versions. A version has one or the other: a commit
	// with both, or whose rows are not all coded with the scheme, is
	// refused (blocks are reused only from versions of the same
	// redundancy, storage/version).
	MetaRedundancy = "redundancy"
	// MetaStep is the application's step of an MPI checkpoint (mpiio.Meta).
	MetaStep = "step"
	// MetaLabelPrefix starts the keys of an MPI checkpoint's free-form
	// labels (mpiio.Meta.Labels): "label." + the label's name.
	MetaLabelPrefix = "label."
	// MetaRanks is the number of ranks that wrote an MPI checkpoint; a
	// restore needs as many.
	MetaRanks = "ranks"
	// MetaLeaders is the number of I/O leaders that wrote it.
	MetaLeaders = "leaders"
	// MetaRegions lists the region names of an MPI checkpoint, in the
	// order rank 0 protected them, comma-separated.
	MetaRegions = "regions"
	// MetaEncrypted names the scheme a version's blocks are sealed with
	// (storage/crypt); absent when they are not encrypted.
	MetaEncrypted = "encrypted"
	// MetaFingerprint is the fingerprint of the key an encrypted version
	// was written with.
	MetaFingerprint = "key_fingerprint"
)

// MaxReplicas is the highest replication target a commit accepts.
const MaxReplicas = 16

// ParseReplicas reads a version's replication target from its Meta.
func ParseReplicas(meta map[string]string) (int, error) {
	s, ok := meta[MetaReplicas]
	if !ok {
		return 1, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > MaxReplicas {
		return 1, fmt.Errorf("%w: meta %q is %q: want a whole number from 1 to %d", ErrInvalid, MetaReplicas, s, MaxReplicas)
	}
	return n, nil
}

// ReplicasOf is ParseReplicas for a committed version: commit refused bad
// values, so an unreadable one (a catalog from before the check) counts
// as 1.
func ReplicasOf(meta map[string]string) int {
	n, _ := ParseReplicas(meta)
	return n
}

// ParseRedundancy reads a version's Reed-Solomon scheme from its Meta: the
// zero Scheme when it has none (replicas). A version with both a scheme
// and a replication target above 1 is refused.
func ParseRedundancy(meta map[string]string) (erasure.Scheme, error) {
	s, ok := meta[MetaRedundancy]
	if !ok {
		return erasure.Scheme{}, nil
	}
	sc, err := erasure.Parse(s)
	if err != nil {
		return erasure.Scheme{}, fmt.Errorf("%w: meta %q: %w", ErrInvalid, MetaRedundancy, err)
	}
	if n, _ := ParseReplicas(meta); n > 1 {
		return erasure.Scheme{}, fmt.Errorf("%w: meta has both %q=%s and %q=%d: a version is erasure-coded or replicated, not both",
			ErrInvalid, MetaRedundancy, s, MetaReplicas, n)
	}
	return sc, nil
}

// FilesListObject is the object, one per rank that protects files (mpiio
// ProtectFiles), that lists the paths the rank protected, as JSON
// {"paths": [...]}: what a restore rolls back. No region may have this
// name; tools that list or restore regions skip it.
const FilesListObject = "ckpt:files"
