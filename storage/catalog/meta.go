package catalog

import (
	"fmt"
	"strconv"
)

// MetaReplicas is the manifest Meta key holding a version's replication
// target: how many copies, on distinct stores, each of its blocks should
// have. A decimal from 1 to MaxReplicas; absent means 1.
const MetaReplicas = "replicas"

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
