package manifest

import "errors"

// Sentinel errors. Decode wraps every failure in one of them, so a caller
// can tell a damaged stream from a well-formed but inconsistent manifest.
var (
	// ErrCorrupt: the bytes are not a manifest stream: not Arrow IPC, the
	// wrong schema, a truncated or malformed message, nulls where none are
	// allowed.
	ErrCorrupt = errors.New("manifest: corrupt")
	// ErrInvalid: the manifest decodes but breaks a rule of the format
	// (negative length, a gap between blocks of an object, an unknown codec).
	// Validate returns it too.
	ErrInvalid = errors.New("manifest: invalid")
	// ErrTooLarge: the stream exceeds the decoder's size limits.
	ErrTooLarge = errors.New("manifest: too large")
)
