// Package client writes and reads checkpoint versions on the stores.
//
// A Writer stripes the blocks of one version over the live stores: it places
// each block on a store chosen by smooth weighted round robin, where a
// store's weight is its free space, and keeps up to Window puts outstanding
// per store, so a writer never waits on one store's round trip (the sliding
// window of stdchk). When a store refuses a block (quota, full disk, dead
// connection) the block moves to the next live store; the writer fails only
// when no store will take it, with an error naming the block and the stores.
//
// A Reader fetches the blocks of a manifest in parallel from any store that
// holds a copy, verifies the stored bytes against the block's key and the
// decoded bytes against its hash, and writes them at their offsets.
//
// Version ties a Writer to the manager: it begins a transaction, keeps its
// lease alive while blocks are written, and commits the manifest atomically
// or aborts it.
package client
