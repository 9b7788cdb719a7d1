// Package mpiio is what an MPI Go program calls to checkpoint its state
// collectively onto a ckptio cluster and to restart from any saved version.
//
//	cp, err := mpiio.Open(ctx, mpicomm.Wrap(mpi.World()), mpiio.Config{Job: "heat"})
//	cp.Protect("temperature", grid)            // a []float64 the program updates in place
//	_, restored, err := cp.Resume(ctx)         // CKPT_RESTART_VERSION, else the latest
//	_, err = cp.Checkpoint(ctx, mpiio.Meta{Step: step}) // asynchronous: returns once copied
//	v, err := cp.Wait(ctx)                     // the version, once durable
//	err = cp.Close(ctx)
//
// The package example (Example) is a whole program that compiles.
//
// Every method except OpenReader is collective: all ranks call it, in the
// same order. A checkpoint commits only when every rank succeeded; otherwise
// every rank gets the same error and the previous latest version stays
// latest.
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
// CKPT_REPLICAS, CKPT_WRITE_MODE, CKPT_ASYNC, CKPT_ASYNC_MEMORY,
// CKPT_TLS_CA, CKPT_ENCRYPT_KEY_FILE, CKPT_RESTART_VERSION.
package mpiio
