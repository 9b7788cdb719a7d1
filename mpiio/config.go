package mpiio

import (
	"fmt"
	"os"
	"strconv"

	"go.uber.org/zap"

	"github.com/ckptio/ckptio/storage"
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
	// BlockSize is the block size in bytes (CKPT_BLOCK_SIZE); 0 = 1 MiB.
	BlockSize int
	Logger    *zap.Logger // nil = no logging
}

// fromEnv fills zero fields from the environment.
func (c *Config) fromEnv() error {
	if c.Job == "" {
		c.Job = os.Getenv("CKPT_JOB")
	}
	if c.Job == "" {
		return fmt.Errorf("mpiio: no job name: set Config.Job or CKPT_JOB (ckptrun sets it)")
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
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return nil
}

// restartVersion reads CKPT_RESTART_VERSION: 0 and false when unset.
func restartVersion() (int64, bool, error) {
	v := os.Getenv("CKPT_RESTART_VERSION")
	if v == "" {
		return 0, false, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 {
		return 0, false, fmt.Errorf("mpiio: CKPT_RESTART_VERSION=%q: want a version number (see 'ckpt versions JOB')", v)
	}
	return n, true, nil
}
