package catalog

import (
	"time"

	"github.com/ckptio/ckptio/storage"
)

// GCReport is the outcome of one garbage collection (POST /v1/gc).
type GCReport struct {
	Schema string `json:"schema,omitempty"` // SchemaGC at top level
	// DryRun: the stores were listed and nothing was deleted; Unreferenced
	// counts what a collection would ask them to delete.
	DryRun  bool      `json:"dry_run"`
	Started time.Time `json:"started"`
	// NotSince is the horizon T0: only blocks no store touched since then
	// were deleted.
	NotSince time.Time       `json:"not_since"`
	Stores   []GCStoreReport `json:"stores"`
	// Skipped lists the dead stores: their unreferenced blocks are
	// collected by a garbage collection after they come back.
	Skipped []StoreRef `json:"skipped"`
	// FreedBytes and Unreferenced sum the stores' figures.
	FreedBytes   int64 `json:"freed_bytes"`
	Unreferenced int64 `json:"unreferenced"`
	// EstimatedBytes (dry runs; 0 in a collection) sums the stores' estimates.
	EstimatedBytes int64    `json:"estimated_bytes"`
	Took           Duration `json:"took"`
}

// Failed returns the stores whose sweep failed.
func (r GCReport) Failed() []GCStoreReport {
	var out []GCStoreReport
	for _, s := range r.Stores {
		if s.Error != "" {
			out = append(out, s)
		}
	}
	return out
}

// GCStoreReport is one alive store's sweep.
type GCStoreReport struct {
	ID   string `json:"id"`
	Addr string `json:"addr"`
	// Listed counts the keys the store listed.
	Listed int64 `json:"listed"`
	// Unreferenced counts the listed keys no committed version names: the
	// store was asked to delete them, and kept those touched since
	// NotSince (written or reused by a checkpoint in flight).
	Unreferenced int64 `json:"unreferenced"`
	// FreedBytes is what the store reported freed.
	FreedBytes int64 `json:"freed_bytes"`
	// EstimatedBytes (dry runs; 0 in a collection) estimates the bytes a collection would
	// free: Unreferenced times the store's average stored block (used over
	// blocks), as stores do not list sizes. A collection frees less when
	// blocks were touched since NotSince.
	EstimatedBytes int64 `json:"estimated_bytes"`
	// Error is why the sweep of this store stopped early ("" if it did
	// not). Keys deleted before it stay deleted.
	Error string `json:"error,omitempty"`
}

// StoreRef names a store.
type StoreRef struct {
	ID       string    `json:"id"`
	Addr     string    `json:"addr"`
	LastSeen time.Time `json:"last_seen"`
	// Reason says why a pass left the store out, for a store alive but
	// busy ("busy: quiet hours 22:00-07:00"); empty for a dead one.
	Reason string `json:"reason,omitempty"`
}

// GCStatus is the answer to GET /v1/gc.
type GCStatus struct {
	Schema  string    `json:"schema,omitempty"` // SchemaGCStatus
	Running bool      `json:"running"`
	Since   time.Time `json:"since,omitzero"` // start of the running one
	Last    *GCReport `json:"last"`           // the last one finished; null if none since the manager started
}

// RepairReport is the outcome of one repair pass (POST /v1/repair).
type RepairReport struct {
	Schema  string    `json:"schema,omitempty"` // SchemaRepair at top level
	Started time.Time `json:"started"`
	Job     string    `json:"job,omitempty"` // the job repaired; empty: every job
	// Versions and Blocks count the versions checked and their distinct
	// blocks holding data (a block shared by versions counts once).
	Versions int   `json:"versions"`
	Blocks   int64 `json:"blocks"`
	// Degraded counts the blocks found with fewer live copies than the
	// highest target of the versions naming them, but at least one copy.
	Degraded int64 `json:"degraded"`
	// Stale counts the blocks an alive store was listed for but no longer
	// held; their manifests were corrected.
	Stale int64 `json:"stale"`
	// Copies and CopiedBytes count the copies made (stored bytes).
	Copies      int64 `json:"copies"`
	CopiedBytes int64 `json:"copied_bytes"`
	// Lost counts the blocks with no copy on an alive store: nothing to
	// copy from. LostBlocks names up to 100 of them.
	Lost       int64       `json:"lost"`
	LostBlocks []LostBlock `json:"lost_blocks,omitempty"`
	// Unrepaired counts the blocks still below target after the pass, with
	// a live copy: no other alive store had room, or every copy failed.
	Unrepaired int64 `json:"unrepaired"`
	// Deferred counts the blocks of Unrepaired left for later because the
	// only stores to copy them from, or every store with room for them,
	// were busy (their owners need the desktop); the next pass after they
	// are idle copies them.
	Deferred int64 `json:"deferred"`
	// Busy lists the alive stores no copy was read from or put on because
	// they were busy.
	Busy []StoreRef `json:"busy,omitempty"`
	// Updated counts the manifests rewritten; Gone the versions deleted
	// while the pass ran, left alone.
	Updated int `json:"updated"`
	Gone    int `json:"gone"`
	// Stores reports each alive store the pass used; Skipped the dead ones.
	Stores  []RepairStoreReport `json:"stores"`
	Skipped []StoreRef          `json:"skipped"`
	Took    Duration            `json:"took"`
}

// Failed returns the stores that reported an error.
func (r RepairReport) Failed() []RepairStoreReport {
	var out []RepairStoreReport
	for _, s := range r.Stores {
		if s.Error != "" {
			out = append(out, s)
		}
	}
	return out
}

// RepairStoreReport is one alive store's part in a repair pass or a
// health check.
type RepairStoreReport struct {
	ID   string `json:"id"`
	Addr string `json:"addr"`
	// Asked counts the blocks asked about (Has); Missing those it was
	// listed for and did not hold.
	Asked   int64 `json:"asked"`
	Missing int64 `json:"missing"`
	// Received and ReceivedBytes count the copies put on it.
	Received      int64 `json:"received"`
	ReceivedBytes int64 `json:"received_bytes"`
	// Error is the store's first failure ("" if none): its copies were not
	// counted, or a copy from or to it failed.
	Error string `json:"error,omitempty"`
}

// LostBlock is a block with no copy on an alive store.
type LostBlock struct {
	Job      string       `json:"job"`
	Key      storage.Hash `json:"key"`
	Stores   []string     `json:"stores"`   // the stores its manifests list (dead, or alive without it)
	Versions []int64      `json:"versions"` // the versions naming it
}

// RepairStatus is the answer to GET /v1/repair.
type RepairStatus struct {
	Schema  string    `json:"schema,omitempty"` // SchemaRepairStatus
	Running bool      `json:"running"`
	Since   time.Time `json:"since,omitzero"`
	// Progress counts what the running pass has done so far (absent when
	// none runs).
	Progress *RepairProgress `json:"progress,omitempty"`
	Last     *RepairReport   `json:"last"` // the last pass finished; null if none since the manager started
}

// RepairProgress is how far the running repair pass has got. The pass
// surveys one job at a time, so the totals grow as it goes.
type RepairProgress struct {
	Jobs     int   `json:"jobs"`      // jobs the pass covers
	JobsDone int   `json:"jobs_done"` // jobs surveyed and repaired
	Blocks   int64 `json:"blocks"`    // distinct blocks surveyed so far
	// CopyBytes is the stored bytes of the copies planned so far (a
	// block's size times the copies it lacks); CopiedBytes those made or
	// given up on.
	CopyBytes   int64 `json:"copy_bytes"`
	CopiedBytes int64 `json:"copied_bytes"`
}

// HealthState is a version's state: the worst state of its blocks.
type HealthState string

// A block is healthy with at least its version's target of copies on
// alive stores that hold it, degraded with fewer but at least one, lost
// with none.
const (
	StateHealthy  HealthState = "healthy"
	StateDegraded HealthState = "degraded"
	StateLost     HealthState = "lost"
	// StateUnknown: the version would be degraded or lost, but some of
	// its copies are on stores the manager has not heard from since it
	// started, less than its dead-after ago (a manager restart): they may
	// be alive. Ask again shortly.
	StateUnknown HealthState = "unknown"
)

// VersionHealth is one version's state (GET /v1/jobs/{job}/health).
type VersionHealth struct {
	Version int64       `json:"version"`
	State   HealthState `json:"state"`
	// Target is the replication target (Meta "replicas"); for an
	// erasure-coded version (Redundancy "rs:K+M") it is K+M, the shards
	// of each block, and copies below count shards.
	Target     int    `json:"target"`
	Redundancy string `json:"redundancy,omitempty"`
	// Blocks counts the manifest rows holding data; DegradedBlocks those
	// with 1 to Target-1 live copies (K to K+M-1 live shards), LostBlocks
	// those with none (fewer than K shards: unreadable).
	Blocks         int `json:"blocks"`
	DegradedBlocks int `json:"degraded_blocks"`
	LostBlocks     int `json:"lost_blocks"`
	// MinCopies is the fewest live copies (shards) any of its blocks has
	// (0 when it has no block holding data).
	MinCopies int `json:"min_copies"`
}

// JobHealth is the answer to GET /v1/jobs/{job}/health.
type JobHealth struct {
	Schema   string          `json:"schema,omitempty"` // SchemaHealth
	Job      string          `json:"job"`
	Checked  time.Time       `json:"checked"`
	Versions []VersionHealth `json:"versions"` // oldest first
	// Stores lists the alive stores asked, with an error for those that
	// did not answer: their copies were not counted.
	Stores []RepairStoreReport `json:"stores"`
	// Skipped lists the dead stores: their copies do not count.
	Skipped []StoreRef `json:"skipped"`
	// Unheard lists the stores of Skipped the manager has not heard from
	// since it started, less than its dead-after ago: a version that would
	// be degraded or lost only for them is StateUnknown.
	Unheard []StoreRef `json:"unheard,omitempty"`
}
