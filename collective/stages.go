package collective

import "time"

// Stages is where an I/O leader's time went in one checkpoint or
// restore, for finding which part bounds it (docs/benchmarks.md,
// "Where the time goes"). MPI and Stores are zero on ranks that are not
// leaders.
type Stages struct {
	// MPI is the time in the rounds' Gatherv (checkpoint) or Scatterv
	// (restore), the leader's own share of moving the data over MPI.
	MPI time.Duration
	// Stores is the time the leader waited for the stores: for a slab
	// whose blocks are all stored and for the writer's Close
	// (checkpoint), for a round's blocks to be read (restore).
	Stores time.Duration
	// Total is the whole operation on this rank.
	Total time.Duration
}

// LastRestore returns the Stages of the last Restore on this rank.
func (s *Session) LastRestore() Stages { return s.lastRestore }

// since adds the time from start to d and returns now, for timing
// consecutive parts of a loop.
func since(d *time.Duration, start time.Time) time.Time {
	now := time.Now()
	*d += now.Sub(start)
	return now
}
