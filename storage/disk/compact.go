package disk

import (
	"errors"
	"fmt"
	"slices"

	"go.uber.org/zap"

	"github.com/ckptio/ckptio/storage"
)

// compactChunk bounds the bytes a compaction reads before it waits for the
// committer to write them.
const compactChunk = 8 << 20

// compactor runs compactions until quit closes. It wakes when a batch freed
// space or a pack was sealed (compactq), or compactPass asks (passq), and
// compacts the emptiest sealed pack while one is more than half dead.
func (p *pack) compactor() {
	defer p.wg.Done()
	for {
		var done chan struct{}
		select {
		case <-p.compactq:
		case done = <-p.passq:
		case <-p.quit:
			return
		}
		p.compactAll()
		if done != nil {
			close(done)
		}
	}
}

// compactAll compacts sealed packs, the emptiest first, until none is more
// than half dead, a compaction fails, compaction is paused, or quit closes.
func (p *pack) compactAll() {
	for {
		select {
		case <-p.quit:
			return
		default:
		}
		if p.paused.Load() {
			return // resumed by PauseCompaction(false), which wakes us
		}
		pf := p.pickCompaction()
		if pf == nil {
			return
		}
		if err := p.compact(pf); err != nil {
			if !errors.Is(err, storage.ErrClosed) {
				p.log.Warn("compaction failed", zap.String("pack", pf.path), zap.Error(err))
			}
			return
		}
	}
}

// compactPass has the compactor run compactAll now and returns once it is
// done (or the store is closing): the packs more than half dead when it
// was called are then compacted, unless a compaction failed. It is for
// tests, which need compaction to have happened rather than wait for it to
// by the clock.
func (p *pack) compactPass() {
	done := make(chan struct{})
	select {
	case p.passq <- done:
	case <-p.quit:
		return
	}
	select {
	case <-done:
	case <-p.quit:
	}
}

// pickCompaction returns the sealed pack with the smallest live fraction,
// if less than half of it (or nothing) is live.
func (p *pack) pickCompaction() *packFile {
	p.mu.Lock()
	defer p.mu.Unlock()
	var best *packFile
	for _, pf := range p.mu.packs {
		if pf == p.mu.active || pf.dead || (pf.size > 0 && pf.live*2 >= pf.size) {
			continue
		}
		if best == nil || float64(pf.live)/float64(max(pf.size, 1)) < float64(best.live)/float64(max(best.size, 1)) {
			best = pf
		}
	}
	return best
}

// compact moves pf's live records and its still-needed tombstones to the
// active pack, then removes pf:
//
//  1. copy each live put record through the committer (written and
//     fdatasynced in the active pack; the index then points at the copy);
//  2. copy each tombstone whose target pack still exists, the same way;
//  3. remove pf from the index's packs, unlink its file, fsync DIR/packs.
//
// A crash between 2 and 3 leaves both copies; Open then keeps the newer one.
func (p *pack) compact(pf *packFile) error {
	type rec struct {
		h storage.Hash
		l loc
	}
	p.mu.Lock()
	var live []rec
	for h, l := range p.mu.index {
		if l.pack == pf.seq {
			live = append(live, rec{h, l})
		}
	}
	tombs := slices.Clone(pf.tombs)
	size, liveBytes := pf.size, pf.live
	pf.refs++
	p.mu.Unlock()
	defer p.release(pf)
	slices.SortFunc(live, func(a, b rec) int { return int(a.l.off - b.l.off) })

	var reqs []*packReq
	flush := func() error {
		for _, r := range reqs {
			if err := p.c.wait(r.done); err != nil {
				return err
			}
		}
		reqs = reqs[:0]
		return nil
	}
	submit := func(r *packReq) error {
		r.done = make(chan error, 1)
		if err := p.c.submit(r); err != nil {
			return err
		}
		reqs = append(reqs, r)
		return nil
	}
	var pending int64
	for _, r := range live {
		buf := make([]byte, recordSize(r.l.n))
		if _, err := pf.f.ReadAt(buf, r.l.off); err != nil {
			return fmt.Errorf("read %s at %d: %w", pf.path, r.l.off, err)
		}
		// Copy the block as it is; Get re-verifies it wherever it lies.
		if err := submit(&packReq{kind: reqMove, h: r.h, data: buf[recHeaderSize:], src: r.l}); err != nil {
			return err
		}
		if pending += int64(len(buf)); pending >= compactChunk {
			if err := flush(); err != nil {
				return err
			}
			pending = 0
		}
	}
	for _, t := range tombs {
		if err := submit(&packReq{kind: reqTomb, t: t}); err != nil {
			return err
		}
	}
	if err := flush(); err != nil {
		return err
	}

	p.mu.Lock()
	for _, l := range p.mu.index {
		if l.pack == pf.seq {
			p.mu.Unlock()
			return fmt.Errorf("pack %s still holds live blocks after compaction", pf.path)
		}
	}
	delete(p.mu.packs, pf.seq)
	pf.dead = true
	p.mu.Unlock()
	if err := p.fsys.Remove(pf.path); err != nil {
		return err
	}
	if err := p.fsys.SyncDir(p.dir); err != nil {
		return err
	}
	p.log.Info("compacted pack", zap.String("pack", pf.path), zap.Int64("size", size),
		zap.Int64("live", liveBytes), zap.Int("blocks_moved", len(live)), zap.Int("tombstones", len(tombs)))
	return nil
}
