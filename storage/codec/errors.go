package codec

import "errors"

var (
	// ErrUnknownCodec: a manifest names a codec this build cannot decode.
	ErrUnknownCodec = errors.New("codec: unknown codec")
	// ErrCorrupt: the stored bytes do not decode to a block of the
	// recorded length.
	ErrCorrupt = errors.New("codec: corrupt block")
	// ErrEncrypted: the block is encrypted (manifest.CodecAESGCM,
	// manifest.CodecLZ4AESGCM); only storage/crypt, with the job's key,
	// decodes it.
	ErrEncrypted = errors.New("codec: block is encrypted; give the job's key with --encrypt-key-file or CKPT_ENCRYPT_KEY_FILE")
)
