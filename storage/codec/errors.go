package codec

import "errors"

var (
	// ErrUnknownCodec: a manifest names a codec this build cannot decode.
	ErrUnknownCodec = errors.New("codec: unknown codec")
	// ErrCorrupt: the stored bytes do not decode to a block of the
	// recorded length.
	ErrCorrupt = errors.New("codec: corrupt block")
)
