// Package client moves the blocks of checkpoint versions to and from the
// stores. It knows blocks and stores, not versions: storage/version, the
// one writer of versions, decides what to write and commits it.
//
// A Writer stripes blocks over the live stores: it places each block's
// copies on the stores that score best for the block's key by weighted
// rendezvous hashing (storage/placement), where a store's weight is its
// free space, and keeps up to Window puts outstanding per store, so a
// writer never waits on one store's round trip (the sliding window of
// stdchk). Placement by key makes equal blocks land on the same store,
// which stores them once. When a store refuses a block (quota, full disk,
// dead connection) the copy moves to the next store in the key's order;
// the writer fails only when no store will take it, with an error naming
// the block and the stores. Copies the caller says are already held (an
// earlier version's, confirmed) count toward the replicas, and only the
// missing ones are put; blocks the caller references (Reference) are
// recorded and not sent. Blocks are lz4-compressed while that saves an
// eighth, and sealed when the job is encrypted.
//
// A Reader fetches blocks in parallel from any store that holds a copy,
// verifies the stored bytes against the block's key and the decoded bytes
// against its hash, and writes them at their offsets.
//
// A Pool keeps one connection per store and maps store IDs to addresses
// through the manager's store list.
package client
