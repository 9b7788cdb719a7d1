package collective

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ckptio/ckptio/storage/version"
	"golang.org/x/sync/errgroup"
)

// Restore refills every rank's regions from version (0 = the latest) of
// j and returns the version restored. Collective over the world.
//
// The checkpoint must have been written by the same number of ranks, and
// every region a rank protects must exist in it for that rank with the same
// size; otherwise every rank returns the same error before any region is
// touched. Regions in the checkpoint that are not protected now are
// ignored. If reading fails midway, regions may be partly overwritten and
// every rank returns the error.
func (s *Session) Restore(ctx context.Context, j *version.Job, v int64, regions []Region) (int64, error) {
	return s.RestoreWith(ctx, j, v, regions, Extra{})
}

// RestoreWith is Restore with state of the rank's own besides its regions
// (Extra.Split, Check, Apply): checked with the regions before anything
// is touched, and restored beside them.
func (s *Session) RestoreWith(ctx context.Context, j *version.Job, v int64, regions []Region, x Extra) (int64, error) {
	st := &s.lastRestore
	*st = Stages{}
	// 1. Rank 0 opens the version and checks the rank count.
	var snap *version.Snapshot
	var shares [][]byte
	if _, err := Share(s.world, func() ([]byte, error) {
		var err error
		if snap, err = j.Open(ctx, v); err != nil {
			return nil, err
		}
		if err := snap.CheckMPI(s.Size()); err != nil {
			return nil, err
		}
		if x.Split != nil {
			if shares, err = x.Split(snap); err != nil {
				return nil, err
			}
		}
		if shares == nil {
			shares = make([][]byte, s.Size())
		}
		if len(shares) != s.Size() {
			return nil, fmt.Errorf("collective: %d shares of extra state for %d ranks", len(shares), s.Size())
		}
		return nil, nil
	}); err != nil {
		return 0, err
	}
	// Each rank gets its share of the extra state and checks it.
	share, err := scatterBytes(s.world, 0, shares)
	if err != nil {
		return 0, err
	}
	shares = nil
	var local error
	if x.Check != nil {
		local = x.Check(ctx, share)
	}
	// 2. Leaders get the manifest from rank 0, as the manager sent it,
	// when there are other leaders.
	if s.leaders != nil && s.leaders.Size() > 1 {
		var raw []byte
		if s.Rank() == 0 {
			raw = snap.Bytes()
		}
		raw, err := bcastBytes(s.leaders, 0, raw)
		if err != nil {
			return 0, err
		}
		if s.Rank() != 0 {
			if snap, err = version.ParseSnapshot(raw); err != nil {
				local = withLocal(local, fmt.Errorf("leader: the version's manifest: %w", err))
			}
		}
	}
	snap.DropBytes() // shared: only the decoded blocks are needed now
	// 3. Leaders match their members' regions against the manifest.
	metas, err := gatherBytes(s.group, 0, encodeMeta(s.Rank(), regions, nil))
	if err != nil {
		return 0, err
	}
	var plans [][][]version.Extent
	c := s.chunk()
	if s.IsLeader() && snap != nil {
		var perr error
		plans, perr = planRestore(snap, metas, c)
		local = withLocal(local, perr)
	}
	if err := agree(s.world, local); err != nil {
		return 0, fmt.Errorf("restore of %s refused, nothing touched: %w", j.Name, err)
	}
	s.gc.check()
	// The extra state is restored beside the region rounds.
	extra := startExtra(ctx, func(ctx context.Context) (struct{}, error) {
		if x.Apply == nil {
			return struct{}{}, nil
		}
		return struct{}{}, x.Apply(ctx)
	})
	// 4. Each member learns its byte count per round, then rounds run.
	var parts [][]byte
	rounds := int64(0)
	if s.IsLeader() {
		for _, p := range plans {
			counts := make([]int64, len(p))
			for r, blocks := range p {
				for _, bl := range blocks {
					counts[r] += bl.Length
				}
			}
			parts = append(parts, encodeInt64s(counts))
			rounds = max(rounds, int64(len(p)))
		}
	}
	raw, err := scatterBytes(s.group, 0, parts)
	if err != nil {
		return 0, err
	}
	mine := decodeInt64s(raw)
	agreed := make([]int64, 1)
	if err := s.group.AllreduceInt64(leaderOnly(s.IsLeader(), rounds), agreed, OpMax); err != nil {
		return 0, err
	}
	rounds = agreed[0]

	reader := j.NewReader()
	cur := &cursor{regions: regions}
	size := s.group.Size()
	// The leader fetches rounds into its slabs (the write's gather
	// buffers, LeaderMemory/4 each): while one round is scattered, up to
	// three more are being read from the stores.
	layout := func(r int) ([]int, []int, int) {
		c, d := make([]int, size), make([]int, size)
		total := 0
		for i := range plans {
			d[i] = total
			if r < len(plans[i]) {
				for _, bl := range plans[i][r] {
					c[i] += int(bl.Length)
				}
			}
			total += c[i]
		}
		return c, d, total
	}
	slabs := s.leaderSlabs()
	var queue []chan fetched // rounds being fetched, in order
	stop := false            // after an error: fetch no more
	launch := func(r int) {
		ch := make(chan fetched, 1)
		queue = append(queue, ch)
		if !s.IsLeader() || stop {
			ch <- fetched{}
			return
		}
		c, d, total := layout(r)
		sl, err := slabs.get(ctx)
		if err != nil {
			ch <- fetched{err: err}
			return
		}
		buf := sl.buf
		if len(buf) < total {
			// Blocks larger than this session's rounds (a version written
			// with bigger blocks): one round of its own size.
			buf = make([]byte, total)
		}
		buf = buf[:total]
		go func() {
			f := fetched{sl: sl, send: buf, counts: c, displs: d}
			f.err = s.fetchRound(ctx, reader, snap, plans, r, buf, d)
			ch <- f
		}()
	}
	launched := 0
	for r := 0; r < int(rounds); r++ {
		for launched < int(rounds) && launched < r+leaderSlabCount {
			launch(launched)
			launched++
		}
		t := time.Now()
		f := <-queue[0]
		queue = queue[1:]
		since(&st.Stores, t)
		if local == nil && f.err != nil {
			local = f.err
		}
		stop = local != nil
		if s.IsLeader() && (f.counts == nil || f.err != nil) {
			// Fetching stopped after an error: send zeros of the right
			// sizes, so every member's Scatterv still matches.
			var total int
			f.counts, f.displs, total = layout(r)
			f.send = make([]byte, total)
		}
		var recv []byte
		direct := false // recv is the region itself
		if r < len(mine) {
			if recv = cur.next(int(mine[r])); recv != nil {
				direct = true
			} else {
				if cap(s.recvBuf) < int(mine[r]) {
					s.recvBuf = make([]byte, mine[r])
				}
				recv = s.recvBuf[:mine[r]]
			}
		}
		t = time.Now()
		err := s.group.Scatterv(f.send, f.counts, f.displs, recv, 0)
		since(&st.MPI, t)
		if f.sl != nil {
			f.sl.release()
		}
		if err != nil {
			drain(queue)
			extra()
			return 0, fmt.Errorf("scattering round %d: %w", r, err)
		}
		if direct {
			cur.advance(len(recv))
		} else {
			cur.fill(recv)
		}
		s.gc.check()
	}
	drain(queue)
	s.slabs = nil // every round is in; the next operation makes its own
	_, xerr := extra()
	local = withLocal(local, xerr)
	if s.IsLeader() {
		j.ReportCorrupt(ctx, reader)
	}
	if err := agree(s.world, local); err != nil {
		return 0, fmt.Errorf("restore of %s failed, regions (and protected files) may be partly restored; restoring again completes it: %w", j.Name, err)
	}
	v, err = m0Version(s, snap)
	s.gc.check()
	return v, err
}

// fetched is one round of a restore as the leader read it.
type fetched struct {
	sl             *slab // nil when not read into a slab
	send           []byte
	counts, displs []int
	err            error
}

// drain waits for the rounds still being fetched and frees their slabs.
func drain(queue []chan fetched) {
	for _, ch := range queue {
		if f := <-ch; f.sl != nil {
			f.sl.release()
		}
	}
}

// m0Version broadcasts the restored version number from rank 0.
func m0Version(s *Session, snap *version.Snapshot) (int64, error) {
	v := []int64{0}
	if s.Rank() == 0 {
		v[0] = snap.Version()
	}
	out := []int64{0}
	if err := s.world.AllreduceInt64(v, out, OpMax); err != nil {
		return 0, err
	}
	return out[0], nil
}

// restoreWindow is the bytes of blocks a leader reads at once per round
// (at least version.ReadParallel blocks): 256 reads of 64 KiB blocks.
// Measured (docs/benchmarks.md, "Where the time goes"): a 4 x 64 MiB
// restore took 0.94-1.23 s with 256 reads in flight against 1.19-1.61 s
// with 16, and the stores used less CPU. Compressed blocks take a
// pooled buffer each while in flight, which the bound in bytes caps.
const restoreWindow = 16 << 20

// fetchRound reads the blocks of round r for every member in parallel into
// send at the members' displacements, up to restoreWindow bytes at once.
func (s *Session) fetchRound(ctx context.Context, reader *version.Reader, snap *version.Snapshot, plans [][][]version.Extent, r int, send []byte, displs []int) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(readLimit(plans, r))
	for i, p := range plans {
		if r >= len(p) {
			continue
		}
		off := displs[i]
		for _, e := range p[r] {
			dst := send[off : off+int(e.Length)]
			off += int(e.Length)
			g.Go(func() error {
				if err := reader.ReadInto(gctx, snap, e, dst); err != nil {
					return fmt.Errorf("leader: %w", err)
				}
				return nil
			})
		}
	}
	return g.Wait()
}

// readLimit is how many blocks of round r a leader reads at once: as many
// of its largest block as fit in restoreWindow, at least
// version.ReadParallel.
func readLimit(plans [][][]version.Extent, r int) int {
	var largest int64
	for _, p := range plans {
		if r < len(p) {
			for _, e := range p[r] {
				largest = max(largest, e.Length)
			}
		}
	}
	if largest <= 0 {
		return version.ReadParallel
	}
	return max(version.ReadParallel, int(restoreWindow/largest))
}

// planRestore matches each member's regions with the version and splits
// the blocks to send into rounds of at most c bytes per member.
func planRestore(snap *version.Snapshot, metas [][]byte, c int64) ([][][]version.Extent, error) {
	var plans [][][]version.Extent
	var problems []string
	for _, raw := range metas {
		meta, err := decodeMeta(raw)
		if err != nil {
			return nil, err
		}
		var blocks []version.Extent
		for i, name := range meta.names {
			ext, ok := snap.Extents(int32(meta.worldRank), name)
			if !ok {
				problems = append(problems, fmt.Sprintf("rank %d region %q is not in version %d (it holds: %s)",
					meta.worldRank, name, snap.Version(), snap.Regions()))
				continue
			}
			var size int64
			for _, e := range ext {
				size += e.Length
			}
			if size != meta.sizes[i] {
				problems = append(problems, fmt.Sprintf("rank %d region %q: version %d holds %d bytes, the protected slice has %d",
					meta.worldRank, name, snap.Version(), size, meta.sizes[i]))
				continue
			}
			for _, e := range ext {
				if e.Length > 0 {
					blocks = append(blocks, e)
				}
			}
		}
		plans = append(plans, roundsOfBlocks(blocks, c))
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return plans, nil
}

func roundsOfBlocks(blocks []version.Extent, c int64) [][]version.Extent {
	var out [][]version.Extent
	for len(blocks) > 0 {
		n, sum := 0, int64(0)
		for n < len(blocks) && (n == 0 || sum+blocks[n].Length <= c) {
			sum += blocks[n].Length
			n++
		}
		out = append(out, blocks[:n])
		blocks = blocks[n:]
	}
	return out
}

// cursor writes a member's restore stream into its regions in order.
type cursor struct {
	regions []Region
	region  int
	off     int
}

// skipFull moves past the regions written to their end (and empty ones).
func (c *cursor) skipFull() {
	for c.region < len(c.regions) && c.off == len(c.regions[c.region].Data) {
		c.region++
		c.off = 0
	}
}

// next returns the next n bytes of the regions when they lie in one
// region, so that a round can be received in place (then advance past
// them); nil otherwise.
func (c *cursor) next(n int) []byte {
	c.skipFull()
	if c.region >= len(c.regions) || n == 0 || c.off+n > len(c.regions[c.region].Data) {
		return nil
	}
	return c.regions[c.region].Data[c.off : c.off+n]
}

// advance moves past n bytes received in place (next).
func (c *cursor) advance(n int) { c.off += n }

// fill copies b into the regions from the cursor on.
func (c *cursor) fill(b []byte) {
	for c.skipFull(); len(b) > 0 && c.region < len(c.regions); c.skipFull() {
		n := copy(c.regions[c.region].Data[c.off:], b)
		b = b[n:]
		c.advance(n)
	}
}
