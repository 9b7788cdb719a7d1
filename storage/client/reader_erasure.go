package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/erasure"
	"github.com/ckptio/ckptio/storage/manifest"
)

// readCoded is read for an erasure-coded block: it fetches K shards at
// once, the data shards first and shards on stores the manager marks dead
// or that lost a recent hedged read last, checks each against its key,
// and fetches another shard for any that fails, and for the slowest
// whenever HedgeAfter passes with shards still outstanding, until K are in
// hand; then it joins them (reconstructing missing data shards) and
// checks the stored bytes against the block's key before decoding. With
// fewer than K readable shards the error wraps erasure.ErrTooFewShards
// and names every failure.
func (r *Reader) readCoded(ctx context.Context, b manifest.Block, dst []byte) ([]byte, error) {
	sc := erasure.Scheme{Data: b.DataShards, Parity: len(b.Shards) - b.DataShards}
	if err := sc.Check(); err != nil || len(b.Stores) != len(b.Shards) {
		return nil, &storage.BlockError{Op: "get", Store: "(none)", Hash: b.Key,
			Err: fmt.Errorf("manifest row holds %d data shards of %d with %d stores: %v", b.DataShards, len(b.Shards), len(b.Stores), err)}
	}
	size := sc.ShardSize(int(b.StoredLength))
	order := r.shardOrder(b)

	buf := storage.GetBuffer(size * sc.Shards())
	defer storage.PutBuffer(buf)
	buf = buf[:size*sc.Shards()]
	shards := make([][]byte, sc.Shards())
	var (
		errs   []error
		failed []string
	)
	hedge := r.hedgeAfter()
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		i   int
		sh  []byte
		err error
	}
	results := make(chan result, len(order))
	started := map[int]time.Time{} // shards asked and not answered
	next := 0
	start := func() {
		i := order[next]
		next++
		started[i] = time.Now()
		go func() {
			sh, err := r.shardFrom(fctx, b.Stores[i], b, i, buf[i*size:(i+1)*size:(i+1)*size])
			results <- result{i, sh, err}
		}()
	}
	// Every shard asked has returned before buf goes back to the pool.
	drain := func() {
		cancel()
		for range started {
			<-results
		}
	}
	for next < len(order) && len(started) < sc.Data {
		start()
	}
	timer := time.NewTimer(hedge)
	defer timer.Stop()
	var hedgeC <-chan time.Time
	if hedge >= 0 {
		hedgeC = timer.C
	}
	have := 0
	for have < sc.Data && len(started) > 0 {
		select {
		case x := <-results:
			delete(started, x.i)
			if x.err != nil {
				if ctx.Err() != nil {
					drain()
					return nil, ctx.Err()
				}
				errs, failed = append(errs, x.err), append(failed, b.Stores[x.i])
				r.log.Debug("shard unreadable; trying another shard",
					zap.String("store", b.Stores[x.i]), zap.String("block", b.Key.Short()), zap.Int("shard", x.i), zap.Error(x.err))
				if next < len(order) {
					start()
				}
				continue
			}
			shards[x.i] = x.sh
			have++
		case <-hedgeC:
			// Shards outstanding for HedgeAfter: ask one more store.
			if next < len(order) {
				start()
			}
			timer.Reset(hedge)
		}
	}
	if have == sc.Data {
		// Asked at least HedgeAfter ago and still not answered: slow, for
		// the order of the next reads and the summary.
		for i, at := range started {
			if hedge >= 0 && time.Since(at) >= hedge {
				errs, failed = append(errs, errSlowFor(hedge)), append(failed, b.Stores[i])
				r.markSlow(b.Stores[i])
			}
		}
	}
	drain()
	if have < sc.Data {
		msg := fmt.Sprintf("%d of %d shards (%s) readable, need %d", have, sc.Shards(), sc, sc.Data)
		if len(errs) > 0 {
			msg += ": " + joinBlockErrors(errs).Error()
		}
		return nil, &storage.BlockError{Op: "get", Store: "(shards)", Hash: b.Key,
			Err: fmt.Errorf("%w: %s", erasure.ErrTooFewShards, msg)}
	}
	r.passCoded(b, shards[:sc.Data], failed, errs)
	out := storage.GetBuffer(int(b.StoredLength))
	defer storage.PutBuffer(out)
	stored, err := sc.Join(out[:0], shards, int(b.StoredLength))
	if err != nil {
		return nil, &storage.BlockError{Op: "get", Store: "(shards)", Hash: b.Key, Err: err}
	}
	if storage.Sum(stored) != b.Key {
		return nil, &storage.BlockError{Op: "get", Store: "(shards)", Hash: b.Key,
			Err: fmt.Errorf("%w (joined from %s shards)", storage.ErrHashMismatch, sc)}
	}
	data, err := decode(r.opts.Decode, b, stored, dst)
	if err != nil {
		return nil, &storage.BlockError{Op: "get", Store: "(shards)", Hash: b.Key, Err: err}
	}
	switch {
	case dst != nil:
		copy(dst, data)
		return dst, nil
	case len(data) > 0 && &data[0] == &stored[0]:
		return append([]byte(nil), data...), nil // stored goes back to the pool
	}
	return data, nil
}

// shardOrder lists the shards of b to ask, in order: data shards before
// parity on stores neither dead nor slow, then those on slow stores, then
// those on dead ones; shards no store holds are left out.
func (r *Reader) shardOrder(b manifest.Block) []int {
	var order, slow, dead []int
	isSlow := r.slowStores()
	for i, id := range b.Stores {
		switch {
		case id == "":
			// not placed (repair will make it)
		case r.opts.Dead != nil && isDead(r.opts.Dead, id):
			dead = append(dead, i)
		case isSlow[id]:
			slow = append(slow, i)
		default:
			order = append(order, i)
		}
	}
	return append(append(order, slow...), dead...)
}

func isDead(dead func(string) (string, bool), id string) bool {
	_, d := dead(id)
	return d
}

// shardFrom fetches shard i of b from store id into into (ShardSize
// bytes) and checks it against the shard's key.
func (r *Reader) shardFrom(ctx context.Context, id string, b manifest.Block, i int, into []byte) ([]byte, error) {
	st, addr, err := r.stores(ctx, id)
	name := id
	if addr != "" {
		name = id + " (" + addr + ")"
	}
	key := b.Shards[i]
	if err != nil {
		return nil, &storage.BlockError{Op: "get", Store: name, Hash: key, Err: err}
	}
	var sh []byte
	if gi, ok := st.(storage.GetIntoer); ok {
		sh, err = gi.GetInto(ctx, key, into)
	} else {
		sh, err = st.Get(ctx, key)
	}
	if err == nil && (len(sh) != len(into) || storage.Sum(sh) != key) {
		err = fmt.Errorf("%w (shard %d: store returned %d bytes, want %d)", storage.ErrHashMismatch, i, len(sh), len(into))
	}
	if err != nil {
		r.noteCorrupt(id, key, err)
		return nil, &storage.BlockError{Op: "get", Store: name, Hash: key, Err: err}
	}
	if &sh[0] != &into[0] {
		copy(into, sh)
	}
	return into, nil
}

// passCoded records a coded block whose data shards were not all read
// from their stores: each data-shard store that failed or was skipped
// counts as passed over once.
func (r *Reader) passCoded(b manifest.Block, data [][]byte, failed []string, errs []error) {
	missing := false
	for _, sh := range data {
		if sh == nil {
			missing = true
		}
	}
	if !missing {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mu.blocks++
	for i, sh := range data {
		if sh != nil {
			continue
		}
		id := b.Stores[i]
		if id == "" {
			id = fmt.Sprintf("(shard %d not placed)", i)
		}
		p := r.mu.passed[id]
		if p == nil {
			p = &passed{}
			r.mu.passed[id] = p
		}
		p.blocks++
		var why error
		for j, f := range failed {
			if f == b.Stores[i] {
				why = errs[j]
			}
		}
		switch {
		case why != nil:
			p.why = why
		case p.why == nil:
			p.why = errDead
			if r.opts.Dead != nil && b.Stores[i] != "" {
				p.addr, _ = r.opts.Dead(b.Stores[i])
			}
			if b.Stores[i] == "" {
				p.why = errors.New("no store holds it")
			}
		}
	}
}
