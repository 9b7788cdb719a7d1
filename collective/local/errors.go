package local

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinels matched with errors.Is; the package returns them inside *Error.
var (
	// ErrLeft: a rank the call waits on left the communicator (returned from
	// Run's function, panicked, called Leave, or freed the communicator).
	ErrLeft = errors.New("local: left the communicator")
	// ErrClosed: the caller's own Comm was freed or its rank left.
	ErrClosed = errors.New("local: communicator closed")
	// ErrTruncate: a receive buffer or count does not match the data sent
	// (MPI_ERR_TRUNCATE and its kin).
	ErrTruncate = errors.New("local: message truncated")
	// ErrCount: a count or displacement is negative, missing, or out of
	// the buffer it indexes; Allreduce lengths differ.
	ErrCount = errors.New("local: count out of range")
	// ErrMismatch: the ranks called different collectives, roots or
	// reduction operations at the same point.
	ErrMismatch = errors.New("local: mismatched collective")
	// ErrArg: any other argument the package rejects (root out of range,
	// unknown Op, Free of the world).
	ErrArg = errors.New("local: invalid argument")
)

// Error is a failed collective call. Every rank of the call gets the same
// *Error; Rank is the rank (in the call's communicator) whose arguments or
// departure caused it. Its text reads
// "local: Gatherv: rank 2: message truncated: sends 5 bytes, root expects 4".
type Error struct {
	Op   string // collective, e.g. "Gatherv"
	Rank int
	Kind error // one of the sentinels
	Msg  string
}

func (e *Error) Error() string {
	s := fmt.Sprintf("local: %s: rank %d: %s", e.Op, e.Rank, strings.TrimPrefix(e.Kind.Error(), "local: "))
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	return s
}

// Is reports whether target is e's sentinel.
func (e *Error) Is(target error) bool { return target == e.Kind }

func newError(op string, rank int, kind error, format string, args ...any) *Error {
	return &Error{Op: op, Rank: rank, Kind: kind, Msg: fmt.Sprintf(format, args...)}
}
