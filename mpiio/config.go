package mpiio

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/chunk"
	"github.com/ckptio/ckptio/storage/client"
	"github.com/ckptio/ckptio/storage/erasure"
)

// Config configures Open. Zero fields are taken from the environment; see
// the package documentation.
type Config struct {
	Job       string // CKPT_JOB; required one way or the other
	Manager   string // CKPT_MANAGER; "" = embedded local cluster
	Home      string // CKPT_HOME for the local cluster; "" = ./.ckpt
	Token     []byte // the cluster token; nil = CKPT_TOKEN, CKPT_TOKEN_FILE, TokenFile
	TokenFile string
	// RanksPerLeader sizes aggregation groups (CKPT_RANKS_PER_LEADER);
	// 0 = one I/O leader per node.
	RanksPerLeader int
	// LeaderMemory bounds a leader's buffers in bytes (CKPT_LEADER_MEMORY,
	// like 64MiB); 0 = 64 MiB.
	LeaderMemory int64
	// BlockSize is the fixed block size, or the average content-defined
	// chunk, in bytes (CKPT_BLOCK_SIZE); 0 = chunk.DefaultSize (64 KiB).
	BlockSize int
	// Chunking is "fixed" (the default) or "cdc" for content-defined
	// chunking (CKPT_CHUNKING).
	Chunking chunk.Kind
	// Replicas is the number of copies of each block on distinct stores
	// (CKPT_REPLICAS); 0 = 2 when at least 2 stores are live, else 1.
	Replicas int
	// Redundancy, when set, erasure-codes each new block instead of
	// copying it (CKPT_REDUNDANCY=rs:K+M): K data and M parity shards on
	// K+M distinct stores, any K of which read it. It excludes Replicas
	// above 1 and Optimistic. docs/availability.md, "Erasure coding".
	Redundancy erasure.Scheme
	// Optimistic commits a version once one copy of each block is durable;
	// the manager's repair makes the other copies (CKPT_WRITE_MODE=
	// optimistic). Default: pessimistic, every copy durable before commit.
	Optimistic bool
	// NoCompress stores blocks raw instead of lz4-compressing the ones that
	// shrink (CKPT_COMPRESS=0).
	NoCompress bool
	// Sync turns asynchronous checkpoints off (CKPT_ASYNC=0). By default
	// Checkpoint returns once each rank's regions are copied and the
	// leaders write in the background; see Checkpoint.
	Sync bool
	// AsyncMemory bounds the bytes one rank copies for an asynchronous
	// checkpoint (CKPT_ASYNC_MEMORY, like 1GiB); 0 = 1 GiB. A rank whose
	// regions are larger checkpoints synchronously and says so once.
	AsyncMemory int64
	// StagingDir is where an asynchronous checkpoint copies the protected
	// files it must read (new and changed ones) so that it holds them as
	// of its call (CKPT_STAGING_DIR); "" = the system's temporary
	// directory. On the protected files' own file system the copies are
	// reflinks where it shares extents (btrfs, XFS, bcachefs), else full
	// copies (ext4, tmpfs). Each checkpoint's copies are removed once it
	// ends. A rank that cannot make them there (no room, not writable)
	// checkpoints synchronously and logs why.
	StagingDir string
	// EncryptKeyFile is a key file (storage/crypt) to encrypt the blocks
	// with before they leave the leaders, and to decrypt them on restore
	// (CKPT_ENCRYPT_KEY_FILE); "" = not encrypted. Rank 0 reads it and
	// hands the key to the other ranks, as it does the token.
	EncryptKeyFile string
	// Catalog and Dial, when Catalog is set, are the cluster every rank
	// uses instead of the manager Manager names (or the local cluster):
	// Dial connects to a store by the address the catalog lists. Tests
	// inject an in-process manager and in-memory stores this way; a
	// program never needs it.
	Catalog Catalog
	Dial    client.Dialer
	Logger  *zap.Logger // nil = no logging (but see OnFailure and RetryFor)
	// RetryFor is how long a checkpoint keeps retrying an unreachable
	// manager (begin, renew, commit, the lists it reads) before it fails
	// (CKPT_RETRY_FOR, a Go duration like 3m; CKPT_RETRY_FOR=0 fails at
	// once); 0 = CKPT_RETRY_FOR, else catalog.DefaultRetryFor (3 minutes);
	// negative = no retry. Rank 0 says on stderr (or Logger) when it
	// starts retrying and when the manager answers again.
	RetryFor time.Duration
	// OnFailure is what a failed checkpoint does (CKPT_ON_FAILURE);
	// "" = CKPT_ON_FAILURE, else Continue. See FailurePolicy.
	OnFailure FailurePolicy
	// OnCheckpoint, when set, is called on every rank once each of its
	// checkpoints has committed or failed, with its figures: from the
	// goroutine that wrote it (a background one for an asynchronous
	// checkpoint), before Wait or the next call returns. It must be quick
	// and safe to run beside the program; a program exporting metrics
	// records from one rank only, since the byte counts are the whole
	// version's (docs/mpiio.md, "Metrics"). nil = not called.
	OnCheckpoint func(CheckpointStats)
}

// fromEnv fills zero fields from the environment.
func (c *Config) fromEnv() error {
	if c.Job == "" {
		c.Job = os.Getenv("CKPT_JOB")
	}
	if c.Job == "" {
		return fmt.Errorf("mpiio: no job name: set Config.Job or CKPT_JOB (ckptrun sets it)")
	}
	if c.Catalog != nil && c.Dial == nil {
		return fmt.Errorf("mpiio: Config.Catalog is set without Config.Dial to reach its stores")
	}
	if c.Manager == "" {
		c.Manager = os.Getenv("CKPT_MANAGER")
	}
	if c.Home == "" {
		c.Home = os.Getenv("CKPT_HOME")
	}
	if c.RanksPerLeader == 0 {
		if v := os.Getenv("CKPT_RANKS_PER_LEADER"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return fmt.Errorf("mpiio: CKPT_RANKS_PER_LEADER=%q: want a positive integer", v)
			}
			c.RanksPerLeader = n
		}
	}
	if c.LeaderMemory == 0 {
		if v := os.Getenv("CKPT_LEADER_MEMORY"); v != "" {
			n, err := storage.ParseSize(v)
			if err != nil || n < 1<<20 {
				return fmt.Errorf("mpiio: CKPT_LEADER_MEMORY=%q: want a size of at least 1MiB, like 64MiB", v)
			}
			c.LeaderMemory = n
		}
	}
	if c.BlockSize == 0 {
		if v := os.Getenv("CKPT_BLOCK_SIZE"); v != "" {
			n, err := storage.ParseSize(v)
			if err != nil || n < 4096 || n > storage.MaxBlockSize {
				return fmt.Errorf("mpiio: CKPT_BLOCK_SIZE=%q: want a size from 4KiB to 16MiB", v)
			}
			c.BlockSize = int(n)
		}
	}
	if c.Chunking == "" {
		k, err := chunk.ParseKind(os.Getenv("CKPT_CHUNKING"))
		if err != nil {
			return fmt.Errorf("mpiio: CKPT_CHUNKING: %w", err)
		}
		c.Chunking = k
	}
	if c.Replicas == 0 {
		if v := os.Getenv("CKPT_REPLICAS"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return fmt.Errorf("mpiio: CKPT_REPLICAS=%q: want a positive number of copies", v)
			}
			c.Replicas = n
		}
	}
	switch v := os.Getenv("CKPT_WRITE_MODE"); v {
	case "", "pessimistic":
	case "optimistic":
		c.Optimistic = true
	default:
		return fmt.Errorf("mpiio: CKPT_WRITE_MODE=%q: want pessimistic or optimistic", v)
	}
	if v := os.Getenv("CKPT_REDUNDANCY"); c.Redundancy.IsZero() && v != "" && v != "none" {
		sc, err := erasure.Parse(v)
		if err != nil {
			return fmt.Errorf("mpiio: CKPT_REDUNDANCY: %w", err)
		}
		c.Redundancy = sc
	}
	if sc := c.Redundancy; !sc.IsZero() {
		if err := sc.Check(); err != nil {
			return fmt.Errorf("mpiio: redundancy: %w", err)
		}
		if c.Replicas > 1 || c.Optimistic {
			return fmt.Errorf("mpiio: redundancy %s with %d replicas or optimistic writes (CKPT_REPLICAS, CKPT_WRITE_MODE): a checkpoint is erasure-coded, every shard durable before it commits, or replicated; drop one", sc, c.Replicas)
		}
	}
	switch v := os.Getenv("CKPT_COMPRESS"); v {
	case "", "1", "true", "on":
	case "0", "false", "off":
		c.NoCompress = true
	default:
		return fmt.Errorf("mpiio: CKPT_COMPRESS=%q: want 1 or 0", v)
	}
	switch v := os.Getenv("CKPT_ASYNC"); v {
	case "", "1", "true", "on":
	case "0", "false", "off":
		c.Sync = true
	default:
		return fmt.Errorf("mpiio: CKPT_ASYNC=%q: want 1 or 0", v)
	}
	if c.AsyncMemory == 0 {
		c.AsyncMemory = 1 << 30
		if v := os.Getenv("CKPT_ASYNC_MEMORY"); v != "" {
			n, err := storage.ParseSize(v)
			if err != nil {
				return fmt.Errorf("mpiio: CKPT_ASYNC_MEMORY=%q: want a size like 1GiB", v)
			}
			c.AsyncMemory = n
		}
	}
	if c.StagingDir == "" {
		c.StagingDir = os.Getenv("CKPT_STAGING_DIR")
	}
	if c.EncryptKeyFile == "" {
		c.EncryptKeyFile = os.Getenv("CKPT_ENCRYPT_KEY_FILE")
	}
	if c.RetryFor == 0 {
		if v := os.Getenv("CKPT_RETRY_FOR"); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				return fmt.Errorf("mpiio: CKPT_RETRY_FOR=%q: want a duration like 3m, or 0 to fail at once", v)
			}
			c.RetryFor = d
			if d == 0 {
				c.RetryFor = -1
			}
		}
	}
	if c.OnFailure == "" {
		c.OnFailure = FailurePolicy(os.Getenv("CKPT_ON_FAILURE"))
		if c.OnFailure == "" {
			c.OnFailure = Continue
		}
	}
	if c.OnFailure != Continue && c.OnFailure != Abort {
		return fmt.Errorf("mpiio: CKPT_ON_FAILURE=%q: want continue or abort", c.OnFailure)
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return nil
}

// RestartNone as CKPT_RESTART_VERSION makes Resume restore nothing (a
// fresh start, ckptrun --fresh).
const RestartNone = "none"

// FailurePolicy says what a checkpoint that failed does to the program.
type FailurePolicy string

const (
	// Continue (the default): the failure is logged on every rank (on
	// stderr when Config.Logger is nil), naming the step, the cause and
	// the version that stays the latest; Checkpoint or Wait returns
	// nil and the program goes on; the next checkpoint tries again.
	// LastError and Config.OnCheckpoint give the error to the program.
	Continue FailurePolicy = "continue"
	// Abort: the failure is returned by Checkpoint, or for an
	// asynchronous checkpoint by the next call that waits for it, on
	// every rank; a program that stops on an error then exits.
	Abort FailurePolicy = "abort"
)

// restartVersion reads CKPT_RESTART_VERSION: 0 and false when unset.
func restartVersion() (int64, bool, error) {
	v := os.Getenv("CKPT_RESTART_VERSION")
	if v == "" {
		return 0, false, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 {
		return 0, false, fmt.Errorf("mpiio: CKPT_RESTART_VERSION=%q: want a version number (see 'ckpt versions JOB') or %q", v, RestartNone)
	}
	return n, true, nil
}
