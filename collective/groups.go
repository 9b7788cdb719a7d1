package collective

import (
	"errors"
	"fmt"
	"time"

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
	// checkpoint size. It is cut into 4 slabs. Writing, a round gathers
	// into a free slab and its blocks go to the stores from there, so a
	// slab is busy until the stores hold its blocks. Restoring, rounds
	// are read from the stores into slabs, up to three ahead of the one
	// being scattered. 0 = DefaultLeaderMemory. A round carries at least one
	// block per member, so the true bound is max(LeaderMemory, 4 x members
	// x the largest block).
	LeaderMemory int64
	// BlockSize is the size of fixed blocks when Chunker is nil, and the
	// least size of a leader's block buffers; 0 = chunk.DefaultSize.
	BlockSize int
	// Chunker cuts regions into blocks (fixed or content-defined); nil =
	// fixed blocks of BlockSize.
	Chunker chunk.Chunker
	// IdleWait is the longest pause between polls while a rank waits in
	// one of the session's collectives, for Comms that implement
	// IdleWaiter: group members wait there for their leader during the
	// whole write, and spinning would take the cores the leader and the
	// stores need (or the application, during an asynchronous
	// checkpoint). 0 = DefaultIdleWait; negative = the Comm's own
	// blocking calls. Every rank must pass the same value.
	IdleWait time.Duration
	Logger   *zap.Logger // nil = no logging
}

// DefaultIdleWait is Options.IdleWait's default: at most half a
// millisecond of latency per collective call that had to wait.
const DefaultIdleWait = 500 * time.Microsecond

// IdleWaiter is implemented by Comms (mpiio/mpi) whose Barrier, Bcast and
// Allreduce can wait for slow peers by polling with pauses up to max
// instead of spinning. Every rank of the Comm must set the same.
type IdleWaiter interface {
	SetIdleWait(max time.Duration)
}

// Session holds the communicators of one checkpointing job: the world, the
// rank's aggregation group (whose rank 0 is the leader) and, on leaders, the
// communicator of all leaders (whose rank 0 is world rank 0).
type Session struct {
	opts    Options
	log     *zap.Logger
	world   Comm
	group   Comm
	leaders Comm      // nil on non-leaders
	slabs   *slabPool // a leader's gather buffers, kept across checkpoints
	sendBuf []byte    // a rank's send buffer of a write round
	recvBuf []byte    // a rank's receive buffer of a restore round
	gc      *collector
	// memo: per region name, its segments as last cut, with their
	// fingerprints and hashes (fingerprint.go); hashStats what finding
	// the changed ones cost.
	memo      map[string][]memoSeg
	hashStats HashStats // over the session
	lastHash  HashStats // of the last cut
	// stages: the leader's time split of the checkpoint being written;
	// lastRestore that of the last restore.
	stages, lastRestore Stages
	// metaHook, set by tests only, rewrites the region description this
	// rank sends its leader (to make a malformed one).
	metaHook func([]byte) []byte
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
	s := &Session{opts: opts, log: opts.Logger, gc: newCollector(opts.LeaderMemory / 2)}
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
	idle := opts.IdleWait
	if idle == 0 {
		idle = DefaultIdleWait
	}
	for _, c := range []Comm{s.world, s.group, s.leaders} {
		if iw, ok := c.(IdleWaiter); ok && idle > 0 {
			iw.SetIdleWait(idle)
		}
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
