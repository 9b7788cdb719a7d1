package catalog

import (
	"fmt"
	"net"
	"regexp"
	"time"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/manifest"
)

// Heartbeat is what a store reports every few seconds (POST /v1/heartbeat).
// Its JSON is flat: {"id", "addr", "used", "quota", "blocks", "disk_free",
// "label", "started", "errors", "bytes_in", "bytes_out", "busy",
// "busy_reason"}. The fields after Usage are zero from a store that does
// not send them.
type Heartbeat struct {
	ID   string `json:"id"`   // stable store ID
	Addr string `json:"addr"` // host:port clients dial
	storage.Usage
	// Label is the owner's name for the store (ckpt-store --label).
	Label string `json:"label"`
	// Started is when the store process started.
	Started time.Time `json:"started,omitzero"`
	// Errors counts the requests the store answered with an error since
	// it started (a missing block asked for is not one).
	Errors int64 `json:"errors"`
	// BytesIn and BytesOut count the bytes the store received from and
	// sent to its clients since it started.
	BytesIn  int64 `json:"bytes_in"`
	BytesOut int64 `json:"bytes_out"`
	// Busy: the desktop's owner needs it now (quiet hours, or its own CPU
	// or disk is busy); the manager then defers background work on it
	// (repair copies onto or off it, garbage collection sweeps).
	// BusyReason says why, for people.
	Busy       bool   `json:"busy"`
	BusyReason string `json:"busy_reason,omitempty"`
	// PublicKey is the store's identity (Ed25519, kept in its --dir) and
	// Signature its signature of the ID and address (SignHeartbeat): the
	// manager binds an ID to the first key it sees and refuses another,
	// so a token holder cannot take over a store's ID (identity.go).
	PublicKey []byte `json:"public_key,omitempty"`
	Signature []byte `json:"signature,omitempty"`
}

// MaxLabel bounds Heartbeat.Label, in bytes.
const MaxLabel = 64

// StoreInfo is a store as the catalog knows it: its last heartbeat, and
// when the manager saw it.
type StoreInfo struct {
	Heartbeat
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	// Alive: the store heartbeated this manager within Options.DeadAfter.
	// A store remembered from before a restart is dead until it heartbeats.
	Alive bool `json:"alive"`
	// Draining: an operator asked the store to be emptied (ckpt stores
	// drain): writers place no new blocks on it and repair moves its
	// copies to other stores. Kept in the catalog across restarts.
	Draining      bool      `json:"draining"`
	DrainingSince time.Time `json:"draining_since,omitzero"`
}

// StoreCopies is what the catalog's manifests place on one store (GET
// /v1/stores/{id}/copies): how far a drain has got, and what forgetting
// the store would lose. A copy counts as elsewhere when a manifest lists
// it on another store that is alive and not draining.
type StoreCopies struct {
	Schema string `json:"schema"`
	ID     string `json:"id"`
	// Blocks are the distinct blocks the manifests list on the store;
	// Versions the versions naming at least one of them.
	Blocks   int64 `json:"blocks"`
	Versions int   `json:"versions"`
	// Pending are the blocks listed on it that have fewer copies elsewhere
	// than their versions' target (an erasure-coded block: fewer than K+M
	// shards): what a drain still has to move.
	Pending int64 `json:"pending"`
	// OnlyCopy are the blocks with no copy elsewhere (an erasure-coded
	// block: fewer than K shards elsewhere), and OnlyVersions the versions
	// naming one of them: what forgetting it would lose.
	OnlyCopy     int64 `json:"only_copy"`
	OnlyVersions int   `json:"only_versions"`
}

// JobInfo summarises one job.
type JobInfo struct {
	Name     string    `json:"name"`
	Versions int       `json:"versions"`  // committed versions held
	Latest   int64     `json:"latest"`    // highest committed version held; 0 if none
	Updated  time.Time `json:"updated"`   // commit time of Latest
	InFlight int       `json:"in_flight"` // transactions begun and not yet committed
	// LogicalBytes sums the logical bytes of the versions held.
	LogicalBytes int64 `json:"logical_bytes"`
	// LatestStep is the application step of Latest (Meta "step"); absent
	// when it has none (a version of files).
	LatestStep *int64 `json:"latest_step,omitempty"`
}

// Txn is an in-flight version: begun, not yet committed. Its writer renews
// it before Expires, or the manager abandons it.
type Txn struct {
	Schema  string    `json:"schema,omitempty"` // SchemaTxn at top level
	ID      string    `json:"id"`
	Job     string    `json:"job"`
	Began   time.Time `json:"began"`
	Expires time.Time `json:"expires"`
}

// StatusCommitted is the status of every version the catalog lists: an
// uncommitted version is never listed.
const StatusCommitted = "committed"

// VersionInfo describes one committed version, computed from its manifest
// at commit. Its JSON (MarshalJSON) gives the known Meta keys typed fields
// (step, ranks, leaders, regions, encrypted, labels) and keeps the rest in
// "meta".
type VersionInfo struct {
	Schema        string            `json:"schema,omitempty"` // SchemaVersion at top level
	Job           string            `json:"job"`
	Version       int64             `json:"version"`
	Created       time.Time         `json:"created"`   // when the writer began it (manifest)
	Committed     time.Time         `json:"committed"` // when the manager committed it
	Kind          manifest.Kind     `json:"kind"`
	Meta          map[string]string `json:"meta,omitempty"`
	Objects       int               `json:"objects"`
	Blocks        int               `json:"blocks"`
	LogicalBytes  int64             `json:"logical_bytes"`
	NewBytes      int64             `json:"new_bytes"`
	SentBytes     int64             `json:"sent_bytes"`
	ManifestBytes int64             `json:"manifest_bytes"`
	Status        string            `json:"status"`
	// Pinned: kept by every retention policy and refused by DeleteVersion
	// until unpinned.
	Pinned bool `json:"pinned"`
	// Replicas is the version's replication target (Meta "replicas",
	// default 1), computed when read.
	Replicas int `json:"replicas"`
	// Redundancy is the Reed-Solomon scheme ("rs:K+M", Meta
	// "redundancy") of an erasure-coded version, "" for a replicated
	// one. Computed when read.
	Redundancy string `json:"redundancy,omitempty"`
	// Protected: the catalog lists every block of the version on at least
	// Replicas stores that are alive now (every shard's store, for an
	// erasure-coded version). Computed when read, from the catalog alone:
	// the stores are not asked whether they still hold the blocks (GET
	// /v1/jobs/{job}/health does that).
	Protected bool `json:"protected"`
}

// Overhead is the bytes the stores hold per stored byte of the version's
// blocks: its replicas, or (K+M)/K when it is erasure-coded.
func (v VersionInfo) Overhead() float64 {
	if sc, err := ParseRedundancy(v.Meta); err == nil && !sc.IsZero() {
		return sc.Overhead()
	}
	return float64(max(1, ReplicasOf(v.Meta)))
}

var jobNameRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

// ValidJobName reports whether name is a valid job name: 1 to 128 of
// A-Z a-z 0-9 . _ -, and not "." or "..".
func ValidJobName(name string) error {
	if !jobNameRE.MatchString(name) || name == "." || name == ".." {
		return fmt.Errorf("%w: job name %q: want 1 to 128 of A-Z a-z 0-9 . _ -", ErrInvalid, name)
	}
	return nil
}

func (h *Heartbeat) Validate() error {
	if h.ID == "" || len(h.ID) > 128 {
		return fmt.Errorf("%w: heartbeat: store ID %q: want 1 to 128 printable characters", ErrInvalid, h.ID)
	}
	for _, c := range h.ID {
		if c <= ' ' || c > '~' {
			return fmt.Errorf("%w: heartbeat: store ID %q: want printable ASCII without spaces", ErrInvalid, h.ID)
		}
	}
	if _, _, err := net.SplitHostPort(h.Addr); err != nil || len(h.Addr) > 256 {
		return fmt.Errorf("%w: heartbeat from %s: address %q is not host:port", ErrInvalid, h.ID, h.Addr)
	}
	if len(h.Label) > MaxLabel || len(h.BusyReason) > 256 {
		return fmt.Errorf("%w: heartbeat from %s: label over %d bytes or busy reason over 256", ErrInvalid, h.ID, MaxLabel)
	}
	if err := ValidLabel(h.Label); err != nil {
		return fmt.Errorf("%w: heartbeat from %s: %v", ErrInvalid, h.ID, err)
	}
	if h.Used < 0 || h.Quota < 0 || h.Blocks < 0 || h.DiskFree < 0 || h.Errors < 0 || h.BytesIn < 0 || h.BytesOut < 0 {
		return fmt.Errorf("%w: heartbeat from %s: negative figures", ErrInvalid, h.ID)
	}
	return nil
}

// Pong is the answer to GET /v1/ping.
type Pong struct {
	Schema     string    `json:"schema,omitempty"` // SchemaPong
	OK         bool      `json:"ok"`
	Time       time.Time `json:"time"`
	DeadAfter  string    `json:"dead_after"`
	TxnTimeout string    `json:"txn_timeout"`
}

// RetentionResult is the answer to PUT /v1/jobs/{job}/retention.
type RetentionResult struct {
	Schema    string    `json:"schema,omitempty"` // SchemaRetention
	Job       string    `json:"job,omitempty"`
	Retention Retention `json:"retention"`
	Deleted   []int64   `json:"deleted"` // versions the policy deleted (with DryRun: would delete), ascending
	// DryRun: nothing was deleted and the policy was not stored.
	DryRun bool `json:"dry_run"`
}

// ValidLabel checks a store label: at most MaxLabel bytes of printable
// characters (spaces allowed).
func ValidLabel(l string) error {
	if len(l) > MaxLabel {
		return fmt.Errorf("label %q is over %d bytes", l, MaxLabel)
	}
	for _, c := range l {
		if c < ' ' || c == 0x7f {
			return fmt.Errorf("label %q holds a control character", l)
		}
	}
	return nil
}
