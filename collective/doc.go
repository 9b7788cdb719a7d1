// Package collective turns the protected memory of every rank of an MPI job
// into one checkpoint version, and back.
//
// Ranks are partitioned into aggregation groups, each with one I/O leader
// (by default one group per node; CKPT_RANKS_PER_LEADER overrides). Leaders
// gather their members' data in bounded rounds, cut it into blocks and hand
// the blocks to a striping writer (storage/client); world rank 0 begins and
// commits the version with the manager once every rank agreed it succeeded.
// Restore is the mirror: leaders read and verify blocks and scatter them to
// their members in bounded rounds.
//
// The package talks to MPI only through the small Comm interface, which the
// MPI binding and the in-process collective/local implement.
package collective
