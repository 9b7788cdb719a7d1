package manager

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/catalog"
)

// Repair of erasure-coded blocks. A coded block (rs:K+M) is repaired
// shard by shard: every shard no alive, not draining store holds (and
// none that did not answer might hold) is rebuilt from K shards read from
// their stores, each checked against its key, and put on a store that
// holds no shard of the block, picked as a writer would (storage/
// placement). The joined bytes are checked against the block's key before
// anything is put, so a wrong shard is never spread. With fewer than K
// shards the block is lost; with fewer than K answering for sure it is
// left for a later pass.

// placeShards are the shards of cs that need a new store: none held by
// an alive store that is not draining, and none possibly held.
func (cs *codedState) placeShards() []int {
	var out []int
	for i := range cs.shards {
		if len(cs.held[i]) == 0 && len(cs.unsure[i]) == 0 {
			out = append(out, i)
		}
	}
	return out
}

// stores lists cs's Stores after repair, in shard order: the new store of
// a rebuilt shard, else the first holder (alive, then draining, then
// unsure), else "" (no live store holds it).
func (cs *codedState) stores(added map[int]string) []string {
	out := make([]string, len(cs.shards))
	for i := range cs.shards {
		switch {
		case added[i] != "":
			out[i] = added[i]
		case len(cs.held[i]) > 0:
			out[i] = cs.held[i][0]
		case len(cs.draining[i]) > 0:
			out[i] = cs.draining[i][0]
		case len(cs.unsure[i]) > 0:
			out[i] = cs.unsure[i][0]
		}
	}
	return out
}

// named is every store any version lists, or found holding, a shard of
// cs on: no new shard goes there.
func (cs *codedState) named() []string {
	var out []string
	for i := range cs.shards {
		out = append(out, cs.listed[i]...)
	}
	return out
}

// repairCoded repairs the erasure-coded blocks of one surveyed job and
// returns the new Stores lists, by index in sv.coded, of the blocks whose
// manifest rows change.
func (m *Manager) repairCoded(ctx context.Context, conns *storeConns, pl *destPicker, sv *survey, rep *catalog.RepairReport) map[int32][]string {
	finals := make(map[int32][]string)
	if len(sv.coded) == 0 {
		return finals
	}
	var planned int64
	for c := range sv.coded {
		cs := &sv.coded[c]
		planned += int64(len(cs.placeShards()) * cs.sc.ShardSize(int(cs.size)))
	}
	m.repairProgressed(func(p *catalog.RepairProgress) {
		p.Blocks += int64(len(sv.coded))
		p.CopyBytes += planned
	})
	maxBytes := m.opts.RepairMaxBytes
	sem := semaphore.NewWeighted(maxBytes)
	var g errgroup.Group
	g.SetLimit(m.opts.RepairParallel)
	var mu sync.Mutex
	var lost []int32
	for c := range sv.coded {
		cs := &sv.coded[c]
		place := cs.placeShards()
		if cs.stale && cs.maybe() >= cs.sc.Data {
			rep.Stale++
		}
		switch {
		case cs.maybe() < cs.sc.Data:
			rep.Lost++
			lost = append(lost, int32(c))
			continue
		case len(place) == 0 && !cs.stale && !cs.split:
			continue
		case len(place) > 0:
			rep.Degraded++
		}
		if len(place) == 0 || cs.live() < cs.sc.Data {
			// Nothing to rebuild, or too few shards answered for sure
			// to rebuild now: correct the lists only.
			if len(place) > 0 {
				rep.Unrepaired++
			}
			finals[int32(c)] = cs.stores(nil)
			continue
		}
		w := min(max(cs.size, 1), maxBytes)
		if err := sem.Acquire(ctx, w); err != nil {
			break
		}
		g.Go(func() error {
			defer sem.Release(w)
			added, deferred := m.rebuildShards(ctx, conns, pl, sv.ckeys[c], cs, place)
			shard := int64(cs.sc.ShardSize(int(cs.size)))
			m.repairProgressed(func(p *catalog.RepairProgress) { p.CopiedBytes += int64(len(place)) * shard })
			mu.Lock()
			defer mu.Unlock()
			rep.Copies += int64(len(added))
			rep.CopiedBytes += int64(len(added)) * shard
			if len(added) < len(place) {
				rep.Unrepaired++
				if deferred {
					rep.Deferred++
				}
			}
			finals[int32(c)] = cs.stores(added)
			return nil
		})
	}
	g.Wait()
	m.listLostCoded(sv, lost, rep)
	return finals
}

// rebuildShards reads K good shards of cs, rebuilds the shards in place,
// checks the block, and puts each rebuilt shard on a new store. It
// returns the stores that took one, by shard, and whether some were not
// placed because busy stores were spared.
func (m *Manager) rebuildShards(ctx context.Context, conns *storeConns, pl *destPicker, key storage.Hash, cs *codedState, place []int) (added map[int]string, deferred bool) {
	sc := cs.sc
	size := sc.ShardSize(int(cs.size))
	shards := make([][]byte, sc.Shards())
	have, spared := 0, 0
	for i := 0; i < len(shards) && have < sc.Data; i++ {
		for _, id := range slices.Concat(cs.held[i], cs.draining[i]) {
			if conns.alive[id].Busy {
				spared++
				continue
			}
			s, err := conns.get(ctx, id)
			if err != nil {
				continue
			}
			d, err := s.Get(ctx, cs.shards[i])
			if err == nil && (len(d) != size || storage.Sum(d) != cs.shards[i]) {
				err = fmt.Errorf("%w (shard %d: %d bytes returned, %d expected)", storage.ErrHashMismatch, i, len(d), size)
			}
			if err != nil {
				if ctx.Err() != nil {
					return nil, false
				}
				conns.report(id, func(*catalog.RepairStoreReport) {}, fmt.Errorf("get shard %s: %w", cs.shards[i].Short(), err))
				continue
			}
			shards[i] = d
			have++
			break
		}
	}
	if have < sc.Data {
		return nil, spared > 0
	}
	if err := sc.Rebuild(shards); err != nil {
		m.log.Warn("repair: rebuilding shards failed", zap.String("block", key.Short()), zap.Error(err))
		return nil, false
	}
	joined, err := sc.Join(nil, shards, int(cs.size))
	if err == nil && storage.Sum(joined) != key {
		err = fmt.Errorf("%w: the joined bytes are not block %s", storage.ErrHashMismatch, key.Short())
	}
	for _, i := range place {
		if err == nil && storage.Sum(shards[i]) != cs.shards[i] {
			err = fmt.Errorf("%w: rebuilt shard %d is not %s", storage.ErrHashMismatch, i, cs.shards[i].Short())
		}
	}
	if err != nil {
		m.log.Warn("repair: a rebuilt block does not check; nothing put", zap.String("block", key.Short()), zap.Error(err))
		return nil, false
	}
	exclude := cs.named()
	added = make(map[int]string, len(place))
	for _, i := range place {
		for {
			id, ok := pl.pick(cs.shards[i], int64(size), exclude)
			if !ok {
				return added, pl.busy
			}
			exclude = append(exclude, id)
			s, err := conns.get(ctx, id)
			if err != nil {
				continue
			}
			if _, err := s.Put(ctx, cs.shards[i], shards[i]); err != nil {
				if ctx.Err() != nil {
					return added, false
				}
				conns.report(id, func(*catalog.RepairStoreReport) {}, fmt.Errorf("put shard %s: %w", cs.shards[i].Short(), err))
				continue
			}
			conns.report(id, func(r *catalog.RepairStoreReport) { r.Received++; r.ReceivedBytes += int64(size) }, nil)
			added[i] = id
			break
		}
	}
	return added, false
}

// listLostCoded names lost coded blocks in the report, as listLost does.
func (m *Manager) listLostCoded(sv *survey, lost []int32, rep *catalog.RepairReport) {
	room := maxLostListed - len(rep.LostBlocks)
	if len(lost) == 0 || room <= 0 {
		return
	}
	lost = lost[:min(len(lost), room)]
	at := make(map[int32]int, len(lost))
	for _, c := range lost {
		at[c] = len(rep.LostBlocks)
		named := slices.Compact(slices.Sorted(slices.Values(sv.coded[c].named())))
		rep.LostBlocks = append(rep.LostBlocks, catalog.LostBlock{Job: sv.job, Key: sv.ckeys[c], Stores: named, Versions: []int64{}})
	}
	for _, svv := range sv.versions {
		for _, c := range svv.coded {
			if i, ok := at[c]; ok {
				lb := &rep.LostBlocks[i]
				if n := len(lb.Versions); n == 0 || lb.Versions[n-1] != svv.version {
					lb.Versions = append(lb.Versions, svv.version)
				}
			}
		}
	}
}
