package collective

import (
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/ckptio/ckptio/storage/chunk"
)

// DefaultLeaderMemory bounds a leader's buffers when Options.LeaderMemory is
// zero.
const DefaultLeaderMemory = 64 << 20

// Options configures a Session. Zero values pick the defaults.
type Options struct {
	// RanksPerLeader sizes the aggregation groups: ranks r with equal
	// r/RanksPerLeader share a leader. 0 = one group per node (ranks that
	// share memory).
	RanksPerLeader int
	// LeaderMemory bounds the bytes a leader holds at once, whatever the
	// checkpoint size: half for the gather (or scatter) buffer of a round,
	// half for blocks in flight to stores. 0 = DefaultLeaderMemory. A round
	// carries at least one block per member, so the true bound is
	// max(LeaderMemory, 2 x members x BlockSize).
	LeaderMemory int64
	// BlockSize is the size of fixed blocks when Chunker is nil, and the
	// least size of a leader's block buffers; 0 = chunk.DefaultSize.
	BlockSize int
	// Chunker cuts regions into blocks (fixed or content-defined); nil =
	// fixed blocks of BlockSize.
	Chunker chunk.Chunker
	Logger  *zap.Logger // nil = no logging
}

// Session holds the communicators of one checkpointing job: the world, the
// rank's aggregation group (whose rank 0 is the leader) and, on leaders, the
// communicator of all leaders (whose rank 0 is world rank 0).
type Session struct {
	opts    Options
	log     *zap.Logger
	world   Comm
	group   Comm
	leaders Comm     // nil on non-leaders
	bufs    *bufPool // a leader's block buffers, kept across checkpoints
}

// NewSession forms the aggregation groups. It is collective over world and
// duplicates it, so the session's traffic never mixes with the
// application's.
func NewSession(world Comm, opts Options) (*Session, error) {
	if opts.LeaderMemory <= 0 {
		opts.LeaderMemory = DefaultLeaderMemory
	}
	if opts.BlockSize <= 0 {
		opts.BlockSize = chunk.DefaultSize
	}
	if opts.RanksPerLeader < 0 {
		return nil, fmt.Errorf("collective: ranks per leader %d: want 0 (one leader per node) or more", opts.RanksPerLeader)
	}
	s := &Session{opts: opts, log: opts.Logger}
	if s.log == nil {
		s.log = zap.NewNop()
	}
	var err error
	if s.world, err = world.Dup(); err != nil {
		return nil, fmt.Errorf("collective: dup world: %w", err)
	}
	rank := s.world.Rank()
	if opts.RanksPerLeader > 0 {
		s.group, err = s.world.Split(rank/opts.RanksPerLeader, rank)
	} else {
		s.group, err = s.world.SplitShared(rank)
	}
	if err != nil {
		return nil, fmt.Errorf("collective: forming aggregation groups: %w", err)
	}
	color := -1
	if s.group.Rank() == 0 {
		color = 0
	}
	if s.leaders, err = s.world.Split(color, rank); err != nil {
		return nil, fmt.Errorf("collective: forming the leaders' communicator: %w", err)
	}
	return s, nil
}

// IsLeader reports whether this rank is its group's I/O leader.
func (s *Session) IsLeader() bool { return s.group.Rank() == 0 }

// Rank is the rank in the world.
func (s *Session) Rank() int { return s.world.Rank() }

// Size is the number of ranks in the world.
func (s *Session) Size() int { return s.world.Size() }

// Close frees the session's communicators. Collective.
func (s *Session) Close() error {
	var errs []error
	if s.leaders != nil {
		errs = append(errs, s.leaders.Free())
	}
	errs = append(errs, s.group.Free(), s.world.Free())
	return errors.Join(errs...)
}
