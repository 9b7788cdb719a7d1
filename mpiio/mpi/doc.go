// Package mpi is a thin cgo binding to the system MPI library, used by
// ckptio's collective layer and by applications for their own messages.
//
// It builds against OpenMPI through pkg-config (package ompi) and, with the
// build tag mpich, against MPICH (package mpich). It needs cgo: the storage
// daemons and tools that build with CGO_ENABLED=0 must not import it.
//
// # Lifecycle and threads
//
// Init calls MPI_Init_thread asking for MPI_THREAD_MULTIPLE and fails with
// ErrThreadLevel if the library provides less. MPI_Init_thread and
// MPI_Finalize run on one OS thread the package locks for that purpose, so
// the caller's goroutine does not matter. Any goroutine may call the
// binding; goroutines running collective calls at the same time need one
// communicator each (Comm.Dup). A program started without mpirun gets a
// singleton MPI job of size 1.
//
// # Handles
//
// MPI handles differ in type between libraries (OpenMPI: pointers, MPICH:
// ints), so Go never holds them: communicators live in a table on the C
// side and a Comm holds its slot number. Datatypes, reduction operations,
// wildcards (AnySource, AnyTag, ProcNull, Undefined) are Go constants mapped
// to the library's values in C.
//
// # Errors
//
// Every communicator the package makes has the MPI_ERRORS_RETURN handler,
// so a failing call returns instead of aborting the job. A non-success code
// becomes an *Error carrying the call and MPI_Error_string, for example
//
//	mpi: Recv: MPI_ERR_TRUNCATE: message truncated
//
// and matching ErrTruncate, ErrCount or ErrComm with errors.Is when its
// error class is one of those. Arguments the package rejects before calling
// MPI give an *Error with Code 0 and one of the sentinels. A rank that
// rejects its own arguments returns before communicating, which leaves the
// other ranks of a collective blocked exactly as a mismatched MPI call
// would; Gatherv and Scatterv avoid this for root's arguments (below).
//
// # Counts above the C int range
//
// MPI counts and displacements are C ints. The binding never wraps them: a
// buffer longer than the chunk size (1 GiB, the same on every rank) is
// moved by several MPI calls.
//
//   - Send, Recv, Sendrecv: a message is sent as full chunks followed by one
//     shorter chunk, which may be empty. A message shorter than one chunk is
//     exactly one MPI message, as a C program would send it. The receiver
//     reads chunks until a short one arrives; the first chunk fixes the
//     source and tag for the rest, so AnySource and AnyTag work. Two
//     goroutines sending to one rank with one tag on one communicator may
//     interleave their chunks: give them different tags or communicators.
//   - Bcast and Allreduce: consecutive chunks, one collective call each.
//   - Gatherv and Scatterv: root first broadcasts an 8-byte plan. If every
//     count and displacement fits in one chunk the collective is one MPI
//     call. Otherwise root broadcasts all counts and displacements and every
//     rank computes the same schedule: each rank's block is cut into pieces
//     of at most one chunk, and pieces are grouped into rounds that each
//     cover a window of root's buffer no wider than a chunk, with at most
//     one piece per rank. Each round is one MPI_Gatherv/MPI_Scatterv whose
//     root buffer starts at the window, so displacements stay small. The
//     plan also carries root's argument errors to every rank.
//   - AllgatherInt64 and GatherInt64 are for metadata: a total above the C
//     int range fails with ErrCount.
//
// Empty slices are passed to MPI as a null pointer with count 0.
package mpi
