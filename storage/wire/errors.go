package wire

import "errors"

// Errors of the protocol itself. Errors a store reports for a request are
// the storage sentinels, see ErrorFor.
var (
	// ErrFrameTooLarge: a frame announces a payload above the reader's limit.
	ErrFrameTooLarge = errors.New("wire: frame too large")
	// ErrBadMagic: the peer does not speak this protocol.
	ErrBadMagic = errors.New("wire: bad magic (peer is not a ckptio store or client)")
	// ErrBadVersion: the peer speaks another version of the protocol.
	ErrBadVersion = errors.New("wire: unsupported protocol version")
	// ErrMalformed: a payload does not follow its op's layout.
	ErrMalformed = errors.New("wire: malformed payload")
	// ErrUnknownOp: the server does not know the request's op.
	ErrUnknownOp = errors.New("wire: unknown op")
	// ErrInternal: the store failed for a reason with no sentinel of its own.
	ErrInternal = errors.New("wire: store internal error")
	// ErrBusy: the store takes no more connections.
	ErrBusy = errors.New("wire: store busy")
	// ErrHandshake: the handshake did not follow the protocol.
	ErrHandshake = errors.New("wire: handshake failed")
)
