// Package manager is the core of the catalog daemon (cmd/ckpt-manager): a
// bbolt catalog of stores, jobs, versions and in-flight transactions, served
// over HTTP/JSON and signed with the cluster token, with garbage collection
// and repair. The API it serves (types, sentinel errors, meta keys, the
// signed HTTP protocol and the Go client) is package storage/catalog, which
// links no bbolt: writers, stores and the ckpt tool import that, and only
// cmd/ckpt-manager imports this package.
//
// # Versions
//
// A version is created, filled and committed atomically. Begin(job) returns
// a transaction (not a version number); the writer puts its blocks on the
// stores, renews the transaction well within TxnTimeout, and commits the
// manifest. Commit decodes and validates the manifest, checks its job, then
// in one bbolt transaction assigns the job's next version number (monotonic,
// never reused even after deletes: the job record keeps the highest number
// ever assigned), stores the manifest (re-encoded with its version number)
// and its VersionInfo, and removes the transaction. An uncommitted version is
// never listed or restorable; Abort discards one; the janitor goroutine
// removes transactions not renewed for TxnTimeout (their blocks are left to
// garbage collection). Transactions persist across a manager restart.
//
// # Retention
//
// A job may have a retention policy (Retention: keep the last N, every
// K-th, those committed within a duration); pinned versions and the latest
// are always kept. It is applied after every commit of the job and when
// set. DeleteVersion deletes any unpinned version. A version's info,
// manifest and block references are deleted in one bbolt transaction, and
// its number is never reused.
//
// # Garbage collection
//
// Mark and sweep. The mark is kept up to date rather than computed: the
// refs bucket counts, per block key, the committed versions naming it,
// changed in the same bbolt transaction as the commit or delete (refs.go).
// GC takes the horizon T0 (the oldest in-flight transaction's begin, or
// now, minus Options.GCClockSkew), lists each alive store's keys and asks
// the store to delete the unreferenced ones not touched since T0. Writers
// touch every block their version relies on after their transaction
// begins, so no block a checkpoint in flight relies on is collected.
// docs/incremental.md has the argument. GC runs every Options.GCEvery and
// on POST /v1/gc, one at a time.
//
// # Replication and repair
//
// A version's manifest Meta "replicas" is its replication target (1 to
// MaxReplicas, default 1). A block is healthy with at least that many
// copies on alive stores that hold it, degraded with fewer, lost with
// none; Health asks the alive stores with one batched Has each. Repair
// copies blocks below target from a live holder to other alive stores
// (where a writer would place them, by storage/placement; never two
// copies on one store) and rewrites
// the Stores lists of every manifest naming them, each in a bbolt update
// that skips a version deleted meanwhile. It runs every
// Options.RepairEvery when something changed, and on POST /v1/repair.
// VersionInfo.Protected answers from the catalog alone, from each
// version's placement. docs/availability.md has the design.
//
// # Stores
//
// Stores heartbeat every few seconds. The catalog remembers every store it
// has seen (persisted at registration, on an address change and at most
// every 30s otherwise); a store is Alive while its last heartbeat to this
// manager is within DeadAfter, so after a restart every store is dead until
// it heartbeats again. Heartbeats also carry the owner's label, counters
// and whether the desktop is busy (its owner needs it): repair neither
// reads copies from nor puts copies on a busy store, garbage collection
// skips it, and both catch up when it is idle again. An operator drains a
// store (DrainStore, persisted): writers leave it out and repair counts
// its copies as absent, copying them elsewhere and taking it off the
// manifests; ForgetStore then removes it, refusing while the manifests
// list it as the only copy of anything, and remembers its ID so its
// heartbeats are refused (stores.go).
//
// # Catalog file
//
// dataDir/catalog.db is a bbolt file whose lock keeps a second manager out
// (Open fails with ErrLocked). Buckets: meta (format "1", and "refs" ->
// "1" once the refs bucket is complete; Open builds it from the manifests
// of a catalog that lacks it; "placements" -> "1" likewise), stores (ID
// -> StoreInfo JSON), forgotten (store ID -> time forgotten, JSON), txns (ID -> Txn JSON), refs (32-byte block key -> 8-byte big-endian count of
// committed versions naming it), jobs (name -> bucket holding "info" ->
// job record JSON, "retention" -> Retention JSON, "versions" (8-byte
// big-endian version -> VersionInfo JSON), "manifests" (version ->
// Arrow IPC manifest) and "placements" (version -> the distinct Stores
// lists of its blocks, JSON)).
//
// # Catalog records
//
// After each commit, delete, pin and retention change the manager writes
// catalog records (the job, the version with its manifest, or a
// tombstone) to the stores, before answering; Recover rebuilds a lost
// catalog from them into an empty directory (records.go, recover.go,
// docs/availability.md "Recovering the catalog").
//
// # HTTP API
//
// Handler serves the API that package storage/catalog specifies and its
// Client speaks.
package manager
