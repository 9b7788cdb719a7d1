package mpiio

import (
	"time"

	"github.com/ckptio/ckptio/collective"
)

// CheckpointStats describes one checkpoint, for Config.OnCheckpoint.
type CheckpointStats struct {
	Job  string
	Rank int // world rank of the Checkpointer reporting
	Step int64
	// Version is the version committed; 0 when the checkpoint failed.
	Version int64
	// Err is why the checkpoint failed, nil when it committed.
	Err error
	// Async says the checkpoint was written in the background.
	Async bool
	// Duration is from the start of this checkpoint (once the previous
	// background one, if any, had ended) to its commit or failure.
	Duration time.Duration
	// Blocked is how long the Checkpoint call kept the program from its
	// work: the wait for the previous background checkpoint plus the copy
	// of the regions and files when asynchronous, the whole checkpoint
	// when synchronous. It may exceed Duration.
	Blocked time.Duration
	// The version's figures, the same on every rank: LogicalBytes the
	// bytes protected, NewBytes the stored bytes no store held before,
	// SentBytes the stored bytes sent to the stores, every copy counted.
	// 0 when the checkpoint failed.
	LogicalBytes, NewBytes, SentBytes int64
}

// report calls Config.OnCheckpoint, if set, with st completed by the
// outcome of the checkpoint whose call came at called and that began at
// began. A synchronous checkpoint blocked until now; an asynchronous one
// has its Blocked already.
func (cp *Checkpointer) report(st CheckpointStats, called, began time.Time, r collective.Result, err error) {
	if cp.cfg.OnCheckpoint == nil {
		return
	}
	now := time.Now()
	st.Duration = now.Sub(began)
	if !st.Async {
		st.Blocked = now.Sub(called)
	}
	st.Err = err
	if err == nil {
		st.Version, st.LogicalBytes, st.NewBytes, st.SentBytes = r.Version, r.LogicalBytes, r.NewBytes, r.SentBytes
	}
	cp.cfg.OnCheckpoint(st)
}
