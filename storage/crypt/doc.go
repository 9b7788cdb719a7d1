// Package crypt encrypts blocks on the client, before they leave it, so that
// the owner of a desktop running a store cannot read the checkpoints it
// holds, while identical blocks still deduplicate from version to version.
//
// # Keys
//
// A job's key is 32 random bytes, kept in a key file as 64 hex digits
// (whitespace anywhere is ignored, so `xxd -p` output reads too). Resolve
// finds it: an explicit file (--encrypt-key-file), else the file named by
// CKPT_ENCRYPT_KEY_FILE, else none (no encryption). NewKeyFile makes one
// (mode 0600, never over an existing file); so does
//
//	head -c 32 /dev/urandom | xxd -p -c 64 > job.key
//
// A key is named by its fingerprint: the first 8 bytes, in hex, of
// HMAC-SHA256(key, "ckptio-key-fingerprint"). The fingerprint reveals
// nothing usable about the key; it lets a reader refuse a wrong key at once.
//
// # Sealed blocks
//
// A block is compressed first (storage/codec), then encrypted: codec
// "lz4+aesgcm" when lz4 was kept, "aesgcm" when the block is stored raw.
// The message M is the raw or lz4 bytes; H is BLAKE3-256 of the block's
// logical bytes (manifest Block.Hash). Then:
//
//	block key K = HMAC-SHA256(job key, "ckptio-block-key" || H)
//	nonce N     = first 12 bytes of HMAC-SHA256(K, "ckptio-block-nonce" || codec || 0x00 || BLAKE3-256(M))
//	stored      = 0x01 || N || AES-256-GCM-Seal(K, N, M, additional data = 0x01 || codec)
//
// so stored bytes are 29 bytes longer than M: a format version (1), the
// nonce, and the 16-byte tag after the ciphertext. The manifest's Key is
// BLAKE3-256 of the stored bytes, which the stores check as for any block.
//
// A writer seals with client.WriterOptions{Encode: codec.Encode, Seal:
// key.Seal}: the writer applies Seal to every new block after Encode (which
// it may skip for blocks that do not compress); a reader opens them with
// client.ReaderOptions{Decode: key.Decode}.
//
// Everything is a function of the job key and the logical bytes, so the same
// block under the same key is stored as the same bytes (convergent
// encryption): the writer's reuse from the previous version and the stores'
// content addressing keep deduplicating. Under another key nothing matches.
//
// The nonce is derived from the message as well as from K. K is unique to
// one plaintext, but that plaintext may be sealed as more than one message
// (raw by one writer, lz4 by another, or lz4 output that changes with a
// library upgrade); binding the nonce to the message keeps a (key, nonce)
// pair from ever sealing two messages, which GCM does not survive.
//
// Decoding derives K from the manifest's Hash, checks the tag (a wrong job
// key or a changed byte fails with ErrDecrypt: "wrong encryption key or
// corrupt block"), decodes the inner raw or lz4 block, and the reader then
// checks the result against Hash.
//
// # Versions
//
// A version written with a key records it in the manifest's meta:
// "encrypted" = "aesgcm" and "key_fingerprint" = the fingerprint. Check
// compares them with the key a reader holds and fails before any block is
// fetched (*KeyError). A writer reuses blocks of the previous version only
// when SameKey says it was written with the same key, or both without one.
//
// # What stays visible
//
// Stores see only sealed bytes and their lengths. Whoever reads manifests
// (the manager, and any holder of the cluster token) sees names, sizes,
// and Block.Hash, the hash of the plaintext: they learn which blocks are
// equal, within a version and across versions and jobs, and can confirm a
// guess of a block's exact contents. The key never leaves the clients.
package crypt
