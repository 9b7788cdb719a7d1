package codec

import (
	"fmt"
	"sync"

	"github.com/pierrec/lz4/v4"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/manifest"
)

// minSaving is the fraction of a block, as 1/minSaving, that compression
// must save for Encode to keep the compressed form: below that, the
// decompression on restore buys too little.
const minSaving = 32

// minCompress is the shortest input Encode tries to compress.
const minCompress = 64

// Encode returns the bytes to store for the logical bytes src, and the codec
// they are in: an lz4 block written into dst (grown if its capacity is under
// len(src)) when that is at least 1/32 smaller than src, or src itself and
// manifest.CodecRaw. Pass a dst of capacity len(src), reused from block to
// block, to encode without allocating. dst and src must not overlap.
//
// Encode is safe for concurrent use; each call needs its own dst.
func Encode(dst, src []byte) (stored []byte, codec manifest.Codec) {
	return defaultEngine.encode(dst, src)
}

// Decode returns the length logical bytes of a block stored as stored in
// codec c. A raw block is returned as stored itself; an lz4 block is decoded
// into dst (grown if its capacity is under length). dst and stored must not
// overlap. It returns an error wrapping ErrUnknownCodec for a codec it does
// not know, ErrEncrypted for the encrypted codecs (storage/crypt decodes
// those) and ErrCorrupt when stored does not decode to exactly length
// bytes; it does not panic on any input.
func Decode(dst []byte, c manifest.Codec, stored []byte, length int) ([]byte, error) {
	if length < 0 || length > storage.MaxBlockSize {
		return nil, fmt.Errorf("%w: length %d outside [0, %d]", ErrCorrupt, length, storage.MaxBlockSize)
	}
	switch c {
	case manifest.CodecRaw, "":
		if len(stored) != length {
			return nil, fmt.Errorf("%w: raw block of %d bytes, want %d", ErrCorrupt, len(stored), length)
		}
		return stored, nil
	case manifest.CodecLZ4:
		if length == 0 {
			// The lz4 form of no bytes is one zero token. Never hand the
			// decoder an empty dst: pierrec/lz4 v4.1.33's amd64 decoder
			// dereferences a nil one (FuzzDecode found it).
			if len(stored) > 1 || (len(stored) == 1 && stored[0] != 0) {
				return nil, fmt.Errorf("%w: lz4 block of %d bytes for 0", ErrCorrupt, len(stored))
			}
			return dst[:0], nil
		}
		if cap(dst) < length {
			dst = make([]byte, length)
		}
		dst = dst[:length]
		n, err := lz4.UncompressBlock(stored, dst)
		if err != nil {
			return nil, fmt.Errorf("%w: lz4 block of %d bytes for %d: %v", ErrCorrupt, len(stored), length, err)
		}
		if n != length {
			return nil, fmt.Errorf("%w: lz4 block decodes to %d bytes, want %d", ErrCorrupt, n, length)
		}
		return dst, nil
	case manifest.CodecAESGCM, manifest.CodecLZ4AESGCM:
		return nil, ErrEncrypted
	}
	return nil, fmt.Errorf("%w %q (written by a newer ckptio?)", ErrUnknownCodec, string(c))
}

// compressor is what lz4.Compressor and lz4.CompressorCCompat have in
// common. Neither is safe for concurrent use, hence the pools.
type compressor interface {
	CompressBlock(src, dst []byte) (int, error)
}

// engine is a pool of one kind of lz4 compressor.
type engine struct {
	name string
	pool sync.Pool
}

func newFast() any    { return new(lz4.Compressor) }
func newCCompat() any { return new(lz4.CompressorCCompat) }

var (
	// fastEngine is pierrec/lz4's own fast compressor: slower than
	// ccompat when data compresses, quick to give up when it does not.
	fastEngine = &engine{name: "fast", pool: sync.Pool{New: newFast}}
	// ccompatEngine is the port of the reference LZ4_compress_fast.
	ccompatEngine = &engine{name: "ccompat", pool: sync.Pool{New: newCCompat}}
	// defaultEngine is the one Encode uses; BenchmarkEncode compares both.
	defaultEngine = ccompatEngine
)

func (e *engine) encode(dst, src []byte) ([]byte, manifest.Codec) {
	if len(src) < minCompress {
		return src, manifest.CodecRaw
	}
	if cap(dst) < len(src)-len(src)/minSaving {
		dst = make([]byte, len(src))
	}
	c := e.pool.Get().(compressor)
	defer e.pool.Put(c)
	if n := compress(c, dst, src); n > 0 {
		return dst[:n], manifest.CodecLZ4
	}
	return src, manifest.CodecRaw
}

// compress compresses src into dst and returns the compressed length, or 0
// when that would not save 1/minSaving of src. The compressor gives up, with
// 0 or an error, as soon as its output outgrows the limit it is given: that
// bounds the work spent on data that does not compress.
func compress(c compressor, dst, src []byte) int {
	limit := len(src) - max(1, len(src)/minSaving)
	n, err := c.CompressBlock(src, dst[:limit])
	if err != nil || n <= 0 || n > limit {
		return 0
	}
	return n
}
