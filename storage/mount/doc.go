// Package mount serves a job's versions as a file system (FUSE, through
// go-fuse): 'ckpt mount JOB DIR'. Programs write files in DIR with plain
// open, write and close, and each close commits a version of the job;
// DIR/versions/N holds every committed version read-only, and DIR/latest
// links to the newest. docs/mount.md is the user's account; this is the
// implementer's.
//
// # The tree and its versions
//
// The mount keeps one tree (directories, files, symlinks, with mode and
// mtime): at mount time the job's latest version, if it holds files.
// Every version it commits is that whole tree at that moment, so
// versions/N is a consistent snapshot and a restart can take any one:
// the files whose close (or fsync) asked for the commit with their
// current bytes, every other file as the last version holds it (its
// blocks referenced through the reuse rule, version.Known: no data
// moves), every directory and symlink. A file created and not yet closed
// is not in it. A close commits only if the file changed since the last
// version, or is new; closes that arrive while a commit runs share the
// next one. Names and metadata alone (mkdir, rename, chmod, utimes,
// unlink) do not commit: they go into the next version, and the unmount
// commits them if anything changed since the last one.
//
// Pessimistic (the default): close and fsync return once the version
// holding the file is committed, with every block at the job's
// replication target (or one copy with optimistic writes). Async: they
// return at once and the commit runs in the background; an error is
// logged, returned by the next write-side operation on the mount, and by
// the unmount. Either way a version is committed whole or not at all (the
// version layer), so a crash leaves the job at the last committed
// version; a file whose commit failed stays in the tree and is in the
// next version that succeeds.
//
// # Writing: stream, tail, spool
//
// A file's content (content.go) is three ranges. Bytes written at or past
// the streamed end go to an in-memory tail of less than a block; each
// block the tail fills is handed to a stream writer (version.Writer, in a
// transaction of the file's that protects the blocks from garbage
// collection until a commit confirms them), which hashes, deduplicates
// against the tree's blocks, compresses and stores it in the background.
// So a sequential writer streams at the stores' pace with at most
// MaxBuffered bytes in flight over every file, and a close only waits for
// the last blocks and the commit.
//
// The spool rule: a write that lands before the streamed end (a header
// patched at the end, a pwrite anywhere, a truncate below the streamed
// end) waits for the stream writer's blocks to be stored, then goes to a
// local spool file (under Options.Spool; created unlinked, so nothing is
// left behind): the stored blocks it covers only in part are fetched into
// the spool first, and the range is dirty. Only what was written out of
// order is spooled; the rest stays stored and is referenced. The commit
// sends the dirty ranges as new blocks (cut at multiples of the block
// size, so unchanged blocks deduplicate) and the tail as a last block;
// then the file is clean and its spool closed. Appends after that stream
// again. Reading a file being written reads its stored blocks, spool and
// tail; a read of blocks still in the stream writer waits until they are
// stored.
//
// # Reading: versions/
//
// versions/ lists the job's versions from the manager (refreshed at most
// every second, and at once for the mount's own commits); versions/N is
// built from version N's manifest on first use: the files tree (rank
// -1), and for an MPI checkpoint each rank's regions as rank-NNNNN/REGION
// and its protected files under rank-NNNNN/files/ (as 'ckpt restore').
// Every block read is verified by the client reader (stored bytes against
// the key, decoded bytes against the hash) and comes from the first copy
// that verifies. An open file reads ahead (fetch.go): a read near the
// furthest block read so far (the kernel sends several at once, not always
// in order) starts the fetches of the blocks after it, ReadAhead bytes'
// worth (4 to 64 blocks), within a budget of four windows over the mount;
// blocks a window behind are dropped. As root, the mount raises the
// kernel's readahead of its device to 1 MiB, so that reads overlap.
//
// # Errors
//
// A block no copy of which reads back intact is EIO, with a log line
// naming the block, its stores and each copy's failure; a commit leaves
// out a file with such a block (logged) rather than fail every later
// version. Stores without room (storage.ErrNoSpace, quota, full disk, and
// a full spool disk) are ENOSPC. A manager that cannot be reached is
// retried until Options.Timeout, then EIO; every other failure is EIO
// with its cause logged. Creating, writing, renaming or changing
// anything under versions/ is EROFS. The kernel's interrupts are not
// honoured: the Go runtime of a program using the mount sends signals
// that would otherwise fail its calls with EINTR.
package mount
