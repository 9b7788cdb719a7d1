package workload

import (
	"encoding/json"
	"fmt"
	"os"
)

// ResultPrefix starts the one line on which a benchmark program's rank 0
// prints its figures as JSON for the harness.
const ResultPrefix = "RESULT "

// Report prints v as the result line.
func Report(v any) {
	raw, err := json.Marshal(v)
	if err != nil {
		fmt.Fprintln(os.Stderr, "workload: encoding the result:", err)
		return
	}
	fmt.Printf("%s%s\n", ResultPrefix, raw)
}

// Step is what a program measured for one checkpoint. Times are of the
// slowest rank, in seconds.
type Step struct {
	Name         string  `json:"name"`
	Blocked      float64 `json:"blocked_s"`            // the application waited this long
	Durable      float64 `json:"durable_s"`            // start to durable on the storage
	Logical      int64   `json:"logical_bytes"`        // the state checkpointed
	Written      int64   `json:"written_bytes"`        // bytes written to disk (new bytes for ckptio)
	Sent         int64   `json:"sent_bytes,omitempty"` // ckptio: stored bytes sent to stores, all copies
	DiskGrowth   int64   `json:"disk_growth_bytes,omitempty"`
	PiecesChange int     `json:"pieces_changed"` // per rank
	Async        bool    `json:"async,omitempty"`
	Version      int64   `json:"version,omitempty"`
	// ckptio: the slowest rank's time finding the changed blocks
	// (cutting, fingerprinting, hashing those that changed).
	HashSeconds float64 `json:"hash_s,omitempty"`
	// ckptio, rank 0: bytes the Go heap allocated during the checkpoint
	// (runtime.MemStats.TotalAlloc) and the garbage collections it ran.
	AllocBytes int64 `json:"rank0_alloc_bytes,omitempty"`
	GCs        int64 `json:"rank0_gcs,omitempty"`
}

// ReadBack is the restore or read-back measurement.
type ReadBack struct {
	Of      string  `json:"of"`     // which state was read: full, incr1
	Seconds float64 `json:"read_s"` // slowest rank
	Bytes   int64   `json:"bytes"`
	Dropped bool    `json:"page_cache_dropped"`
	Matches bool    `json:"data_matches"`
}

// Memory is the peak RSS of a process.
type Memory struct {
	PeakKiB     int64 `json:"peak_rss_kib"`     // VmHWM
	BaselineKiB int64 `json:"baseline_rss_kib"` // VmRSS after the data was generated, before any I/O
}

// Ckptio is the RESULT line of bench/ckptbench.
type Ckptio struct {
	Mode         string   `json:"mode"` // async or sync
	Steps        []Step   `json:"steps"`
	Restore      ReadBack `json:"restore"`
	Leaders      []int    `json:"leaders"`              // world ranks that are I/O leaders
	PeakKiB      []int64  `json:"peak_rss_kib"`         // per rank, over the three checkpoints
	RestorePeak  []int64  `json:"restore_peak_rss_kib"` // per rank, during the restore (VmHWM reset before it)
	BaselineKiB  []int64  `json:"baseline_rss_kib"`     // per rank, after generating the data, before Open
	RegionBytes  int64    `json:"region_bytes"`         // per rank
	StagingBytes int64    `json:"staging_bytes"`        // per rank: the asynchronous copy, 0 when synchronous
	LeaderMemory int64    `json:"leader_memory_bytes"`  // the configured bound
	BlockSize    int64    `json:"block_size_bytes"`
	ReplicasSeen float64  `json:"replicas_seen"` // sent / new bytes of the full checkpoint
	Checksums    []string `json:"checksums"`
	ProfileFiles []string `json:"profile_files,omitempty"`
	PeakReset    bool     `json:"peak_reset_works"`
	// Where the time of the full checkpoint, the 10%-changed one and
	// the restore went.
	FullStages    Breakdown `json:"full_stages"`
	Incr10Stages  Breakdown `json:"incr10_stages"`
	RestoreStages Breakdown `json:"restore_stages"`
	StageNotes    []string  `json:"stage_notes,omitempty"` // counters that could not be read
}
