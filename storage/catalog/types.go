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
// Its JSON is flat: {"id", "addr", "used", "quota", "blocks", "disk_free"}.
type Heartbeat struct {
	ID   string `json:"id"`   // stable store ID
	Addr string `json:"addr"` // host:port clients dial
	storage.Usage
}

// StoreInfo is a store as the catalog knows it: its last heartbeat, and
// when the manager saw it.
type StoreInfo struct {
	Heartbeat
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	// Alive: the store heartbeated this manager within Options.DeadAfter.
	// A store remembered from before a restart is dead until it heartbeats.
	Alive bool `json:"alive"`
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
	// Protected: the catalog lists every block of the version on at least
	// Replicas stores that are alive now. Computed when read, from the
	// catalog alone: the stores are not asked whether they still hold the
	// blocks (GET /v1/jobs/{job}/health does that).
	Protected bool `json:"protected"`
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
	if h.Used < 0 || h.Quota < 0 || h.Blocks < 0 || h.DiskFree < 0 {
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
