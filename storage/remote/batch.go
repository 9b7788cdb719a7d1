package remote

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/wire"
)

// Batched puts. Put does not send its block at once: it queues it, and
// one goroutine per Store sends what is queued as one PutBlocks request
// whenever fewer than BatchesInFlight batches are outstanding. Under load
// the puts that arrive while the batches in flight are answered make up
// the next batch, as a store's group commit gathers the puts that arrive
// during an fdatasync; a lone put goes alone, at once, as a PutBlock. A
// store that does not know PutBlocks (UnknownOp) gets PutBlock requests
// from then on.

// DefaultBatch is Options.Batch's default: the block bytes one PutBlocks
// request carries at most. Chosen by measurement (docs/benchmarks.md,
// "Batched transport").
const DefaultBatch = 1 << 20

// BatchesInFlight is how many PutBlocks requests a Store keeps
// outstanding at once; more puts wait and join the next batch.
const BatchesInFlight = 4

// putReq is one queued put.
type putReq struct {
	ctx   context.Context
	h     storage.Hash
	data  []byte
	taken bool          // by a batch; set under the queue's lock
	done  chan putReply // buffered; answered exactly once
}

type putReply struct {
	created bool
	err     error
}

// batcher is a Store's queue of puts and the goroutine that sends it.
type batcher struct {
	wake    chan struct{} // a put was queued
	quit    chan struct{} // closed by Store.Close
	slots   chan struct{} // one per batch in flight
	noBatch atomic.Bool   // the store answered PutBlocks UnknownOp

	mu struct {
		sync.Mutex
		queue  []*putReq
		closed bool
	}
}

// startBatches starts the Store's sender of batches (Dial).
func (s *Store) startBatches() {
	b := &s.batch
	b.wake = make(chan struct{}, 1)
	b.quit = make(chan struct{})
	b.slots = make(chan struct{}, BatchesInFlight)
	s.wg.Add(1)
	go s.sendBatches()
}

// batching reports whether Put queues blocks for PutBlocks.
func (s *Store) batching() bool { return s.opts.Batch > 0 && !s.batch.noBatch.Load() }

// putQueued queues a put for the next batch and waits for its answer. If
// ctx ends while the put is still queued it leaves the queue at once;
// once in a batch being sent it waits for the batch (the connection's
// reply timeout bounds that), so that nothing reads data after Put
// returned.
func (s *Store) putQueued(ctx context.Context, h storage.Hash, data []byte) (bool, error) {
	b := &s.batch
	r := &putReq{ctx: ctx, h: h, data: data, done: make(chan putReply, 1)}
	b.mu.Lock()
	if b.mu.closed {
		b.mu.Unlock()
		return false, storage.ErrClosed
	}
	b.mu.queue = append(b.mu.queue, r)
	if s.opts.queued != nil {
		s.opts.queued(len(b.mu.queue))
	}
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
	select {
	case rep := <-r.done:
		return rep.created, rep.err
	case <-ctx.Done():
	}
	b.mu.Lock()
	if !r.taken {
		b.mu.queue = slices.DeleteFunc(b.mu.queue, func(q *putReq) bool { return q == r })
		b.mu.Unlock()
		return false, ctx.Err()
	}
	b.mu.Unlock()
	rep := <-r.done
	return rep.created, rep.err
}

// sendBatches sends the queue as batches until the Store closes.
func (s *Store) sendBatches() {
	defer s.wg.Done()
	b := &s.batch
	for {
		select {
		case <-b.wake:
		case <-b.quit:
			b.failQueued()
			return
		}
		for {
			select {
			case b.slots <- struct{}{}:
			case <-b.quit:
				b.failQueued()
				return
			}
			batch := b.take(s.opts.Batch)
			if len(batch) == 0 {
				<-b.slots
				break
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer func() { <-b.slots }()
				s.sendBatch(batch)
			}()
		}
	}
}

// take removes from the queue the puts of the next batch: the first one,
// then as many as fit in limit bytes of blocks, MaxPutBatch blocks and a
// frame.
func (b *batcher) take(limit int) []*putReq {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, bytes := 0, 0
	for n < len(b.mu.queue) && n < wire.MaxPutBatch {
		d := len(b.mu.queue[n].data)
		if n > 0 && (bytes+d > limit || wire.PutBlocksSize(n+1, bytes+d) > wire.DefaultMaxPayload) {
			break
		}
		bytes += d
		n++
	}
	batch := slices.Clone(b.mu.queue[:n])
	b.mu.queue = slices.Delete(b.mu.queue, 0, n)
	for _, r := range batch {
		r.taken = true
	}
	return batch
}

// failQueued answers every queued put with ErrClosed, for good.
func (b *batcher) failQueued() {
	b.mu.Lock()
	q := b.mu.queue
	b.mu.queue, b.mu.closed = nil, true
	b.mu.Unlock()
	for _, r := range q {
		r.done <- putReply{err: storage.ErrClosed}
	}
}

// close stops taking puts; the sender fails those still queued.
func (b *batcher) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.quit != nil && !b.mu.closed {
		close(b.quit)
	}
	b.mu.closed = true
}

// sendBatch sends batch as one request (a lone put as a PutBlock) and
// answers each put.
func (s *Store) sendBatch(batch []*putReq) {
	if len(batch) == 1 {
		r := batch[0]
		created, err := s.putOne(r.ctx, r.h, r.data)
		r.done <- putReply{created, err}
		return
	}
	// The request is sent as long as one of its puts still waits.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var left atomic.Int32
	left.Store(int32(len(batch)))
	for _, r := range batch {
		stop := context.AfterFunc(r.ctx, func() {
			if left.Add(-1) == 0 {
				cancel()
			}
		})
		defer stop()
	}
	items := make([]wire.PutItem, len(batch))
	parts := make([][]byte, 1, len(batch)+1)
	for i, r := range batch {
		items[i] = wire.PutItem{Hash: r.h, Data: r.data}
		parts = append(parts, r.data)
	}
	head, err := wire.EncodePutBlocksHead(items)
	var f wire.Frame
	if err == nil {
		parts[0] = head
		f, err = s.roundTrip(ctx, wire.OpPutBlocks, parts...)
	}
	if errors.Is(err, wire.ErrUnknownOp) {
		// A store older than batches: one request per block, now and
		// from now on.
		s.batch.noBatch.Store(true)
		s.log.Debug("store does not know batched puts; putting blocks one by one")
		var wg sync.WaitGroup
		for _, r := range batch {
			wg.Add(1)
			go func() {
				defer wg.Done()
				created, err := s.putOne(r.ctx, r.h, r.data)
				r.done <- putReply{created, err}
			}()
		}
		wg.Wait()
		return
	}
	var outs []wire.PutOutcome
	if err == nil {
		outs, err = wire.DecodePutBlocksReply(f.Payload, len(batch))
	}
	for i, r := range batch {
		if err != nil {
			e := err
			if ctx.Err() != nil && r.ctx.Err() != nil {
				e = r.ctx.Err()
			}
			r.done <- putReply{err: s.blockErr("put", r.h, e)}
			continue
		}
		if e := outs[i].Err(); e != nil {
			r.done <- putReply{err: s.blockErr("put", r.h, e)}
			continue
		}
		r.done <- putReply{created: outs[i].Created}
	}
}
