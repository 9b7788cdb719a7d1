package collective

// Op is a reduction operation for Allreduce.
type Op int

const (
	OpSum Op = iota
	OpMax
	OpMin
)

// Comm is the part of a communicator that collective checkpointing needs.
// It is implemented by the MPI binding (mpiio/mpi) and by collective/local,
// which runs ranks as goroutines in one process for tests.
//
// Contract: every method is collective over the communicator unless it says
// otherwise; all ranks call collectives in the same order. A Comm is used by
// one goroutine at a time: callers that run collectives concurrently (a
// background drain beside the application) Dup a Comm for each goroutine.
// Counts and displacements are in bytes. Buffers that only matter on the
// root (recv of Gatherv, send of Scatterv, counts, displs) may be nil on
// other ranks. Slices may be empty.
type Comm interface {
	Rank() int // not collective
	Size() int // not collective
	Barrier() error
	Bcast(buf []byte, root int) error
	Gatherv(send, recv []byte, counts, displs []int, root int) error
	Scatterv(send []byte, counts, displs []int, recv []byte, root int) error
	AllreduceInt64(send, recv []int64, op Op) error
	// Split partitions the communicator by color, ordering ranks by key.
	Split(color, key int) (Comm, error)
	// SplitShared groups the ranks that share memory (one node).
	SplitShared(key int) (Comm, error)
	Dup() (Comm, error)
	Free() error
}
