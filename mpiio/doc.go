// Package mpiio is what an MPI Go program calls to checkpoint its state
// collectively onto a ckptio cluster and to restart from any saved version.
//
//	cp, err := mpiio.Open(ctx, mpicomm.Wrap(mpi.World()), mpiio.Config{Job: "heat"})
//	cp.Protect("temperature", grid)            // a []float64 the program updates in place
//	cp.ProtectFiles("out/rank-3.log")          // this rank's files, rolled back with the regions
//	_, restored, err := cp.Resume(ctx)         // CKPT_RESTART_VERSION, else the latest
//	_, err = cp.Checkpoint(ctx, mpiio.Meta{Step: step}) // asynchronous: returns once copied
//	v, err := cp.Wait(ctx)                     // the version, once durable
//	err = cp.Close(ctx)
//
// The package example (Example) is a whole program that compiles.
//
// Open, Checkpoint, Wait, Latest, Restore, Resume, Stream.Commit and Close
// are collective: all ranks call them, in the same order. A checkpoint
// commits only when every rank succeeded; otherwise every rank gets the
// same error and the previous latest version stays latest.
//
// # Protected memory
//
// Protect registers a slice by name. Supported element types are the
// fixed-size ones: byte, int8..int64, uint8..uint64, int, uint, float32,
// float64, complex64, complex128. The slice's bytes are saved in the
// machine's byte order (little-endian on x86-64 and arm64). Checkpoint reads
// the slice and Restore overwrites it in place, so the backing array must
// stay the same: if the program reallocates it, Protect the new slice under
// the same name. Names are 1-64 characters of [A-Za-z0-9._-].
//
// # Protected files
//
// ProtectFiles adds files or directories (walked recursively, symlinks
// kept as symlinks) to what a rank checkpoints. Every Checkpoint captures
// them in the same version as the regions, as entries of that rank (their
// manifest rank is the world rank), and commits them with the regions in
// one commit: if any rank's regions or files fail, neither is committed.
// Restore and Resume roll each rank's protected paths back, in place, to
// the version, beside the regions, so that memory and files agree: what
// was created after the version is removed (including a protected path
// that did not exist then), appended output is truncated, changed
// contents, modes and mtimes come back, and only the blocks that differ
// are read from the stores. A rollback cut short is completed by the next
// restore.
//
// The rule is per rank: a rank captures and rolls back what it protects,
// and nothing else. A directory the ranks share must be protected by
// exactly one rank, its owner (rank 0, say), and each rank's own files by
// that rank. A checkpoint in which two ranks on one host protect the same
// path, or one a path inside the other's, fails on every rank, naming
// them. Across hosts the same path may be node-local (/tmp) or on a shared
// file system; ckptio cannot tell, so there the rule is the program's.
//
// Paths are resolved when protected: made absolute, with the symlinks of
// their longest existing ancestor resolved, and kept relative to "/", so
// a rollback rewrites the same place whatever the working directory. A
// path need not exist yet. Each version records every rank's list of
// protected paths; a restore of a version that did not protect a path
// the rank protects now (or one holding it) is refused on every rank
// before anything is touched, since it cannot say what the path held:
// protect such a path after Resume. A protected path may not be a region's
// name, nor contain the staging directory.
//
// A capture goes by stat, like restic: a file whose size, mtime, ctime,
// inode and mode match the rank's previous capture is referenced without
// being read (its blocks confirmed on the stores); any other file is read
// whole in fixed blocks of Config.BlockSize (64 KiB unless set, as for
// regions: chunk.DefaultSize), and the blocks the previous
// capture holds are referenced, so a log that grew sends its new tail. A
// rank that protects files writes them to the stores itself, beside the
// leaders, and sends the part it wrote to rank 0 for the commit.
//
// An asynchronous Checkpoint captures the files as of its call: before it
// returns, each rank scans its paths and copies the files the version
// must read (new and changed ones; unchanged ones are referenced) into a
// directory under Config.StagingDir (CKPT_STAGING_DIR, default the
// system's temporary directory), removed when the checkpoint ends. The
// copy is a reflink where the file system shares extents and the staging
// directory is on the same one (btrfs, XFS, bcachefs), else a full copy
// made by the kernel: on ext4, which has no reflinks, a page-cached file
// copied at about 3 GB/s on the machine measured (64 MiB in 20-25 ms, on
// /tmp and /work alike), on tmpfs at about 1.6 GB/s (BenchmarkFreeze).
// That is what the program waits for per byte of new or changed files; a
// file that only grew is copied whole. A rank that cannot stage its
// copies (no room, not writable) checkpoints synchronously instead and
// logs why.
//
// # Self-serializing programs
//
// Programs that serialize themselves use a stream: Begin, write into
// Stream.Writer(name) on every rank, Commit. They read back with
// OpenReader(ctx, version, rank, name), which is not collective and can read
// any rank's data, so a job restarted with a different number of ranks can
// redistribute: each new rank opens the old ranks' readers it needs (the
// version's rank count is in Versions' Meta[catalog.MetaRanks]) and takes its share.
// Restore itself refuses a version written by a different number of ranks.
//
// # Configuration
//
// Zero fields of Config come from the environment that ckptrun sets:
// CKPT_JOB, CKPT_MANAGER (unset = the embedded local cluster under
// CKPT_HOME), CKPT_TOKEN or CKPT_TOKEN_FILE, CKPT_RANKS_PER_LEADER,
// CKPT_LEADER_MEMORY, CKPT_BLOCK_SIZE, CKPT_CHUNKING, CKPT_COMPRESS,
// CKPT_REPLICAS, CKPT_REDUNDANCY, CKPT_WRITE_MODE, CKPT_ASYNC, CKPT_ASYNC_MEMORY,
// CKPT_STAGING_DIR, CKPT_TLS_CA, CKPT_ENCRYPT_KEY_FILE, CKPT_RETRY_FOR,
// CKPT_ON_FAILURE (see FailurePolicy),
// CKPT_RESTART_VERSION. Blocks are 64 KiB (chunk.DefaultSize) unless
// Config.BlockSize or CKPT_BLOCK_SIZE (4 KiB to 16 MiB) says otherwise.
package mpiio
