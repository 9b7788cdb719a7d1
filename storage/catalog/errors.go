package catalog

import (
	"errors"
	"fmt"
)

// Sentinel errors. The manager returns errors wrapping them; the HTTP API
// carries the sentinel as a code next to the message, and the Client
// returns an error with the same message that wraps the same sentinel, so
// errors.Is works across the wire.
var (
	// ErrUnknownJob: no version of that job was ever committed.
	ErrUnknownJob = errors.New("manager: unknown job")
	// ErrUnknownVersion: the job exists but has no such version; the message
	// names the latest one.
	ErrUnknownVersion = errors.New("manager: unknown version")
	// ErrNoVersions: the job has no committed version (left).
	ErrNoVersions = errors.New("manager: job has no versions")
	// ErrUnknownTxn: no transaction with that ID is in flight: it was never
	// begun, was committed or aborted, or expired (not renewed within
	// Options.TxnTimeout).
	ErrUnknownTxn = errors.New("manager: unknown or expired transaction")
	// ErrConflict: the request contradicts the catalog (a manifest for
	// another job than its transaction's).
	ErrConflict = errors.New("manager: conflict")
	// ErrInvalid: a malformed request: bad job name, bad JSON, a manifest
	// that does not decode.
	ErrInvalid = errors.New("manager: invalid request")
	// ErrTooLarge: a request body over the limit.
	ErrTooLarge = errors.New("manager: request body too large")
	// ErrClockSkew: the request's timestamp is too far from the manager's
	// clock. It wraps storage.ErrUnauthorized on the client side.
	ErrClockSkew = errors.New("manager: clock skew")
	// ErrLocked: another manager holds the data directory.
	ErrLocked = errors.New("manager: data directory in use")
	// ErrUnreachable: the client could not reach the manager.
	ErrUnreachable = errors.New("manager: unreachable")
	// ErrPinned: the version is pinned, so it cannot be deleted; unpin it
	// first.
	ErrPinned = errors.New("manager: version is pinned")
	// ErrGCRunning: a garbage collection is already running; only one runs
	// at a time.
	ErrGCRunning = errors.New("manager: garbage collection already running")
	// ErrUnknownStore: the catalog knows no store with that ID (never seen,
	// or forgotten).
	ErrUnknownStore = errors.New("manager: unknown store")
	// ErrOnlyCopy: the store may not be forgotten: it holds the only copy
	// of blocks that versions need (drain it first).
	ErrOnlyCopy = errors.New("manager: store holds the only copy")
)

// UnreachableError reports a manager the client could not connect to.
type UnreachableError struct {
	Addr string
	Err  error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("manager at %s is unreachable: %v (is ckpt-manager running? check CKPT_MANAGER)", e.Addr, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrUnreachable) true.
func (e *UnreachableError) Is(target error) bool { return target == ErrUnreachable }
