// Package client writes and reads checkpoint versions on the stores.
//
// A Writer stripes the blocks of one version over the live stores: it places
// each block's copies on the stores that score best for the block's key by
// weighted rendezvous hashing, where a store's weight is its free space, and
// keeps up to Window puts outstanding per store, so a writer never waits on
// one store's round trip (the sliding window of stdchk). Placement by key
// makes equal blocks land on the same store, which stores them once. When a
// store refuses a block (quota, full disk, dead connection) the copy moves
// to the next store in the key's order; the writer fails only when no store
// will take it, with an error naming the block and the stores. Blocks the
// previous version already stored are confirmed on their stores and
// referenced instead of sent.
//
// A Reader fetches the blocks of a manifest in parallel from any store that
// holds a copy, verifies the stored bytes against the block's key and the
// decoded bytes against its hash, and writes them at their offsets.
//
// Version ties a Writer to the manager: it begins a transaction, keeps its
// lease alive while blocks are written, and commits the manifest atomically
// or aborts it.
package client
