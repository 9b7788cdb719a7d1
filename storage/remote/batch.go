package remote

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/wire"
)

// Batched puts and gets. Put does not send its block at once: it queues
// it, and one goroutine per Store sends what is queued as one PutBlocks
// request whenever fewer than BatchesInFlight batches are outstanding.
// Under load the puts that arrive while the batches in flight are
// answered make up the next batch, as a store's group commit gathers the
// puts that arrive during an fdatasync; a lone put goes alone, at once,
// as a PutBlock. GetInto with a buffer does the same with GetBlocks. A
// store that does not know an op (UnknownOp) gets one request per block
// from then on.

// DefaultBatch is Options.Batch's default: the block bytes one PutBlocks
// or GetBlocks request carries at most. Chosen by measurement
// (docs/benchmarks.md, "Batched transport").
const DefaultBatch = 1 << 20

// BatchesInFlight is how many batches of puts, and of gets, a Store
// keeps outstanding at once; more wait and join the next batch.
const BatchesInFlight = 4

// batchReq is one queued put or get.
type batchReq struct {
	ctx context.Context
	h   storage.Hash
	buf []byte // a put's block; a get's destination (up to its cap)
	n   int    // bytes it counts against the batch's limit
	// taken: by a batch, set under the queue's lock. state: for a get
	// in a batch, callWaiting until the batch copies into buf
	// (callFilling) or the caller leaves (callLeft).
	taken bool
	state atomic.Int32
	done  chan batchReply // buffered; answered exactly once
}

type batchReply struct {
	created bool   // put
	data    []byte // get
	err     error
	// alone: a get to send alone, by its caller (who then owns its
	// buffer throughout): it went in no batch. The caller calls release
	// once it is answered, freeing the slot it holds.
	alone   bool
	release func()
}

// batcher is a Store's queue of puts or of gets, and the goroutine that
// sends it.
type batcher struct {
	wake  chan struct{} // a request was queued
	quit  chan struct{} // closed by Store.Close
	slots chan struct{} // one per batch in flight
	// noBatch: the store answered the batch op UnknownOp.
	noBatch atomic.Bool
	// send sends a batch of at least two requests, answering each;
	// sendOne a request alone, calling release once its slot is free.
	send    func([]*batchReq)
	sendOne func(r *batchReq, release func())
	// leave: a caller whose ctx ends may leave a batch being sent (the
	// batch does not read its buffer, only fills it under state).
	leave  bool
	limit  int
	maxN   int
	queued func(int) // Options.queued

	mu struct {
		sync.Mutex
		queue  []*batchReq
		closed bool
	}
}

// startBatches starts the Store's senders of batches (Dial).
func (s *Store) startBatches() {
	s.puts.send, s.puts.sendOne, s.puts.maxN = s.sendPuts, s.putAlone, wire.MaxPutBatch
	s.gets.send, s.gets.sendOne, s.gets.maxN, s.gets.leave = s.sendGets, s.getAlone, wire.MaxGetBatch, true
	for _, b := range []*batcher{&s.puts, &s.gets} {
		b.wake = make(chan struct{}, 1)
		b.quit = make(chan struct{})
		b.slots = make(chan struct{}, BatchesInFlight)
		b.limit, b.queued = s.opts.Batch, s.opts.queued
		s.wg.Add(1)
		go b.loop(&s.wg)
	}
}

// on reports whether b queues requests for batches.
func (b *batcher) on() bool { return b.wake != nil && !b.noBatch.Load() }

// do queues r for the next batch and waits for its answer. If ctx ends
// while r is still queued it leaves the queue at once. Once r is in a
// batch being sent, a put waits for the batch (the connection's reply
// timeout bounds that), so that nothing reads its block after Put
// returned; a get leaves unless the batch is filling its buffer.
func (b *batcher) do(r *batchReq) batchReply {
	r.done = make(chan batchReply, 1)
	b.mu.Lock()
	if b.mu.closed {
		b.mu.Unlock()
		return batchReply{err: storage.ErrClosed}
	}
	b.mu.queue = append(b.mu.queue, r)
	if b.queued != nil {
		b.queued(len(b.mu.queue))
	}
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
	select {
	case rep := <-r.done:
		return rep
	case <-r.ctx.Done():
	}
	b.mu.Lock()
	if !r.taken {
		b.mu.queue = slices.DeleteFunc(b.mu.queue, func(q *batchReq) bool { return q == r })
		b.mu.Unlock()
		return batchReply{err: r.ctx.Err()}
	}
	b.mu.Unlock()
	if b.leave && r.state.CompareAndSwap(callWaiting, callLeft) {
		return batchReply{err: r.ctx.Err()}
	}
	return <-r.done
}

// loop sends the queue as batches until the Store closes.
func (b *batcher) loop(wg *sync.WaitGroup) {
	defer wg.Done()
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
			batch := b.take()
			if len(batch) == 0 {
				<-b.slots
				break
			}
			release := func() { <-b.slots }
			if len(batch) == 1 {
				b.sendOne(batch[0], release)
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer release()
				b.send(batch)
			}()
		}
	}
}

// take removes from the queue the requests of the next batch: the first
// one, then as many as fit in the limit's bytes, maxN requests and a
// frame.
func (b *batcher) take() []*batchReq {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, bytes := 0, 0
	for n < len(b.mu.queue) && n < b.maxN {
		d := b.mu.queue[n].n
		if n > 0 && (bytes+d > b.limit || wire.PutBlocksSize(n+1, bytes+d) > wire.DefaultMaxPayload) {
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

// failQueued answers every queued request with ErrClosed, for good.
func (b *batcher) failQueued() {
	b.mu.Lock()
	q := b.mu.queue
	b.mu.queue, b.mu.closed = nil, true
	b.mu.Unlock()
	for _, r := range q {
		r.done <- batchReply{err: storage.ErrClosed}
	}
}

// close stops taking requests; the sender fails those still queued.
func (b *batcher) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.quit != nil && !b.mu.closed {
		close(b.quit)
	}
	b.mu.closed = true
}

// batchContext is cancelled once every request of batch has its context
// cancelled: the batch is sent as long as one of them still waits.
func batchContext(batch []*batchReq) (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var left atomic.Int32
	left.Store(int32(len(batch)))
	stops := make([]func() bool, len(batch))
	for i, r := range batch {
		stops[i] = context.AfterFunc(r.ctx, func() {
			if left.Add(-1) == 0 {
				cancel()
			}
		})
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel()
	}
}

// fallBack notes that the store does not know b's batch op and sends
// each request alone, from now on too.
func (s *Store) fallBack(b *batcher, op wire.Op, batch []*batchReq) {
	b.noBatch.Store(true)
	s.log.Debug("store does not know batched requests; sending them one by one", zap.Stringer("op", op))
	var wg sync.WaitGroup
	for _, r := range batch {
		done := make(chan struct{})
		wg.Go(func() { b.sendOne(r, func() { close(done) }); <-done })
	}
	wg.Wait()
}

// batchErr is the error a request of a batch that failed as a whole
// gets.
func (s *Store) batchErr(op string, ctx context.Context, r *batchReq, err error) error {
	if ctx.Err() != nil && r.ctx.Err() != nil {
		err = r.ctx.Err()
	}
	return s.blockErr(op, r.h, err)
}

// putAlone sends a put alone, holding its slot until it is answered.
func (s *Store) putAlone(r *batchReq, release func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer release()
		created, err := s.putOne(r.ctx, r.h, r.buf)
		r.done <- batchReply{created: created, err: err}
	}()
}

// sendPuts sends batch as one PutBlocks request and answers each put.
func (s *Store) sendPuts(batch []*batchReq) {
	ctx, stop := batchContext(batch)
	defer stop()
	items := make([]wire.PutItem, len(batch))
	parts := make([][]byte, 1, len(batch)+1)
	for i, r := range batch {
		items[i] = wire.PutItem{Hash: r.h, Data: r.buf}
		parts = append(parts, r.buf)
	}
	head, err := wire.EncodePutBlocksHead(items)
	var f wire.Frame
	if err == nil {
		parts[0] = head
		f, err = s.roundTrip(ctx, wire.OpPutBlocks, parts...)
	}
	if errors.Is(err, wire.ErrUnknownOp) {
		s.fallBack(&s.puts, wire.OpPutBlocks, batch)
		return
	}
	var outs []wire.PutOutcome
	if err == nil {
		outs, err = wire.DecodePutBlocksReply(f.Payload, len(batch))
	}
	for i, r := range batch {
		switch {
		case err != nil:
			r.done <- batchReply{err: s.batchErr("put", ctx, r, err)}
		case outs[i].Err() != nil:
			r.done <- batchReply{err: s.blockErr("put", r.h, outs[i].Err())}
		default:
			r.done <- batchReply{created: outs[i].Created}
		}
	}
}

// getAlone tells a get's caller to send it alone, and to call release
// once it is answered; a caller that has left releases nothing, so
// release is called here.
func (s *Store) getAlone(r *batchReq, release func()) {
	if !r.state.CompareAndSwap(callWaiting, callFilling) {
		release()
		return
	}
	r.done <- batchReply{alone: true, release: release}
}

// sendGets sends batch as one GetBlocks request and hands each get its
// bytes, copied into its buffer unless its caller left.
func (s *Store) sendGets(batch []*batchReq) {
	ctx, stop := batchContext(batch)
	defer stop()
	hs := make([]storage.Hash, len(batch))
	want := 0
	for i, r := range batch {
		hs[i] = r.h
		want += r.n
	}
	p, err := wire.EncodeGetBlocks(hs)
	var f wire.Frame
	if err == nil {
		buf := storage.GetBuffer(wire.GetBlocksReplySize(len(batch), want))
		defer storage.PutBuffer(buf)
		f, err = s.roundTripInto(ctx, buf, wire.OpGetBlocks, p)
	}
	if errors.Is(err, wire.ErrUnknownOp) {
		s.fallBack(&s.gets, wire.OpGetBlocks, batch)
		return
	}
	var outs []wire.GetOutcome
	if err == nil {
		outs, err = wire.DecodeGetBlocksReply(f.Payload, len(batch))
	}
	for i, r := range batch {
		if err == nil && outs[i].Status == wire.StatusTooLarge {
			// Left out of the reply to keep it within a frame: alone
			// (within this batch's slot).
			s.getAlone(r, func() {})
			continue
		}
		if !r.state.CompareAndSwap(callWaiting, callFilling) {
			r.done <- batchReply{err: r.ctx.Err()} // the caller left
			continue
		}
		switch {
		case err != nil:
			r.done <- batchReply{err: s.batchErr("get", ctx, r, err)}
		case outs[i].Err() != nil:
			r.done <- batchReply{err: s.blockErr("get", r.h, outs[i].Err())}
		default:
			data := outs[i].Data
			var out []byte
			if len(data) <= cap(r.buf) {
				out = r.buf[:len(data)]
			} else {
				out = make([]byte, len(data))
			}
			copy(out, data)
			r.done <- batchReply{data: out}
		}
	}
}
