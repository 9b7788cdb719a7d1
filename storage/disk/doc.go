// Package disk is the on-disk storage.BlockStore that a desktop donates: a
// directory holding content-addressed blocks within a quota. Open returns a
// *Store; storetest.Run checks it in both layouts.
//
// # Directory
//
//	DIR/LOCK                  flock'ed while a Store has DIR open
//	DIR/STORE                 "ckpt-store 1\nid st-XXXXXXXXXXXX\nlayout L\n"
//	DIR/packs/SSSSSSSS.pack   LayoutPack: the pack log, S the sequence in hex
//	DIR/blocks/XX/HASH        LayoutFiles: one file per block, XX = HASH[:2]
//
// The store ID ("st-" and 12 random hex digits) is made on the first Open and
// kept in DIR/STORE, so it survives restarts. File names derive only from the
// 64-digit hex form of a hash (or a pack's sequence number); no name a client
// sends reaches the filesystem.
//
// # Layouts
//
// LayoutPack (the default) appends blocks as records to the active pack file
// and starts a new pack at Options.PackSize (64 MiB). A record is a 64-byte
// header (magic "CKR1", kind, data length, tombstone target, hash, CRC-32C of
// the header, CRC-32C of the data; see record.go) followed by the data. A
// delete appends a tombstone naming the pack and offset of the put record it
// kills. The in-memory index (hash to pack, offset, length) is rebuilt at
// Open. Per-pack accounting counts live bytes; once less than half of a
// sealed pack is live, a background compactor copies its live records and
// its still-needed tombstones to the active pack and removes it.
//
// LayoutFiles keeps each block in DIR/blocks/XX/HASH; a delete is an unlink.
//
// docs/store-layout.md has the measurements behind the default: with 16 puts
// in flight the pack log puts 64 KiB blocks several times faster.
//
// # Durability
//
// Put returns nil only once the block survives a crash of the process or of
// the machine. Both layouts batch concurrent puts (group commit): one
// committer goroutine takes every request waiting, up to Options.MaxBatch,
// and answers them all after one round of syncs.
//
// LayoutPack put:
//
//  1. Put checks BLAKE3(data) == hash and reserves the bytes against the
//     quota under the store's lock.
//  2. The committer writes the batch's records (pwrite) at the end of the
//     active pack.
//  3. It fdatasyncs the pack once for the whole batch (the data and the new
//     file size).
//  4. It answers every put of the batch.
//
// Before a record goes to a new pack, the pack file is created and DIR/packs
// fsynced. If a write or the fdatasync fails, the batch is cut off the pack
// (ftruncate to where it began), every put of the batch fails and its
// reservation is released; after a failed fdatasync the committer goes on in
// a new pack, since the old one's page cache can no longer be trusted. A
// delete is the same sequence with tombstones. Compaction copies records the
// same way, and only after the copies are durable unlinks the old pack and
// fsyncs DIR/packs; a crash in between leaves two copies, and Open keeps the
// newer.
//
// LayoutFiles put:
//
//  1. As above: hash check, quota reservation.
//  2. In the caller's goroutine: create DIR/blocks/XX/HASH.tmp-R (O_EXCL),
//     write the data, fdatasync, close. Concurrent puts fdatasync in
//     parallel, and the filesystem shares its journal commits among them.
//  3. The committer renames each tmp file of the batch to HASH.
//  4. It fsyncs each fan-out directory the batch touched, once.
//  5. It answers every put of the batch.
//
// A put that fails at any step removes its tmp file (or, if the directory
// fsync failed, the renamed file) before it returns. A delete unlinks the
// files and fsyncs each directory it touched once.
//
// DIR/STORE is written by the classic sequence: write STORE.tmp-R, fsync,
// rename to STORE, fsync DIR.
//
// # Testing durability
//
// The store reaches the file system only through fileSystem (fs.go): the
// calls it makes, fdatasync (fsFile.SyncData) and the directory fsync
// (SyncDir) among them. osFS, the operating system's, is the default and
// costs the put path nothing. The tests swap in two others:
//
//   - memFS (memfs_test.go), after pebble's strict MemFS, keeps files in
//     memory and remembers what each sync made durable: a file's contents
//     as of its last SyncData, a directory's entries as of its last
//     SyncDir. Its crashClone is a power cut: a copy holding only that
//     (or, torn, also a random prefix of the writes since).
//     TestPowerCutKeepsAcknowledged runs concurrent puts and deletes in
//     both layouts, cuts the power between phases and in the middle of
//     batches, reopens the store on what is left and checks that every
//     acknowledged put reads back, every acknowledged delete stays
//     deleted and nothing held is damaged. Leaving out any sync the
//     sequences above rely on makes it (or, for STORE's, the test of
//     writeFileDurable) fail; its comment says which two it does not need.
//   - faultyFS (disk_test.go) fails SyncData or SyncDir:
//     TestFailedSyncIsNotAcknowledged checks that no put is then
//     acknowledged and nothing is left.
//
// TestCrashKeepsAcknowledgedBlocks kills a store process with SIGKILL in a
// stream of puts and deletes, on the real file system, and checks that
// every acknowledged put reads back (a killed process keeps the page
// cache, so this checks the sequences, not the syncs).
//
// # Open
//
// Open takes an exclusive flock on DIR/LOCK (a second daemon on the same
// directory fails, naming it), reads or creates DIR/STORE, removes temporary
// files a crash left, and rebuilds Used and Blocks:
//
//   - LayoutPack reads the header of every record (one 64-byte pread each)
//     of the sealed packs, and reads and checksums the whole active pack,
//     cutting it after its last good record: the only place a crash can
//     leave a torn, unacknowledged batch. Cost: one pread per record plus at
//     most PackSize bytes read.
//   - LayoutFiles lists the 256 fan-out directories and stats each block
//     file: one fstatat per block.
//
// BenchmarkOpen measures both at 100,000 blocks (docs/store-layout.md).
//
// # Space
//
// Used counts the bytes of the blocks held; a put that would take Used (plus
// the puts in progress) beyond Options.Quota fails with
// storage.ErrQuotaExceeded, and ENOSPC from the filesystem becomes
// storage.ErrDiskFull. A delete takes the blocks' bytes off Used at once. In
// LayoutPack the disk space comes back when compaction removes the pack: the
// packs can occupy up to about twice Used (plus record headers) before it
// does. Stat.DiskFree is the filesystem's free space (statfs).
//
// # Touches and List
//
// The store keeps in memory, for each block held, its size and the time Put
// or Has last touched it (storage.BlockStore), in Unix nanoseconds of its
// clock (Options.Now, the machine's unless a test gives another); nothing
// of it is on disk. Open counts every block as
// touched at that moment. Delete compares notSince with the touch time and
// takes the block out of the index under the store's lock, so no Has or Put
// can confirm the block between the check and the removal. Deleting is
// then the same sequence as above (a tombstone, an unlink).
//
// List reads a sorted index of the held hashes, kept beside the map: a
// sorted base in which deletes only mark entries, plus a short sorted
// slice of the hashes added since (at most 4096). The slice is merged into
// the base when it fills, and the base rebuilt without its marked entries
// once half of it is marked. A page costs O(log n + max); a put or a delete a binary
// search and a memmove of at most 128 KiB, plus an O(n) rebuild once every
// 4096 puts or n/2 deletes; the index costs 33 bytes per block, built at
// Open by one sort. BenchmarkList walks 100,000 blocks in about 2 ms in
// pages of 64.
//
// # Concurrency
//
// All methods are safe for concurrent use. The store serializes the
// operations on one hash (a put waits for a put or delete of the same hash
// in progress). Its goroutines (the committer; in LayoutPack the compactor)
// are stopped by Close, which first waits for the operations in progress.
package disk
