// Package erasure is ckptio's Reed-Solomon redundancy: a block's stored
// bytes split into K data shards and M parity shards, each kept on a
// distinct store, so that any K of the K+M shards give the block back.
//
// # Shards
//
// A block of n stored bytes (after compression and encryption: the bytes
// whose BLAKE3 is the block's key) is cut into K data shards of
// ceil(n/K) bytes each, the last one padded with zeros; M parity shards of
// the same size are computed over them with klauspost/reedsolomon's
// systematic Vandermonde code over GF(2^8). Each shard is stored under its
// own content address, the BLAKE3-256 of its bytes, so stores need not
// know about erasure coding: a shard is an ordinary block to them. The
// manifest row keeps K, the K+M shard keys in shard order and the store of
// each shard (storage/manifest).
//
// Reading fetches the K data shards first; when all arrive and match their
// keys, the block is their concatenation cut to n bytes, with no decoding.
// Otherwise parity shards are fetched until K good shards are in hand and
// the missing ones are reconstructed. The joined bytes are checked against
// the block's key like a replica's, so a reconstruction from a wrong shard
// cannot go unnoticed.
//
// # Schemes
//
// A Scheme is written "rs:K+M" (CKPT_REDUNDANCY, 'ckpt put --redundancy').
// K is from 1 to MaxData and M from 1 to MaxParity, and a write needs K+M
// live stores. The storage overhead is (K+M)/K against 1 for a single
// copy and N for N replicas; up to M stores may be lost at once.
package erasure
