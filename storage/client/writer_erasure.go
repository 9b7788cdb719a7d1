package client

import (
	"context"
	"fmt"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/manifest"
)

// storeShards is store for an erasure-coded writer: the block's stored
// bytes are cut into K+M shards (storage/erasure), each put under its own
// key on a distinct store. A store that refuses a shard is dropped and
// the shard goes to the next store in the block's order that holds no
// other shard of it. The block is done once every shard is durable; with
// fewer than K+M stores that will take one, the write fails.
func (w *Writer) storeShards(ctx context.Context, ref manifest.Block, stored []byte) (int, bool) {
	sc := w.opts.Redundancy
	shards, err := sc.Split(stored)
	if err != nil {
		w.fail(fmt.Errorf("client: block of %q at offset %d: %w", ref.Object, ref.Offset, err))
		return 0, false
	}
	n := sc.Shards()
	ref.DataShards = sc.Data
	ref.Shards = make([]storage.Hash, n)
	ref.Stores = make([]string, n)
	for i, sh := range shards {
		ref.Shards[i] = storage.Sum(sh)
	}
	used := map[int]bool{} // stores holding or tried for a shard of this block
	todo := make([]int, n) // shards still to place
	for i := range todo {
		todo[i] = i
	}
	created := false
	for len(todo) > 0 {
		dropped := w.dropped()
		pick := w.place.Pick(ref.Key, len(todo), func(i int) bool { return dropped[i] != nil || used[i] })
		if len(pick) < len(todo) {
			err := fmt.Errorf("client: block %s of %q at offset %d: %d of %d shards (%s) stored, no other store took one: %s",
				ref.Key.Short(), ref.Object, ref.Offset, n-len(todo), n, sc, w.exclusions())
			if len(w.dropped()) == 0 {
				err = fmt.Errorf("client: block %s of %q: %s needs %d stores, %d will take a shard", ref.Key.Short(), ref.Object, sc, n, len(w.targets))
			} else if w.allFull() {
				w.mu.Lock()
				se := &SpaceError{During: true, Sent: w.mu.sentBytes, Stores: len(w.targets)}
				w.mu.Unlock()
				err = se
			}
			w.fail(err)
			return 0, false
		}
		type outcome struct {
			shard, i int
			created  bool
			err      error
		}
		results := make(chan outcome, len(todo))
		for j, shard := range todo {
			i := pick[j]
			used[i] = true
			go func() {
				c, err := w.putOn(ctx, i, ref.Shards[shard], shards[shard])
				results <- outcome{shard, i, c, err}
			}()
		}
		var again []int
		for range todo {
			o := <-results
			t := w.targets[o.i]
			size := int64(len(shards[o.shard]))
			switch {
			case o.err == nil:
				ref.Stores[o.shard] = t.ID
				w.mu.Lock()
				w.mu.sentBytes += size
				if o.created {
					w.mu.created[o.i] = append(w.mu.created[o.i], ref.Shards[o.shard])
				}
				w.mu.Unlock()
				created = created || o.created
			case ctx.Err() != nil:
				w.fail(ctx.Err())
				return 0, false
			default:
				again = append(again, o.shard)
				if err := w.refused(o.i, ref.Shards[o.shard], o.err); err != nil {
					w.fail(err)
					return 0, false
				}
			}
		}
		todo = again
	}
	// NewBytes counts the stored bytes once, as for copies; SentBytes
	// counted every shard.
	return w.record(ref, created, 0), true
}
