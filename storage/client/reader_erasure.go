package client

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"go.uber.org/zap"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/erasure"
	"github.com/ckptio/ckptio/storage/manifest"
)

// readCoded is read for an erasure-coded block: it fetches K shards at
// once, the data shards first and shards on stores the manager marks dead
// last, checks each against its key, and fetches the next shards for any
// that failed until K are in hand; then it joins them (reconstructing
// missing data shards) and checks the stored bytes against the block's
// key before decoding. With fewer than K readable shards the error wraps
// erasure.ErrTooFewShards and names every failure.
func (r *Reader) readCoded(ctx context.Context, b manifest.Block, dst []byte) ([]byte, error) {
	sc := erasure.Scheme{Data: b.DataShards, Parity: len(b.Shards) - b.DataShards}
	if err := sc.Check(); err != nil || len(b.Stores) != len(b.Shards) {
		return nil, &storage.BlockError{Op: "get", Store: "(none)", Hash: b.Key,
			Err: fmt.Errorf("manifest row holds %d data shards of %d with %d stores: %v", b.DataShards, len(b.Shards), len(b.Stores), err)}
	}
	size := sc.ShardSize(int(b.StoredLength))
	// Shard order to try: live stores first, data before parity.
	var order, dead []int
	for i, id := range b.Stores {
		switch {
		case id == "":
			// not placed (repair will make it)
		case r.opts.Dead != nil && isDead(r.opts.Dead, id):
			dead = append(dead, i)
		default:
			order = append(order, i)
		}
	}
	order = append(order, dead...)

	buf := storage.GetBuffer(size * sc.Shards())
	defer storage.PutBuffer(buf)
	buf = buf[:size*sc.Shards()]
	shards := make([][]byte, sc.Shards())
	var (
		mu     sync.Mutex
		errs   []error
		failed []string
	)
	fetch := func(i int) bool {
		id := b.Stores[i]
		sh, err := r.shardFrom(ctx, id, b, i, buf[i*size:(i+1)*size:(i+1)*size])
		if err != nil {
			mu.Lock()
			errs = append(errs, err)
			failed = append(failed, id)
			mu.Unlock()
			r.log.Debug("shard unreadable; trying another shard",
				zap.String("store", id), zap.String("block", b.Key.Short()), zap.Int("shard", i), zap.Error(err))
			return false
		}
		shards[i] = sh
		return true
	}
	have, next := 0, 0
	for have < sc.Data && next < len(order) {
		want := min(sc.Data-have, len(order)-next)
		batch := order[next : next+want]
		next += want
		var wg sync.WaitGroup
		got := make([]bool, len(batch))
		for j, i := range batch {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got[j] = fetch(i)
			}()
		}
		wg.Wait()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		for _, ok := range got {
			if ok {
				have++
			}
		}
	}
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
	if err != nil {
		return nil, &storage.BlockError{Op: "get", Store: name, Hash: key, Err: err}
	}
	if len(sh) != len(into) || storage.Sum(sh) != key {
		return nil, &storage.BlockError{Op: "get", Store: name, Hash: key,
			Err: fmt.Errorf("%w (shard %d: store returned %d bytes, want %d)", storage.ErrHashMismatch, i, len(sh), len(into))}
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
