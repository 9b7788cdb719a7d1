package collective

import "time"

// Stages is where a rank's time went in one checkpoint or restore, for
// finding which part bounds it (docs/benchmarks.md, "Where the time
// goes").
type Stages struct {
	// MPI is the time in the rounds' Gatherv (checkpoint) or Scatterv
	// (restore): on a leader, its share of moving the data over MPI.
	MPI time.Duration
	// Stores is the time a leader waited for the stores: for a slab
	// whose blocks are all stored and for the writer's Close
	// (checkpoint), for a round's blocks to be read (restore). Zero on
	// other ranks.
	Stores time.Duration
}

// LastRestore returns the Stages of the last Restore on this rank.
func (s *Session) LastRestore() Stages { return s.lastRestore }

// since adds the time from start to d.
func since(d *time.Duration, start time.Time) { *d += time.Since(start) }
