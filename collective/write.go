package collective

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/ckptio/ckptio/storage/client"
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

// chunk is the bytes a member sends its leader per round.
func (s *Session) chunk() int64 {
	c := s.opts.LeaderMemory / 2 / int64(s.group.Size())
	return max(c, int64(s.opts.BlockSize))
}

// Checkpoint writes every rank's regions as one new version of b.Job and
// returns it. Collective over the world. The version commits only if every
// rank succeeded; otherwise nothing is committed, the previous latest stays
// latest, and every rank returns the same error naming the failed ranks.
func (s *Session) Checkpoint(ctx context.Context, b Backend, regions []Region, meta map[string]string) (Result, error) {
	// 1. Rank 0 opens the transaction; everyone learns whether it did.
	var txnID string
	var beginErr error
	if s.Rank() == 0 {
		txn, err := b.Catalog.Begin(ctx, b.Job)
		txnID, beginErr = txn.ID, err
	}
	status, err := bcastStatus(s.world, txnID, beginErr)
	if err != nil {
		return Result{}, err
	}
	if status.err != nil {
		return Result{}, status.err
	}
	txnID = status.msg
	stopRenew := func() {}
	if s.Rank() == 0 {
		stopRenew = s.renew(b, txnID)
	}

	// 2. Every rank moves its data to its leader; leaders write blocks.
	res, localErr := s.gatherAndWrite(ctx, b, regions)

	// 3. Agree, then rank 0 commits the union of the leaders' manifests.
	if err := agree(s.world, localErr); err != nil {
		stopRenew()
		if s.Rank() == 0 {
			b.Catalog.Abort(context.WithoutCancel(ctx), txnID)
		}
		return Result{}, fmt.Errorf("checkpoint discarded, nothing committed: %w", err)
	}
	version, commitErr := s.commit(ctx, b, txnID, res, regions, meta, stopRenew)
	out, err := bcastStatus(s.world, strconv.FormatInt(version.Version, 10)+" "+
		strconv.FormatInt(version.LogicalBytes, 10)+" "+strconv.FormatInt(version.NewBytes, 10)+" "+
		strconv.FormatInt(version.SentBytes, 10), commitErr)
	if err != nil {
		return Result{}, err
	}
	if out.err != nil {
		return Result{}, out.err
	}
	var r Result
	fmt.Sscan(out.msg, &r.Version, &r.LogicalBytes, &r.NewBytes, &r.SentBytes)
	return r, nil
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

// gatherAndWrite runs the rounds of one group. On the leader it returns the
// blocks written; a failing leader keeps taking part in every round (so no
// rank blocks) and reports its error for the agreement.
func (s *Session) gatherAndWrite(ctx context.Context, b Backend, regions []Region) (client.Result, error) {
	metas, err := gatherBytes(s.group, 0, encodeMeta(s.Rank(), regions))
	if err != nil {
		return client.Result{}, err
	}
	bs := int64(s.opts.BlockSize)
	c := s.chunk()
	var local error

	// The leader decodes its members' regions and works out the rounds.
	var members []regionMeta
	var plans [][][]segment
	var w *client.Writer
	rounds := int64(0)
	if s.IsLeader() {
		for i, raw := range metas {
			m, err := decodeMeta(raw)
			if err != nil {
				return client.Result{}, fmt.Errorf("group member %d: %w", i, err)
			}
			members = append(members, m)
			plans = append(plans, roundsOf(cut(m.sizes, bs), c))
			rounds = max(rounds, int64(len(plans[i])))
		}
		wopts := b.Writer
		wopts.BlockSize = s.opts.BlockSize
		wopts.MaxBuffered = s.opts.LeaderMemory / 2
		targets, err := b.Pool.Targets(ctx)
		if err == nil {
			w, err = client.NewWriter(targets, wopts)
		}
		if err != nil {
			local = fmt.Errorf("leader: %w", err)
		}
	}
	// Members use the leader's figures, so both sides cut the same rounds
	// even if their settings differ.
	agreed := make([]int64, 3)
	if err := s.group.AllreduceInt64(leaderOnly(s.IsLeader(), rounds, c, bs), agreed, OpMax); err != nil {
		return client.Result{}, err
	}
	rounds, c, bs = agreed[0], agreed[1], agreed[2]

	sizes := make([]int64, len(regions))
	for i, r := range regions {
		sizes[i] = int64(len(r.Data))
	}
	mine := roundsOf(cut(sizes, bs), c)
	var sendBuf, recv []byte
	var pool sync.Pool
	pool.New = func() any { b := make([]byte, bs); return &b }
	size := s.group.Size()
	counts, displs := make([]int, size), make([]int, size)
	for r := 0; r < int(rounds); r++ {
		var send []byte
		if r < len(mine) {
			send, sendBuf = assemble(regions, mine[r], sendBuf)
		}
		if s.IsLeader() {
			total := 0
			for m := range plans {
				counts[m], displs[m] = 0, total
				if r < len(plans[m]) {
					counts[m] = int(bytesOf(plans[m][r]))
				}
				total += counts[m]
			}
			if cap(recv) < total {
				recv = make([]byte, total)
			}
			recv = recv[:total]
		}
		if err := s.group.Gatherv(send, recv, counts, displs, 0); err != nil {
			return client.Result{}, fmt.Errorf("gathering round %d: %w", r, err)
		}
		if !s.IsLeader() || local != nil {
			continue
		}
		for m := range plans {
			if r >= len(plans[m]) {
				continue
			}
			off := displs[m]
			for _, seg := range plans[m][r] {
				bp := pool.Get().(*[]byte)
				data := (*bp)[:seg.len]
				copy(data, recv[off:off+int(seg.len)])
				off += int(seg.len)
				ref := manifest.Block{Object: members[m].names[seg.region], Rank: int32(members[m].worldRank), Offset: seg.off}
				if err := w.PutBlock(ctx, ref, data, func() { pool.Put(bp) }); err != nil {
					local = fmt.Errorf("leader: %w", err)
					break
				}
			}
		}
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

// assemble returns the bytes of segs, contiguous. A single segment is
// returned without copying; several are copied into buf (grown as needed).
func assemble(regions []Region, segs []segment, buf []byte) ([]byte, []byte) {
	if len(segs) == 1 {
		sg := segs[0]
		return regions[sg.region].Data[sg.off : sg.off+sg.len], buf
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
	part, err := manifest.Marshal(&manifest.Manifest{Job: b.Job, Kind: "mpi", Blocks: res.Blocks,
		LogicalBytes: res.Logical, NewBytes: res.NewBytes, SentBytes: res.SentBytes})
	if err != nil {
		return Result{}, err
	}
	parts, err := gatherBytes(s.leaders, 0, part)
	if err != nil || s.Rank() != 0 {
		return Result{}, err
	}
	defer stopRenew()
	m := &manifest.Manifest{Job: b.Job, Kind: "mpi", Created: time.Now().UTC(), Meta: map[string]string{}}
	for k, v := range meta {
		m.Meta[k] = v
	}
	for i, p := range parts {
		pm, err := manifest.Unmarshal(p)
		if err != nil {
			b.Catalog.Abort(context.WithoutCancel(ctx), txnID)
			return Result{}, fmt.Errorf("leader %d's blocks: %w", i, err)
		}
		m.Blocks = append(m.Blocks, pm.Blocks...)
		m.LogicalBytes += pm.LogicalBytes
		m.NewBytes += pm.NewBytes
		m.SentBytes += pm.SentBytes
	}
	sort.SliceStable(m.Blocks, func(i, j int) bool { return m.Blocks[i].Rank < m.Blocks[j].Rank })
	m.Meta["ranks"] = strconv.Itoa(s.Size())
	m.Meta["leaders"] = strconv.Itoa(len(parts))
	names := make([]string, len(regions))
	for i, r := range regions {
		names[i] = r.Name
	}
	m.Meta["regions"] = strings.Join(names, ",")
	v, err := b.Catalog.Commit(ctx, txnID, m)
	if err != nil {
		b.Catalog.Abort(context.WithoutCancel(ctx), txnID)
		return Result{}, fmt.Errorf("commit: %w", err)
	}
	return Result{Version: v, LogicalBytes: m.LogicalBytes, NewBytes: m.NewBytes, SentBytes: m.SentBytes}, nil
}

// status is a broadcast outcome: a message or an error.
type status struct {
	msg string
	err error
}

// bcastStatus sends rank 0's msg, or its error, to every rank.
func bcastStatus(c Comm, msg string, err error) (status, error) {
	var b []byte
	if c.Rank() == 0 {
		if err != nil {
			b = append([]byte{1}, err.Error()...)
		} else {
			b = append([]byte{0}, msg...)
		}
	}
	out, berr := bcastBytes(c, 0, b)
	if berr != nil {
		return status{}, berr
	}
	if len(out) == 0 {
		return status{}, errors.New("collective: empty status broadcast")
	}
	if out[0] == 1 {
		if c.Rank() == 0 {
			return status{err: err}, nil
		}
		return status{err: errors.New(string(out[1:]))}, nil
	}
	return status{msg: string(out[1:])}, nil
}

// leaderOnly returns v on the leader and zeros elsewhere, for an
// Allreduce(max) that broadcasts the leader's figures within a group.
func leaderOnly(leader bool, v ...int64) []int64 {
	if !leader {
		return make([]int64, len(v))
	}
	return v
}
