package collective

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/client"
	"github.com/ckptio/ckptio/storage/crypt"
	"github.com/ckptio/ckptio/storage/manifest"
)

// Region is a named piece of a rank's memory: what Protect registers.
// Data aliases the application's memory; it is read during Checkpoint and
// overwritten by Restore.
type Region struct {
	Name string
	Data []byte
}

// Backend is the storage side of a checkpoint: the manager (used by world
// rank 0 only) and the stores (used by leaders only).
type Backend struct {
	Job     string
	Catalog client.Catalog
	Pool    *client.Pool
	Writer  client.WriterOptions // BlockSize and MaxBuffered are set by the session
	Reader  client.ReaderOptions
}

// Result describes a committed checkpoint.
type Result struct {
	Version      int64
	LogicalBytes int64
	NewBytes     int64
	SentBytes    int64
}

// Checkpoint writes every rank's regions as one new version of b.Job and
// returns it. Collective over the world. The version commits only if every
// rank succeeded; otherwise nothing is committed, the previous latest stays
// latest, and every rank returns the same error naming the failed ranks.
func (s *Session) Checkpoint(ctx context.Context, b Backend, regions []Region, meta map[string]string) (Result, error) {
	// 1. Rank 0 opens the transaction; everyone learns whether it did.
	var last *manifest.Manifest // the previous version, on rank 0
	id, err := Share(s.world, func() ([]byte, error) {
		txn, err := b.Catalog.Begin(ctx, b.Job)
		if err != nil {
			return nil, err
		}
		if last, err = previous(ctx, b, meta); err != nil {
			b.Catalog.Abort(context.WithoutCancel(ctx), txn.ID)
			return nil, err
		}
		return []byte(txn.ID), nil
	})
	if err != nil {
		return Result{}, err
	}
	txnID := string(id)
	stopRenew := func() {}
	if s.Rank() == 0 {
		stopRenew = s.renew(b, txnID)
	}

	// 2. Leaders learn the previous version; every rank moves the data
	// that changed to its leader, which writes the blocks.
	prev, err := s.shareManifest(last)
	if err != nil {
		return Result{}, err
	}
	last = nil
	s.gc.check() // the previous manifest's decoding is garbage now
	res, localErr := s.gatherAndWrite(ctx, b, regions, prev)

	// 3. Agree, then rank 0 commits the union of the leaders' manifests.
	if err := agree(s.world, localErr); err != nil {
		stopRenew()
		if s.Rank() == 0 {
			b.Catalog.Abort(context.WithoutCancel(ctx), txnID)
		}
		return Result{}, fmt.Errorf("checkpoint discarded, nothing committed: %w", err)
	}
	s.gc.check()
	version, commitErr := s.commit(ctx, b, txnID, res, regions, meta, stopRenew)
	out, err := Share(s.world, func() ([]byte, error) {
		if commitErr != nil {
			return nil, commitErr
		}
		return json.Marshal(version)
	})
	if err != nil {
		return Result{}, err
	}
	var r Result
	if err := json.Unmarshal(out, &r); err != nil {
		return Result{}, fmt.Errorf("collective: commit outcome: %w", err)
	}
	s.gc.check()
	return r, nil
}

// previous returns the manifest of the job's latest version, or nil when
// the job has none, or when its blocks cannot be reused in a version with
// meta: encrypted with another key, or with a key when meta has none or
// none when it has one.
func previous(ctx context.Context, b Backend, meta map[string]string) (*manifest.Manifest, error) {
	m, err := b.Catalog.Manifest(ctx, b.Job, 0)
	if errors.Is(err, catalog.ErrNoVersions) || errors.Is(err, catalog.ErrUnknownJob) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the previous version of %s: %w", b.Job, err)
	}
	if m.Kind != manifest.KindMPI || !crypt.SameKey(m.Meta, meta) {
		return nil, nil
	}
	return m, nil
}

// shareManifest gives the leaders rank 0's previous manifest (nil: none)
// as an index of its blocks. Rank 0 indexes its own copy; the others
// receive it encoded, when there are others.
func (s *Session) shareManifest(last *manifest.Manifest) (client.Index, error) {
	if s.leaders == nil {
		return nil, nil
	}
	var raw []byte
	if s.leaders.Rank() == 0 && last != nil && s.leaders.Size() > 1 {
		var err error
		if raw, err = manifest.Marshal(last); err != nil {
			return nil, fmt.Errorf("collective: previous manifest: %w", err)
		}
	}
	raw, err := bcastBytes(s.leaders, 0, raw)
	if err != nil {
		return nil, err
	}
	if s.leaders.Rank() == 0 {
		if last == nil {
			return client.Index{}, nil
		}
		return client.NewIndex(last), nil
	}
	if len(raw) == 0 {
		return client.Index{}, nil
	}
	m, err := manifest.Unmarshal(raw)
	if err != nil {
		return nil, fmt.Errorf("collective: previous manifest: %w", err)
	}
	return client.NewIndex(m), nil
}

// renew keeps rank 0's transaction alive until the returned func is called.
func (s *Session) renew(b Backend, txnID string) func() {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(client.RenewEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := b.Catalog.Renew(ctx, txnID); err != nil && ctx.Err() == nil {
					s.log.Warn("renewing the checkpoint's lease failed", zap.Error(err))
				}
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { cancel(); wg.Wait() }) }
}

// gatherAndWrite runs the rounds of one group. Every rank cuts and hashes
// its own regions, so hashing runs on all ranks in parallel and a block the
// previous version already stored never crosses MPI: the leader compares
// the hashes with prev, confirms the reusable blocks on their stores, and
// gathers only the rest. A failing leader keeps taking part in every round
// (so no rank blocks) and reports its error for the agreement.
func (s *Session) gatherAndWrite(ctx context.Context, b Backend, regions []Region, prev client.Index) (client.Result, error) {
	mine := s.cutRegions(regions)
	metas, err := gatherBytes(s.group, 0, encodeMeta(s.Rank(), regions, mine))
	if err != nil {
		return client.Result{}, err
	}
	var local error
	var members []regionMeta
	var w *client.Writer
	needed := make([][]byte, s.group.Size())
	if s.IsLeader() {
		segs := 0
		for i, raw := range metas {
			m, err := decodeMeta(raw)
			if err != nil {
				return client.Result{}, fmt.Errorf("group member %d: %w", i, err)
			}
			members = append(members, m)
			segs += len(m.segs)
		}
		w, local = s.newWriter(ctx, b, prev, segs)
		for i, m := range members {
			needed[i] = make([]byte, len(m.segs))
			for j := range needed[i] {
				needed[i][j] = 1
			}
		}
		if local == nil {
			local = s.reuse(ctx, w, members, prev, needed)
		}
	}
	s.gc.check()
	// Each rank learns which of its segments the leader needs.
	flags, err := scatterBytes(s.group, 0, needed)
	if err != nil {
		return client.Result{}, err
	}
	if len(flags) != len(mine) {
		return client.Result{}, fmt.Errorf("collective: leader asked for %d segments, this rank cut %d", len(flags), len(mine))
	}
	c := s.chunk()
	agreed := make([]int64, 1)
	if err := s.group.AllreduceInt64(leaderOnly(s.IsLeader(), c), agreed, OpMax); err != nil {
		return client.Result{}, err
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
		return client.Result{}, err
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
			if sl, err = slabs.get(ctx); err != nil && local == nil {
				local = fmt.Errorf("leader: %w", err)
			}
			if sl == nil {
				sl = &slab{buf: make([]byte, total)} // only to take part in the round
			}
			recv = sl.buf[:total]
		}
		if err := s.group.Gatherv(send, recv, counts, displs, 0); err != nil {
			return client.Result{}, fmt.Errorf("gathering round %d: %w", r, err)
		}
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
				ref := manifest.Block{Object: members[m].names[seg.region], Rank: int32(members[m].worldRank),
					Offset: seg.off, Hash: seg.hash}
				sl.hold()
				if err := w.PutBlock(ctx, ref, data, false, sl.release); err != nil {
					local = fmt.Errorf("leader: %w", err)
					break
				}
			}
		}
		sl.release()
		s.gc.check()
	}
	if !s.IsLeader() || w == nil {
		return client.Result{}, local
	}
	res, err := w.Close(ctx)
	if local == nil && err != nil {
		local = fmt.Errorf("leader: %w", err)
	}
	return res, local
}

// cutRegions cuts this rank's regions into segments with the session's
// chunker and hashes each one. An empty region yields one empty segment so
// it is recorded.
func (s *Session) cutRegions(regions []Region) []segment {
	var out []segment
	var lens []int
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
		var off int64
		for _, n := range lens {
			seg := segment{region: i, off: off, len: int64(n)}
			seg.hash = storage.Sum(r.Data[off : off+int64(n)])
			out = append(out, seg)
			off += int64(n)
		}
	}
	return out
}

// newWriter opens the leader's striping writer.
func (s *Session) newWriter(ctx context.Context, b Backend, prev client.Index, blocks int) (*client.Writer, error) {
	wopts := b.Writer
	wopts.ExpectBlocks = blocks
	wopts.BlockSize = s.opts.BlockSize
	if s.opts.Chunker != nil {
		wopts.BlockSize = max(wopts.BlockSize, s.opts.Chunker.Max())
	}
	// The slabs bound the leader's memory; this only has to let all of
	// them be in flight.
	wopts.MaxBuffered = leaderSlabCount * s.chunk() * int64(s.group.Size())
	wopts.Reuse = prev
	targets, err := b.Pool.Targets(ctx)
	if err != nil {
		return nil, fmt.Errorf("leader: %w", err)
	}
	w, err := client.NewWriter(targets, wopts)
	if err != nil {
		return nil, fmt.Errorf("leader: %w", err)
	}
	return w, nil
}

// reuse references every segment of the group whose block the previous
// version stored and a store confirms, clearing its needed flag.
func (s *Session) reuse(ctx context.Context, w *client.Writer, members []regionMeta, prev client.Index, needed [][]byte) error {
	if len(prev) == 0 {
		return nil
	}
	type at struct{ m, j int }
	n := 0
	for _, meta := range members {
		n += len(meta.segs)
	}
	cands := make([]manifest.Block, 0, n)
	where := make([]at, 0, n)
	for m, meta := range members {
		for j, seg := range meta.segs {
			if p, ok := prev[seg.hash]; ok && seg.len > 0 && p.Length == seg.len {
				cands = append(cands, p)
				where = append(where, at{m, j})
			}
		}
	}
	if len(cands) == 0 {
		return nil
	}
	held, err := w.Confirm(ctx, cands)
	if err != nil {
		return fmt.Errorf("leader: confirming unchanged blocks: %w", err)
	}
	for i, ok := range held {
		if !ok {
			continue
		}
		m, j := where[i].m, where[i].j
		seg := members[m].segs[j]
		w.Reference(cands[i], members[m].names[seg.region], int32(members[m].worldRank), seg.off)
		needed[m][j] = 0
	}
	return nil
}

// pick returns the segments whose flag is set.
func pick(segs []segment, flags []byte) []segment {
	var out []segment
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

// commit sends the leaders' blocks to rank 0, which commits them as one
// manifest. It returns the result on rank 0 only.
func (s *Session) commit(ctx context.Context, b Backend, txnID string, res client.Result,
	regions []Region, meta map[string]string, stopRenew func()) (Result, error) {
	if s.leaders == nil {
		return Result{}, nil
	}
	// Rank 0's own blocks stay as they are; the other leaders send theirs
	// as Arrow. Encoding and decoding a block list costs allocations in
	// proportion to the checkpoint's blocks, on the leader whose memory
	// is bounded.
	own := &manifest.Manifest{Job: b.Job, Kind: manifest.KindMPI, Blocks: res.Blocks,
		LogicalBytes: res.Logical, NewBytes: res.NewBytes, SentBytes: res.SentBytes}
	var part []byte
	if s.Rank() != 0 {
		var err error
		if part, err = manifest.Marshal(own); err != nil {
			return Result{}, err
		}
	}
	parts, err := gatherBytes(s.leaders, 0, part)
	if err != nil || s.Rank() != 0 {
		return Result{}, err
	}
	defer stopRenew()
	m := &manifest.Manifest{Job: b.Job, Kind: manifest.KindMPI, Created: time.Now().UTC(), Meta: map[string]string{}}
	for k, v := range meta {
		m.Meta[k] = v
	}
	partials := []*manifest.Manifest{own}
	n := len(own.Blocks)
	for i, p := range parts[1:] {
		pm, err := manifest.Unmarshal(p)
		if err != nil {
			b.Catalog.Abort(context.WithoutCancel(ctx), txnID)
			return Result{}, fmt.Errorf("leader %d's blocks: %w", i+1, err)
		}
		partials = append(partials, pm)
		n += len(pm.Blocks)
	}
	m.Blocks = make([]manifest.Block, 0, n)
	for _, pm := range partials {
		m.Blocks = append(m.Blocks, pm.Blocks...)
		m.LogicalBytes += pm.LogicalBytes
		m.NewBytes += pm.NewBytes
		m.SentBytes += pm.SentBytes
	}
	sort.SliceStable(m.Blocks, func(i, j int) bool { return m.Blocks[i].Rank < m.Blocks[j].Rank })
	m.Meta[catalog.MetaRanks] = strconv.Itoa(s.Size())
	m.Meta[catalog.MetaReplicas] = strconv.Itoa(max(1, res.Replicas))
	m.Meta[catalog.MetaLeaders] = strconv.Itoa(len(parts))
	names := make([]string, len(regions))
	for i, r := range regions {
		names[i] = r.Name
	}
	m.Meta[catalog.MetaRegions] = strings.Join(names, ",")
	v, err := b.Catalog.Commit(ctx, txnID, m)
	if err != nil {
		b.Catalog.Abort(context.WithoutCancel(ctx), txnID)
		return Result{}, fmt.Errorf("commit: %w", err)
	}
	return Result{Version: v, LogicalBytes: m.LogicalBytes, NewBytes: m.NewBytes, SentBytes: m.SentBytes}, nil
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

// slabPool holds a leader's slabs across checkpoints, allocating them as
// rounds first need them.
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

func (sl *slab) hold() { sl.refs.Add(1) }

func (sl *slab) release() {
	if sl.refs.Add(-1) == 0 && sl.pool != nil {
		sl.pool.free <- sl
	}
}
