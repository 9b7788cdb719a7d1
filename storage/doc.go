// Package storage holds what every part of the ckptio storage layer agrees
// on: the content address of a block (Hash, BLAKE3-256), the BlockStore
// contract that the in-memory fake, the on-disk store and the TCP client all
// implement, and the package's sentinel errors.
//
// The layer follows stdchk: scavenged desktops run a store daemon
// (storage/store) that keeps blocks by hash within a quota; a manager
// (storage/manager) keeps the catalog of stores, jobs and versions; a client
// (storage/client) stripes blocks over the live stores with a window of
// requests in flight and reads them back in parallel, verifying every hash.
// The wire format is specified in storage/wire, the manifest format in
// storage/manifest.
//
// Nothing under storage/ imports MPI: the daemons and the ckpt tool build
// with CGO_ENABLED=0.
package storage
