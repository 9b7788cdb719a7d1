// Package version is the one writer and reader of checkpoint versions.
// Every path that makes a version goes through it: 'ckpt put', the I/O
// leaders of an MPI checkpoint (package collective), and the mounted file
// system to come. Nothing else begins a transaction, looks up the previous
// version's blocks, renews a lease, decides whether a block is reused, or
// commits.
//
// # Life of a version
//
// Begin (on one process: the ckpt command, or world rank 0) starts a
// manager transaction, then fetches the job's latest version and keeps it
// as the Previous version the new one may reuse blocks from, if it has the
// same kind, was written with the same encryption key (or none) and has
// the same redundancy (the replicas, or the erasure code rs:K+M, of the
// job's WriterOptions) as the new one will be: after a change of
// redundancy the next version is written in full. The order matters: the stores' answers about the
// previous blocks come after Begin, so the garbage collector, whose
// horizon is the oldest transaction's begin, keeps every block they
// confirm. The transaction's lease is renewed in the background until
// Commit or Abort.
//
// Writers (one per process that holds data: the ckpt command, each I/O
// leader) write blocks through storage/client's striping Writer and
// decide reuse. Each one's blocks become a Part: a manifest of those
// blocks, encoded once (storage/manifest). Parts travel as bytes
// (Part.Bytes, ParsePart) to the process that holds the transaction.
//
// Commit splices the parts into the version's manifest, with the
// version-level fields (job, kind, meta, figures) and the replication
// target, and commits it; Abort discards the transaction. Either way the
// lease renewal stops. An error anywhere leaves nothing listed: a version
// is committed whole or not at all, and blocks already stored are left to
// garbage collection.
//
// # The reuse rule
//
// A block whose hash the previous version holds (same length) is
// referenced instead of sent only when the stores confirm, by a batched
// Has, at least as many copies as a new block gets before the version
// commits: the replication target for pessimistic writes, one for
// optimistic ones. With fewer confirmed copies the block's data is
// written: the confirmed copies count (when the block encodes to the same
// stored bytes) and only the missing ones are put, on the stores placement
// picks. So a version is as replicated at commit as if all its blocks were
// new, and does not wait for the manager's repair. A confirmation also
// touches the block on its store, which protects it from garbage
// collection for as long as the transaction runs.
//
// An erasure-coded block (rs:K+M) is reused only whole: when every one of
// its K+M shards is confirmed on the store the row lists for it. Otherwise
// all its shards are written again (stores that still hold one keep it:
// a put of bytes a store holds creates nothing). A version has one
// redundancy: Commit refuses parts written with different ones, and the
// manager refuses a manifest whose rows disagree with its meta.
//
// Writer.Plan decides for a batch of blocks before their data is moved
// (the MPI leaders gather only what Plan says is needed); Writer.Put and
// Writer.WriteObject decide for blocks whose data they are given.
//
// # Reading
//
// Open fetches a committed version as a Snapshot (the manifest, decoded
// once per process; its encoded bytes can be handed to other processes,
// ParseSnapshot); a Reader reads and verifies its blocks.
package version
