package collective

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/version"
)

// Region is a named piece of a rank's memory: what Protect registers.
// Data aliases the application's memory; it is read during Checkpoint and
// overwritten by Restore.
type Region struct {
	Name string
	Data []byte
}

// Result describes a committed checkpoint.
type Result struct {
	Version      int64
	LogicalBytes int64
	NewBytes     int64
	SentBytes    int64
	// Hash is what finding the changed blocks cost this rank in this
	// checkpoint (the other fields are the version's, the same on every
	// rank).
	Hash HashStats `json:"-"`
	// Stages is where this rank's time went in moving the data.
	Stages Stages `json:"-"`
}

// Checkpoint writes every rank's regions as one new version of j and
// returns it. Collective over the world. The version commits only if every
// rank succeeded; otherwise nothing is committed, the previous latest stays
// latest, and every rank returns the same error naming the failed ranks.
//
// World rank 0 holds the version's transaction (j.Catalog); the leaders
// write (j.Pool). Everything about versions (the previous one, reuse,
// renewing, committing) is storage/version's; this moves the bytes.
func (s *Session) Checkpoint(ctx context.Context, j *version.Job, regions []Region, meta map[string]string) (Result, error) {
	return s.CheckpointWith(ctx, j, regions, meta, Extra{})
}

// CheckpointWith is Checkpoint with state of the rank's own besides its
// regions (Extra.Write), committed in the same version or not at all.
func (s *Session) CheckpointWith(ctx context.Context, j *version.Job, regions []Region, meta map[string]string, x Extra) (Result, error) {
	s.stages = Stages{}
	// 1. Rank 0 begins the version; everyone learns whether it did.
	var txn *version.Txn
	if _, err := Share(s.world, func() ([]byte, error) {
		var err error
		txn, err = j.Begin(ctx, version.MPI, meta)
		return nil, err
	}); err != nil {
		return Result{}, err
	}
	if txn != nil {
		// Unless it commits: Abort after Commit does nothing.
		defer txn.Abort(context.WithoutCancel(ctx))
	}

	// 2. Rank 0 vets what the ranks claim of their extra state (a
	// failure there moves no data on rank 0 and fails the agreement).
	claims, err := gatherBytes(s.world, 0, x.Claim)
	if err != nil {
		return Result{}, err
	}
	var vetErr error
	if s.Rank() == 0 && x.Vet != nil {
		vetErr = x.Vet(claims)
	}

	// 3. Leaders learn the previous version; every rank moves the data
	// that changed to its leader, which writes the blocks. Meanwhile the
	// rank writes its extra part, if any, straight to the stores.
	extra := startExtra(ctx, x.Write)
	prev, local := s.sharePrevious(txn)
	local = withLocal(vetErr, local)
	s.gc.check() // the previous version's encoding is garbage now
	part, created, local := s.gatherAndWrite(ctx, j, regions, prev, local)
	xpart, xerr := extra()
	local = withLocal(local, xerr)

	// 4. Agree, then rank 0 commits the leaders' and the ranks' parts.
	if err := agree(s.world, local); err != nil {
		s.discardAborted(ctx, j, txn, created)
		return Result{}, fmt.Errorf("checkpoint discarded, nothing committed: %w", err)
	}
	s.gc.check()
	res, commitErr := s.commit(ctx, txn, part, xpart, regions, meta)
	out, err := Share(s.world, func() ([]byte, error) {
		if commitErr != nil {
			return nil, commitErr
		}
		return json.Marshal(res)
	})
	if err != nil {
		return Result{}, err
	}
	var r Result
	if err := json.Unmarshal(out, &r); err != nil {
		return Result{}, fmt.Errorf("collective: commit outcome: %w", err)
	}
	r.Hash = s.lastHash
	r.Stages = s.stages
	s.gc.check()
	return r, nil
}

// sharePrevious gives every leader the version the new one may reuse
// (nil: none): rank 0's, as it is, from the transaction; the other leaders
// its encoding, when there are other leaders. A leader that cannot read it
// returns the error as its outcome and keeps taking part.
func (s *Session) sharePrevious(txn *version.Txn) (*version.Previous, error) {
	if s.leaders == nil {
		return nil, nil
	}
	var prev *version.Previous
	if txn != nil {
		prev = txn.Previous()
	}
	if s.leaders.Size() > 1 {
		raw, err := bcastBytes(s.leaders, 0, prev.Bytes())
		if err != nil {
			return prev, err
		}
		if s.leaders.Rank() != 0 {
			if prev, err = version.ParsePrevious(raw); err != nil {
				return nil, fmt.Errorf("leader: the previous version: %w", err)
			}
		}
	}
	prev.DropBytes() // shared: only the decoded blocks are needed now
	return prev, nil
}

// gatherAndWrite runs the rounds of one group. Every rank cuts and hashes
// its own regions, so hashing runs on all ranks in parallel and a block the
// previous version already stored never crosses MPI: the leader's writer
// decides from the hashes which blocks it needs (Writer.Plan), and the
// leader gathers only those. A rank that fails (local, or any error here)
// keeps taking part in every step up to the agreement, sending and writing
// nothing, so no rank blocks; it returns its error for the agreement.
func (s *Session) gatherAndWrite(ctx context.Context, j *version.Job, regions []Region, prev *version.Previous, local error) (*version.Part, map[string][]storage.Hash, error) {
	mine := s.cutRegions(regions)
	desc := encodeMeta(s.Rank(), regions, mine)
	if s.metaHook != nil {
		desc = s.metaHook(desc)
	}
	metas, err := gatherBytes(s.group, 0, desc)
	if err != nil {
		return nil, nil, err
	}
	var members []regionMeta
	var w *version.Writer
	needed := make([][]byte, s.group.Size())
	if s.IsLeader() {
		segs := 0
		for i, raw := range metas {
			m, err := decodeMeta(raw)
			if err != nil {
				m = regionMeta{} // nothing is asked of it
				if local == nil {
					local = fmt.Errorf("leader: group member %d: %w", i, err)
				}
			}
			members = append(members, m)
			segs += len(m.segs)
		}
		if local == nil {
			w, local = s.newWriter(ctx, j, prev, segs)
		}
		for i, m := range members {
			needed[i] = make([]byte, len(m.segs))
			if local != nil {
				continue // the checkpoint fails: move no data
			}
			for j := range needed[i] {
				needed[i][j] = 1
			}
		}
		if local == nil && prev != nil {
			local = s.plan(ctx, w, members, needed)
		}
		if local == nil {
			// What the group still has to store, before any of it moves:
			// a cluster that cannot take it fails now, in one line.
			var need int64
			for i, m := range members {
				for k, seg := range m.segs {
					if needed[i][k] != 0 {
						need += seg.len
					}
				}
			}
			if err := w.CheckSpace(ctx, need); err != nil {
				local = fmt.Errorf("leader: %w", err)
			}
		}
	}
	s.gc.check()
	// Each rank learns which of its segments the leader needs.
	flags, err := scatterBytes(s.group, 0, needed)
	if err != nil {
		return nil, nil, err
	}
	if len(flags) != len(mine) {
		if local == nil {
			local = fmt.Errorf("collective: leader asked for %d segments, this rank cut %d", len(flags), len(mine))
		}
		flags = make([]byte, len(mine))
	}
	c := s.chunk()
	agreed := make([]int64, 1)
	if err := s.group.AllreduceInt64(leaderOnly(s.IsLeader(), c), agreed, OpMax); err != nil {
		return nil, nil, err
	}
	c = agreed[0]
	myRounds := roundsOf(pick(mine, flags), c)
	var plans [][][]segment
	rounds := int64(len(myRounds))
	if s.IsLeader() {
		for i, m := range members {
			plans = append(plans, roundsOf(pick(m.segs, needed[i]), c))
			rounds = max(rounds, int64(len(plans[i])))
		}
	}
	if err := s.group.AllreduceInt64(leaderOnly(s.IsLeader(), rounds), agreed, OpMax); err != nil {
		return nil, nil, err
	}
	rounds = agreed[0]

	slabs := s.leaderSlabs()
	size := s.group.Size()
	counts, displs := make([]int, size), make([]int, size)
	for r := 0; r < int(rounds); r++ {
		var send []byte
		if r < len(myRounds) {
			send, s.sendBuf = assemble(regions, myRounds[r], s.sendBuf)
		}
		var sl *slab
		var recv []byte
		if s.IsLeader() {
			total := 0
			for m := range plans {
				counts[m], displs[m] = 0, total
				if r < len(plans[m]) {
					counts[m] = int(bytesOf(plans[m][r]))
				}
				total += counts[m]
			}
			// Wait for a slab whose blocks are all stored. A failed
			// writer releases blocks at once, so this cannot hang on
			// dead stores; ctx bounds the rest.
			var err error
			t := time.Now()
			if sl, err = slabs.get(ctx); err != nil && local == nil {
				local = fmt.Errorf("leader: %w", err)
			}
			since(&s.stages.Stores, t)
			if sl == nil {
				sl = &slab{buf: make([]byte, total)} // only to take part in the round
			}
			recv = sl.buf[:total]
		}
		t := time.Now()
		if err := s.group.Gatherv(send, recv, counts, displs, 0); err != nil {
			return nil, nil, fmt.Errorf("gathering round %d: %w", r, err)
		}
		since(&s.stages.MPI, t)
		if !s.IsLeader() {
			continue
		}
		// Blocks are put straight from the slab, which returns to the
		// pool once the last of them is stored.
		for m := range plans {
			if r >= len(plans[m]) || local != nil {
				continue
			}
			off := displs[m]
			for _, seg := range plans[m][r] {
				data := recv[off : off+int(seg.len) : off+int(seg.len)]
				off += int(seg.len)
				ref := version.Ref{Object: members[m].names[seg.region], Rank: int32(members[m].worldRank),
					Offset: seg.off, Length: seg.len, Hash: seg.hash}
				sl.hold()
				if err := w.Put(ctx, ref, data, sl.release); err != nil {
					local = fmt.Errorf("leader: %w", err)
					break
				}
			}
		}
		sl.release()
		s.gc.check()
	}
	if !s.IsLeader() || w == nil {
		return nil, nil, local
	}
	t := time.Now()
	s.letSlabsGo(ctx)
	part, err := w.Close(ctx)
	since(&s.stages.Stores, t)
	if local == nil && err != nil {
		local = fmt.Errorf("leader: %w", err)
	}
	return part, w.Created(), local
}

// discardAborted aborts the version (rank 0), then has each leader ask
// the manager to delete the blocks its writer created (version.Discarder):
// those no committed version names and no writer in flight touched, so a
// failed checkpoint does not leave its blocks to fill the stores until
// the next garbage collection. Collective over the world; failures are
// logged: garbage collection removes what is left.
func (s *Session) discardAborted(ctx context.Context, j *version.Job, txn *version.Txn, created map[string][]storage.Hash) {
	ctx = context.WithoutCancel(ctx)
	if _, err := Share(s.world, func() ([]byte, error) { return nil, txn.Abort(ctx) }); err != nil {
		// The transaction may still hold the horizon: nothing would go.
		s.log.Warn("aborting a failed checkpoint; its blocks are left to garbage collection", zap.String("job", j.Name), zap.Error(err))
		return
	}
	n := 0
	for _, hs := range created {
		n += len(hs)
	}
	d, ok := j.Catalog.(version.Discarder)
	if n == 0 || !ok {
		return
	}
	rep, err := d.Discard(ctx, created)
	if err != nil {
		s.log.Warn("discarding the blocks of a failed checkpoint; garbage collection removes them", zap.String("job", j.Name), zap.Int("blocks", n), zap.Error(err))
		return
	}
	s.log.Info("discarded the blocks of a failed checkpoint", zap.String("job", j.Name), zap.Int64("deleted", rep.Deleted), zap.Int64("freed_bytes", rep.FreedBytes), zap.Int("stores_failed", len(rep.Failed)))
}

// cutRegions cuts this rank's regions into segments with the session's
// chunker and hashes each one (hashSegments: only those whose fingerprint
// changed since the last cut are BLAKE3-hashed). An empty region yields
// one empty segment so it is recorded.
func (s *Session) cutRegions(regions []Region) []segment {
	s.lastHash = HashStats{}
	start := time.Now()
	defer func() {
		s.lastHash.Took = time.Since(start)
		s.hashStats.add(s.lastHash)
	}()
	var out []segment
	var lens []int
	memo := s.memo
	s.memo = make(map[string][]memoSeg, len(regions))
	for i, r := range regions {
		if len(r.Data) == 0 {
			out = append(out, segment{region: i})
			continue
		}
		if s.opts.Chunker != nil {
			lens = s.opts.Chunker.Cut(r.Data, lens[:0])
		} else {
			lens = lens[:0]
			for off := 0; off < len(r.Data); off += s.opts.BlockSize {
				lens = append(lens, min(s.opts.BlockSize, len(r.Data)-off))
			}
		}
		first := len(out)
		var off int64
		for _, n := range lens {
			out = append(out, segment{region: i, off: off, len: int64(n)})
			off += int64(n)
		}
		s.hashSegments(memo[r.Name], r.Name, r.Data, out[first:])
	}
	return out
}

// newWriter opens the leader's writer.
func (s *Session) newWriter(ctx context.Context, j *version.Job, prev *version.Previous, blocks int) (*version.Writer, error) {
	h := version.Hints{BlockSize: s.opts.BlockSize, ExpectBlocks: blocks,
		// The slabs bound the leader's memory; this only has to let all
		// of them be in flight.
		MaxBuffered: leaderSlabCount * s.chunk() * int64(s.group.Size())}
	if s.opts.Chunker != nil {
		h.BlockSize = max(h.BlockSize, s.opts.Chunker.Max())
	}
	w, err := j.NewWriter(ctx, prev, h)
	if err != nil {
		return nil, fmt.Errorf("leader: %w", err)
	}
	return w, nil
}

// plan asks the writer which of the group's segments it needs the data of
// and clears the flags of the others.
func (s *Session) plan(ctx context.Context, w *version.Writer, members []regionMeta, needed [][]byte) error {
	n := 0
	for _, meta := range members {
		n += len(meta.segs)
	}
	refs := make([]version.Ref, 0, n)
	for _, meta := range members {
		for _, seg := range meta.segs {
			refs = append(refs, version.Ref{Object: meta.names[seg.region], Rank: int32(meta.worldRank),
				Offset: seg.off, Length: seg.len, Hash: seg.hash})
		}
	}
	need, err := w.Plan(ctx, refs)
	if err != nil {
		return fmt.Errorf("leader: %w", err)
	}
	i := 0
	for m := range members {
		for j := range needed[m] {
			if !need[i] {
				needed[m][j] = 0
			}
			i++
		}
	}
	return nil
}

// pick returns the segments whose flag is set: segs itself when all are
// (a full checkpoint's), or a copy of exactly those.
func pick(segs []segment, flags []byte) []segment {
	n := 0
	for _, f := range flags {
		if f != 0 {
			n++
		}
	}
	if n == len(segs) {
		return segs
	}
	out := make([]segment, 0, n)
	for i, sg := range segs {
		if flags[i] != 0 {
			out = append(out, sg)
		}
	}
	return out
}

// assemble returns the bytes of segs, contiguous. A single segment is
// returned without copying; several are copied into buf (grown as needed).
func assemble(regions []Region, segs []segment, buf []byte) ([]byte, []byte) {
	first, last := segs[0], segs[len(segs)-1]
	if first.region == last.region && last.off+last.len-first.off == bytesOf(segs) {
		// One run of one region (a full checkpoint's rounds): sent from
		// the region itself. Segments are in order and do not overlap,
		// so equal span and byte count mean no gap.
		return regions[first.region].Data[first.off : last.off+last.len], buf
	}
	buf = buf[:0]
	for _, sg := range segs {
		buf = append(buf, regions[sg.region].Data[sg.off:sg.off+sg.len]...)
	}
	return buf, buf
}

// commit sends the leaders' parts and the ranks' extra parts (xpart, nil
// when none) to rank 0, which commits them as the version. It returns the
// result on rank 0 only.
func (s *Session) commit(ctx context.Context, txn *version.Txn, part, xpart *version.Part, regions []Region, meta map[string]string) (Result, error) {
	// Every rank's extra part, over the world (empty from most ranks);
	// rank 0's own stays as it is.
	var mineX []byte
	if xpart != nil && s.Rank() != 0 {
		mineX = xpart.Bytes()
	}
	xraws, err := gatherBytes(s.world, 0, mineX)
	if err != nil {
		return Result{}, err
	}
	var extras []*version.Part
	if s.Rank() == 0 {
		if xpart != nil {
			extras = append(extras, xpart)
		}
		for r, raw := range xraws {
			if r == 0 || len(raw) == 0 {
				continue
			}
			p, err := version.ParsePart(raw)
			if err != nil {
				return Result{}, fmt.Errorf("rank %d's own part: %w", r, err)
			}
			extras = append(extras, p)
		}
	}
	if s.leaders == nil {
		return Result{}, nil
	}
	// Rank 0's own part stays as it is; the other leaders send theirs,
	// encoded once by their writers and not decoded on the way.
	var mine []byte
	if s.Rank() != 0 {
		mine = part.Bytes()
	}
	raws, err := gatherBytes(s.leaders, 0, mine)
	if err != nil || s.Rank() != 0 {
		return Result{}, err
	}
	parts := []*version.Part{part}
	for i, raw := range raws[1:] {
		p, err := version.ParsePart(raw)
		if err != nil {
			return Result{}, fmt.Errorf("leader %d's blocks: %w", i+1, err)
		}
		parts = append(parts, p)
	}
	names := make([]string, len(regions))
	for i, r := range regions {
		names[i] = r.Name
	}
	meta = version.Layout{Ranks: s.Size(), Leaders: len(parts), Regions: names}.AddMeta(maps.Clone(meta))
	c, err := txn.Commit(ctx, meta, append(parts, extras...)...)
	if err != nil {
		return Result{}, fmt.Errorf("commit: %w", err)
	}
	return Result{Version: c.Version, LogicalBytes: c.LogicalBytes, NewBytes: c.NewBytes, SentBytes: c.SentBytes}, nil
}

// leaderOnly returns v on the leader and zeros elsewhere, for an
// Allreduce(max) that broadcasts the leader's figures within a group.
func leaderOnly(leader bool, v ...int64) []int64 {
	if !leader {
		return make([]int64, len(v))
	}
	return v
}

// leaderSlabCount is how many buffers (slabs) a leader's memory is cut
// into. Writing, a round gathers into a free slab and its blocks go to the
// stores straight from it, so while one slab fills, the blocks of the
// others are on their way to the stores: MPI and TCP overlap, and no byte
// is copied between the gather and the socket. Restoring, rounds are read
// into slabs ahead of the one being scattered.
const leaderSlabCount = 4

// chunk is the bytes a member sends its leader (or receives from it) per
// round: one slab shared by the group, at least one block each.
func (s *Session) chunk() int64 {
	c := s.opts.LeaderMemory / leaderSlabCount / int64(s.group.Size())
	c = max(c, int64(s.opts.BlockSize))
	if s.opts.Chunker != nil {
		c = max(c, int64(s.opts.Chunker.Max()))
	}
	return c
}

// leaderSlabs returns the leader's slabs (nil on other ranks), made for
// rounds of chunk bytes per member.
func (s *Session) leaderSlabs() *slabPool {
	if !s.IsLeader() {
		return nil
	}
	if size := int(s.chunk()) * s.group.Size(); s.slabs == nil || s.slabs.size < size {
		s.slabs = newSlabPool(leaderSlabCount, size)
	}
	return s.slabs
}

// letSlabsGo waits, once a checkpoint's rounds are over, for the blocks
// still in the leader's slabs to be stored, then lets the slabs go and
// collects at once. What the leader allocates next (the part's encoding,
// the commit) then reuses their memory rather than adding to it: a
// leader's peak is the larger of its rounds and its close, not their sum.
// Measured at 4 x 1 GiB (docs/benchmarks.md, "Leader memory"). Slabs are
// made again by the next operation, from memory the runtime kept.
func (s *Session) letSlabsGo(ctx context.Context) {
	p := s.slabs
	s.slabs = nil
	if p == nil || p.wait(ctx) != nil {
		return // a cancelled write: its close fails anyway
	}
	s.gc.reclaim()
}

// slabPool holds a leader's slabs for one checkpoint or restore,
// allocating them as rounds first need them.
type slabPool struct {
	size int
	free chan *slab
	made int // touched only by the leader's round loop
}

// slab is one gather buffer. refs counts the blocks in it not yet stored,
// plus one while the round hands them out; at zero it returns to its pool.
type slab struct {
	buf  []byte
	refs atomic.Int32
	pool *slabPool
}

func newSlabPool(n, size int) *slabPool {
	return &slabPool{size: size, free: make(chan *slab, n)}
}

// get waits for a free slab and holds it once for the round.
func (p *slabPool) get(ctx context.Context) (*slab, error) {
	var sl *slab
	select {
	case sl = <-p.free:
	default:
		if p.made < cap(p.free) {
			p.made++
			sl = &slab{buf: make([]byte, p.size), pool: p}
			break
		}
		select {
		case sl = <-p.free:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	sl.refs.Store(1)
	return sl, nil
}

// wait waits until every slab made is back in the pool: none holds a
// block still being stored or read.
func (p *slabPool) wait(ctx context.Context) error {
	for range p.made {
		select {
		case <-p.free:
			continue // a slab already back wins over a cancelled ctx
		default:
		}
		select {
		case <-p.free:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (sl *slab) hold() { sl.refs.Add(1) }

func (sl *slab) release() {
	if sl.refs.Add(-1) == 0 && sl.pool != nil {
		sl.pool.free <- sl
	}
}
