package crypt

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/codec"
	"github.com/ckptio/ckptio/storage/manifest"
)

const (
	formatV1  = 1  // the first byte of a sealed block
	nonceSize = 12 // AES-GCM's standard nonce
	tagSize   = 16

	// Overhead is the bytes sealing adds to a block's raw or lz4 form.
	Overhead = 1 + nonceSize + tagSize
)

// Seal returns the stored form of msg, a block's bytes in codec c (raw or
// lz4) whose logical bytes hash to h, and its codec:
// manifest.CodecAESGCM or manifest.CodecLZ4AESGCM. It fits
// client.WriterOptions.Seal. The result is a new slice. A nil k returns msg
// and c unchanged. It hashes msg when it is lz4 (for the nonce); a raw msg
// is the logical bytes, whose hash is h. Seal is safe for concurrent use.
func (k *Key) Seal(h storage.Hash, c manifest.Codec, msg []byte) ([]byte, manifest.Codec, error) {
	if k == nil {
		return msg, c, nil
	}
	switch c {
	case manifest.CodecRaw, "":
		return k.seal(h, manifest.CodecAESGCM, msg, h), manifest.CodecAESGCM, nil
	case manifest.CodecLZ4:
		return k.seal(h, manifest.CodecLZ4AESGCM, msg, storage.Sum(msg)), manifest.CodecLZ4AESGCM, nil
	}
	return nil, "", fmt.Errorf("crypt: cannot seal a block in codec %q (want raw or lz4)", c)
}

// Decode returns the logical bytes of block b from its stored bytes; it
// fits client.ReaderOptions.Decode. Blocks in the encrypted codecs are
// opened with k (an error wraps ErrDecrypt when that fails, ErrNoKey when k
// is nil, and names the block's object and offset); the others go to
// codec.Decode as they are, so a key holder reads unencrypted versions too.
// The caller checks the result against b.Hash. Decode never panics and
// never changes stored.
func (k *Key) Decode(b manifest.Block, stored []byte) ([]byte, error) {
	var inner manifest.Codec
	switch b.Codec {
	case manifest.CodecAESGCM:
		inner = manifest.CodecRaw
	case manifest.CodecLZ4AESGCM:
		inner = manifest.CodecLZ4
	default:
		return codec.Decode(nil, b.Codec, stored, int(b.Length))
	}
	if k == nil {
		return nil, fmt.Errorf("%s: %w", where(b), ErrNoKey)
	}
	msg, err := k.open(b.Hash, b.Codec, stored)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where(b), err)
	}
	data, err := codec.Decode(nil, inner, msg, int(b.Length))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where(b), err)
	}
	return data, nil
}

// where names a block for messages.
func where(b manifest.Block) string {
	if b.Rank >= 0 {
		return fmt.Sprintf("rank %d region %q offset %d", b.Rank, b.Object, b.Offset)
	}
	return fmt.Sprintf("%q offset %d", b.Object, b.Offset)
}

// seal encrypts msg, the form c wraps of the block whose logical bytes hash
// to h; mh is the BLAKE3 of msg.
func (k *Key) seal(h storage.Hash, c manifest.Codec, msg []byte, mh storage.Hash) []byte {
	bk := k.blockKey(h)
	out := make([]byte, 1+nonceSize, Overhead+len(msg))
	out[0] = formatV1
	nonce := out[1 : 1+nonceSize]
	m := hmac.New(sha256.New, bk[:])
	m.Write([]byte("ckptio-block-nonce"))
	m.Write([]byte(c))
	m.Write([]byte{0})
	m.Write(mh[:])
	copy(nonce, m.Sum(nil))
	return gcm(bk).Seal(out, nonce, msg, aad(c))
}

// open checks and decrypts a sealed block into a new slice.
func (k *Key) open(h storage.Hash, c manifest.Codec, stored []byte) ([]byte, error) {
	if len(stored) < Overhead {
		return nil, fmt.Errorf("%w (%d bytes, shorter than a sealed block)", ErrDecrypt, len(stored))
	}
	if stored[0] != formatV1 {
		return nil, fmt.Errorf("%w (sealed format %d unknown: written by a newer ckptio?)", ErrDecrypt, stored[0])
	}
	bk := k.blockKey(h)
	msg, err := gcm(bk).Open(nil, stored[1:1+nonceSize], stored[1+nonceSize:], aad(c))
	if err != nil {
		return nil, ErrDecrypt
	}
	return msg, nil
}

// blockKey derives the AES key of the block whose logical bytes hash to h.
func (k *Key) blockKey(h storage.Hash) [32]byte {
	m := hmac.New(sha256.New, k.k[:])
	m.Write([]byte("ckptio-block-key"))
	m.Write(h[:])
	var bk [32]byte
	copy(bk[:], m.Sum(nil))
	return bk
}

// aad is the additional data sealed with a block: the format and the codec,
// so a block cannot be read as another codec's.
func aad(c manifest.Codec) []byte { return append([]byte{formatV1}, c...) }

func gcm(key [32]byte) cipher.AEAD {
	b, err := aes.NewCipher(key[:])
	if err != nil {
		panic(err) // a 32-byte key is always valid
	}
	a, err := cipher.NewGCM(b)
	if err != nil {
		panic(err) // so is the standard nonce size
	}
	return a
}
