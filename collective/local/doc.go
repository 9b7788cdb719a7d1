// Package local implements collective.Comm in one process: each rank is a
// goroutine, and a collective call is a rendezvous of those goroutines. Unit
// tests of the aggregation logic run on it over any number of ranks, and a
// program without MPI uses it as a world of size 1.
//
// # Running ranks
//
// Run starts n goroutines, one per rank of a world of size n, and returns
// once all of them have returned. New only builds the n world Comms, for
// callers that start their own goroutines; each of those must call
// (*Comm).Leave when it stops using the communicator.
//
// # Matching
//
// Every communicator (the world, and each one made by Split, SplitShared or
// Dup) numbers the collective calls of each rank. The k-th call of every
// rank meets the k-th call of every other rank; the last rank to arrive
// moves the data, under one lock per world, and wakes the others. Data is
// copied between the ranks' own buffers: no rank ever sees another rank's
// slice. Different communicators never wait on each other, so a rank may
// use a Dup of a Comm in one goroutine and the Comm in another.
//
// # Errors
//
// For calls that are correct by MPI's rules the results are MPI's. Where
// MPI would fail or hang, local returns an *Error, and returns it on every
// rank of the call, so that tests of failure paths end:
//
//   - A rank's arguments are checked in the call (root out of range,
//     counts or displacements negative or out of the buffer): every rank of
//     the call gets the error, which names the rank at fault.
//   - The ranks disagree (different collectives or roots at the same point,
//     a send length unlike root's count, Allreduce lengths): every rank gets
//     ErrMismatch, ErrTruncate or ErrCount.
//   - A rank the call waits on has left: its function in Run returned or
//     panicked, it called Leave, or it freed the communicator. The call
//     fails with ErrLeft.
//
// A departure reads, for example,
//
//	local: Barrier: rank 3: left the communicator
//
// A failed call still counts as one call of every rank that made it, so the
// ranks stay matched and may go on with the next collective.
package local
