// Package codec turns a block's logical bytes into the bytes a store keeps,
// and back.
//
// A block is stored in one of the codecs a manifest names
// (storage/manifest.Codec):
//
//	| codec | stored bytes                                                    |
//	|-------|-----------------------------------------------------------------|
//	| "raw" | the logical bytes themselves                                    |
//	| "lz4" | one LZ4 block (the block format, no frame, no checksum, no size) |
//
// and two more that this package only recognizes: "aesgcm" and
// "lz4+aesgcm", a raw or lz4 block encrypted by the client. Decode returns
// ErrEncrypted for them; storage/crypt, which holds the job's key, decrypts
// them and hands the inner raw or lz4 block back to Decode.
//
// The logical length is not in the stored bytes: the manifest records it
// (Block.Length), and Decode checks that the block decodes to exactly that
// many bytes. Integrity is the manifest's business too: the stored bytes
// hash to Block.Key and the logical bytes to Block.Hash.
//
// Encode chooses: it compresses with lz4 and keeps the result only when it
// is at least 1/32 (about 3%) smaller than the input; otherwise the block
// is stored raw. Blocks that do not compress (random bytes, most float64
// simulation fields) cost little, because the compressor is given an output
// buffer no larger than what would be worth keeping and gives up once it
// fills, and because it skips ahead faster and faster while it finds no
// match. docs/incremental.md has the measured figures.
//
// "" is read as "raw", as manifests allow it for empty objects.
package codec
