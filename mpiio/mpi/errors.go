//go:build cgo

package mpi

// #include "shim.h"
import "C"

import (
	"errors"
	"fmt"
	"strings"
	"unsafe"
)

// Sentinels matched with errors.Is. Errors returned by the package are
// *Error values; those whose MPI error class (or argument check) corresponds
// to a sentinel match it.
var (
	// ErrTruncate: a receive buffer was smaller than the incoming message
	// (MPI_ERR_TRUNCATE).
	ErrTruncate = errors.New("mpi: message truncated")
	// ErrCount: a length, count or displacement cannot be passed to MPI
	// (negative, out of the C int range the call needs, or inconsistent with
	// a buffer); also MPI_ERR_COUNT.
	ErrCount = errors.New("mpi: count out of range")
	// ErrComm: the communicator was freed, is nil, or MPI is not
	// initialized; also MPI_ERR_COMM.
	ErrComm = errors.New("mpi: invalid communicator")
	// ErrArg: any other argument the package rejects before calling MPI.
	ErrArg = errors.New("mpi: invalid argument")
	// ErrThreadLevel: the library does not provide MPI_THREAD_MULTIPLE.
	ErrThreadLevel = errors.New("mpi: MPI_THREAD_MULTIPLE not provided")
)

// Error is a failed binding call. Its text names the call and the MPI error
// string, e.g. "mpi: Recv: MPI_ERR_TRUNCATE: message truncated".
type Error struct {
	Op    string // binding call, e.g. "Gatherv"
	Code  int    // MPI error code; 0 when the package rejected the call itself
	Class int    // MPI error class of Code (MPI_Error_class); 0 when Code is 0
	Msg   string // MPI_Error_string of Code, or what the package rejected

	kind error // sentinel for errors.Is, may be nil
}

func (e *Error) Error() string { return "mpi: " + e.Op + ": " + e.Msg }

// Is reports whether target is the sentinel for e's error class.
func (e *Error) Is(target error) bool { return e.kind != nil && target == e.kind }

// codeError turns a non-success MPI return code into an *Error; nil for
// MPI_SUCCESS.
func codeError(op string, rc C.int) error {
	if rc == C.ck_success() {
		return nil
	}
	buf := make([]byte, int(C.ck_max_error_string())+1)
	var n C.int
	C.ck_error_string(rc, (*C.char)(unsafe.Pointer(&buf[0])), &n)
	msg := strings.TrimSpace(string(buf[:max(0, min(int(n), len(buf)))]))
	// MPICH appends an error stack on further lines; keep the first.
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = strings.TrimSpace(msg[:i])
	}
	if msg == "" {
		msg = fmt.Sprintf("MPI error %d", int(rc))
	}
	cls := C.ck_error_class(rc)
	e := &Error{Op: op, Code: int(rc), Class: int(cls), Msg: msg}
	switch cls {
	case C.ck_err_truncate():
		e.kind = ErrTruncate
	case C.ck_err_count():
		e.kind = ErrCount
	case C.ck_err_comm():
		e.kind = ErrComm
	}
	return e
}

// argError is an error the package detects before calling MPI; kind is one
// of the sentinels.
func argError(op string, kind error, format string, args ...any) error {
	msg := strings.TrimPrefix(kind.Error(), "mpi: ") + ": " + fmt.Sprintf(format, args...)
	return &Error{Op: op, Msg: msg, kind: kind}
}
