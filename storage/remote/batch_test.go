package remote_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/memstore"
	"github.com/ckptio/ckptio/storage/remote"
	"github.com/ckptio/ckptio/storage/store"
	"github.com/ckptio/ckptio/storage/storetest"
	"github.com/ckptio/ckptio/storage/wire"
)

// waitQueued waits for the queued hook to report n puts queued.
func waitQueued(t *testing.T, queued <-chan int, n int) {
	t.Helper()
	for {
		select {
		case q := <-queued:
			if q == n {
				return
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%d puts were not all queued", n)
		}
	}
}

// waitFor waits for one event on ch.
func waitFor[T any](t *testing.T, ch <-chan T, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(20 * time.Second):
		t.Fatalf("waited 20s for %s", what)
	}
}

// Puts that arrive while every batch slot is taken go together, in one
// PutBlocks request, and each gets its own answer.
func TestPutsBatchedUnderLoad(t *testing.T) {
	const alone, more = remote.BatchesInFlight, 40
	g := newGated(alone)
	addr, _ := serve(t, g, nil, store.Options{Logger: zaptest.NewLogger(t)})
	sent := make(chan struct{}, alone+more)
	queued := make(chan int, alone+more)
	s := dial(t, addr, remote.WithQueuedHook(remote.WithSentHook(remote.Options{},
		func() { sent <- struct{}{} }), func(n int) { queued <- n }))

	var wg sync.WaitGroup
	created := make([]bool, alone+more)
	errs := make([]error, alone+more)
	put := func(i int) {
		wg.Go(func() {
			data, h := storetest.Block(int64(i), 4096)
			created[i], errs[i] = s.Put(context.Background(), h, data)
		})
	}
	// The first puts go alone, one request each, and wait in the store.
	for i := range alone {
		put(i)
		waitFor(t, queued, "the put to be queued")
		waitFor(t, sent, "the put to be sent")
	}
	waitReached(t, g)
	// The next ones wait in the queue: every batch slot is taken.
	for i := range more {
		put(alone + i)
	}
	waitQueued(t, queued, more)
	close(g.gate)
	wg.Wait()
	for i, err := range errs {
		if err != nil || !created[i] {
			t.Fatalf("put %d: created %v, %v", i, created[i], err)
		}
	}
	if n := len(sent); n != 1 {
		t.Fatalf("the %d queued puts went in %d requests, want 1", more, n)
	}
	if st, err := s.Stat(context.Background()); err != nil || st.Blocks != alone+more {
		t.Fatalf("stat = %+v, %v; want %d blocks", st, err, alone+more)
	}
	// Again: every block is held already.
	for i := range alone + more {
		put(i)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil || created[i] {
			t.Fatalf("put %d again: created %v, %v; want held", i, created[i], err)
		}
	}
}

// A put whose context ends while it waits in the queue returns at once
// and is not sent.
func TestQueuedPutCancelled(t *testing.T) {
	const alone = remote.BatchesInFlight
	g := newGated(alone)
	addr, _ := serve(t, g, nil, store.Options{Logger: zaptest.NewLogger(t)})
	sent := make(chan struct{}, alone+1)
	queued := make(chan int, alone+1)
	s := dial(t, addr, remote.WithQueuedHook(remote.WithSentHook(remote.Options{},
		func() { sent <- struct{}{} }), func(n int) { queued <- n }))
	var wg sync.WaitGroup
	for i := range alone {
		wg.Go(func() {
			data, h := storetest.Block(int64(i), 100)
			if _, err := s.Put(context.Background(), h, data); err != nil {
				t.Error(err)
			}
		})
		waitFor(t, queued, "the put to be queued")
		waitFor(t, sent, "the put to be sent")
	}
	waitReached(t, g)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	data, h := storetest.Block(99, 100)
	go func() {
		_, err := s.Put(ctx, h, data)
		done <- err
	}()
	waitQueued(t, queued, 1)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled queued put: %v, want context.Canceled", err)
	}
	close(g.gate)
	wg.Wait()
	if held, err := s.Has(context.Background(), []storage.Hash{h}); err != nil || held[0] {
		t.Fatalf("the cancelled put reached the store (held %v, %v)", held, err)
	}
}

// oldStore is a store server from before PutBlocks: it answers PutBlocks
// UnknownOp, and holds its PutBlock replies until release is closed.
type oldStore struct {
	addr    string
	release chan struct{}
	mu      sync.Mutex
	ops     map[wire.Op]int
}

func serveOld(t *testing.T) *oldStore {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &oldStore{addr: ln.Addr().String(), release: make(chan struct{}), ops: map[wire.Op]int{}}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { nc.Close() })
			go o.serve(nc)
		}
	}()
	return o
}

func (o *oldStore) serve(nc net.Conn) {
	if wire.ServerHandshake(context.Background(), nc, token) != nil {
		return
	}
	var wmu sync.Mutex
	reply := func(f wire.Frame, st wire.Status, payload []byte) {
		wmu.Lock()
		defer wmu.Unlock()
		wire.WriteFrame(nc, f.ID, f.Op, st, payload)
	}
	for {
		f, err := wire.ReadFrame(nc, 0)
		if err != nil {
			return
		}
		o.mu.Lock()
		o.ops[f.Op]++
		o.mu.Unlock()
		switch f.Op {
		case wire.OpPutBlock:
			go func() {
				<-o.release
				reply(f, wire.StatusOK, wire.EncodeCreated(true))
			}()
		case wire.OpGetBlock:
			go func() {
				<-o.release
				reply(f, wire.StatusOK, []byte("old"))
			}()
		case wire.OpPing:
			reply(f, wire.StatusOK, nil)
		default:
			reply(f, wire.StatusUnknownOp, []byte("unknown op"))
		}
	}
}

func (o *oldStore) count(op wire.Op) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.ops[op]
}

// A store that does not know PutBlocks gets the batch's blocks one by one,
// and every later put as a PutBlock: nothing fails.
func TestPutBatchFallsBackForAnOldStore(t *testing.T) {
	const alone, more = remote.BatchesInFlight, 10
	old := serveOld(t)
	sent := make(chan struct{}, 2*(alone+more))
	queued := make(chan int, alone+more+1)
	s := dial(t, old.addr, remote.WithQueuedHook(remote.WithSentHook(remote.Options{},
		func() { sent <- struct{}{} }), func(n int) { queued <- n }))
	var wg sync.WaitGroup
	errs := make([]error, alone+more)
	put := func(i int) {
		wg.Go(func() {
			data, h := storetest.Block(int64(i), 100)
			_, errs[i] = s.Put(context.Background(), h, data)
		})
	}
	for i := range alone {
		put(i)
		waitFor(t, queued, "the put to be queued")
		waitFor(t, sent, "the put to be sent")
	}
	for i := range more {
		put(alone + i)
	}
	waitQueued(t, queued, more)
	close(old.release)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("put %d to a store without PutBlocks: %v", i, err)
		}
	}
	data, h := storetest.Block(1000, 100)
	if _, err := s.Put(context.Background(), h, data); err != nil {
		t.Fatal(err)
	}
	if pb, p := old.count(wire.OpPutBlocks), old.count(wire.OpPutBlock); pb != 1 || p != alone+more+1 {
		t.Fatalf("old store saw %d PutBlocks and %d PutBlock requests, want 1 and %d", pb, p, alone+more+1)
	}
}

// Gets into buffers that arrive while every batch slot is taken go
// together, in one GetBlocks request, each into its own buffer; a block
// the store does not hold fails alone.
func TestGetsBatchedUnderLoad(t *testing.T) {
	const alone, more = remote.BatchesInFlight, 40
	g := newGated(alone)
	addr, _ := serve(t, g, nil, store.Options{Logger: zaptest.NewLogger(t)})
	sent := make(chan struct{}, alone+more)
	queued := make(chan int, alone+more)
	s := dial(t, addr, remote.WithQueuedHook(remote.WithSentHook(remote.Options{},
		func() { sent <- struct{}{} }), func(n int) { queued <- n }))
	const size = 4096
	blocks := make([][]byte, alone+more)
	hashes := make([]storage.Hash, alone+more)
	for i := range blocks {
		blocks[i], hashes[i] = storetest.Block(int64(i), size)
		if i != alone+7 { // one the store does not hold
			if _, err := g.Store.Put(context.Background(), hashes[i], blocks[i]); err != nil {
				t.Fatal(err)
			}
		}
	}
	var wg sync.WaitGroup
	got := make([][]byte, alone+more)
	errs := make([]error, alone+more)
	bufs := make([][]byte, alone+more)
	get := func(i int) {
		bufs[i] = make([]byte, size)
		wg.Go(func() { got[i], errs[i] = s.GetInto(context.Background(), hashes[i], bufs[i]) })
	}
	for i := range alone {
		get(i)
		waitFor(t, queued, "the get to be queued")
		waitFor(t, sent, "the get to be sent")
	}
	waitReached(t, g)
	for i := range more {
		get(alone + i)
	}
	waitQueued(t, queued, more)
	close(g.gate)
	wg.Wait()
	for i := range blocks {
		if i == alone+7 {
			if !errors.Is(errs[i], storage.ErrNotFound) {
				t.Fatalf("get of a block the store lacks: %v, want ErrNotFound", errs[i])
			}
			continue
		}
		if errs[i] != nil || string(got[i]) != string(blocks[i]) || &got[i][0] != &bufs[i][0] {
			t.Fatalf("get %d: %d bytes (into its buffer: %v), %v", i, len(got[i]), len(got[i]) > 0 && &got[i][0] == &bufs[i][0], errs[i])
		}
	}
	if n := len(sent); n != 1 {
		t.Fatalf("the %d queued gets went in %d requests, want 1", more, n)
	}
}

// heldGets is a store whose gets of some hashes wait until their gate
// is closed.
type heldGets struct {
	*memstore.Store
	gates map[storage.Hash]chan struct{}
}

func (h heldGets) Get(ctx context.Context, k storage.Hash) ([]byte, error) {
	if g := h.gates[k]; g != nil {
		select {
		case <-g:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return h.Store.Get(ctx, k)
}

// A get whose context ends while its batch is in flight returns at once,
// and its buffer is not written after that; the other gets of the batch
// get their bytes.
func TestBatchedGetLeavesAStalledBatch(t *testing.T) {
	const alone = remote.BatchesInFlight
	first, second := make(chan struct{}), make(chan struct{})
	hg := heldGets{Store: memstore.New("held", 0), gates: map[storage.Hash]chan struct{}{}}
	var hs []storage.Hash
	var blocks [][]byte
	for i := range alone + 2 {
		data, h := storetest.Block(int64(i), 100)
		if _, err := hg.Store.Put(context.Background(), h, data); err != nil {
			t.Fatal(err)
		}
		hs, blocks = append(hs, h), append(blocks, data)
		hg.gates[h] = first
		if i >= alone {
			hg.gates[h] = second
		}
	}
	addr, _ := serve(t, hg, nil, store.Options{Logger: zaptest.NewLogger(t)})
	sent := make(chan struct{}, 16)
	queued := make(chan int, 16)
	s := dial(t, addr, remote.WithQueuedHook(remote.WithSentHook(remote.Options{},
		func() { sent <- struct{}{} }), func(n int) { queued <- n }))
	var wg sync.WaitGroup
	for i := range alone {
		wg.Go(func() {
			if _, err := s.GetInto(context.Background(), hs[i], make([]byte, 100)); err != nil {
				t.Error(err)
			}
		})
		waitFor(t, queued, "the get to be queued")
		waitFor(t, sent, "the get to be sent")
	}
	// Two more wait in the queue, every slot being taken; once the first
	// gets are answered they go as one batch, which the store holds.
	ctx, cancel := context.WithCancel(context.Background())
	buf := make([]byte, 100)
	done := make(chan error, 1)
	go func() {
		_, err := s.GetInto(ctx, hs[alone], buf)
		done <- err
	}()
	var other []byte
	wg.Go(func() {
		var err error
		if other, err = s.GetInto(context.Background(), hs[alone+1], make([]byte, 100)); err != nil {
			t.Error(err)
		}
	})
	waitQueued(t, queued, 2)
	close(first)
	waitFor(t, sent, "the batch to be sent")
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled get: %v, want context.Canceled", err)
	}
	close(second)
	wg.Wait()
	if string(other) != string(blocks[alone+1]) {
		t.Fatal("the other get of the batch did not get its bytes")
	}
	for _, c := range buf {
		if c != 0 {
			t.Fatal("the batch wrote into the buffer of a get that had left")
		}
	}
}

// A store that does not know GetBlocks gets each get of the batch alone,
// and every later one: nothing fails.
func TestGetBatchFallsBackForAnOldStore(t *testing.T) {
	const alone, more = remote.BatchesInFlight, 10
	old := serveOld(t)
	sent := make(chan struct{}, 2*(alone+more)+2)
	queued := make(chan int, alone+more+1)
	s := dial(t, old.addr, remote.WithQueuedHook(remote.WithSentHook(remote.Options{NoVerify: true},
		func() { sent <- struct{}{} }), func(n int) { queued <- n }))
	var wg sync.WaitGroup
	errs := make([]error, alone+more)
	get := func(i int) {
		wg.Go(func() {
			var h storage.Hash
			h[0] = byte(i)
			var got []byte
			got, errs[i] = s.GetInto(context.Background(), h, make([]byte, 3))
			if errs[i] == nil && string(got) != "old" {
				errs[i] = errors.New("wrong bytes: " + string(got))
			}
		})
	}
	for i := range alone {
		get(i)
		waitFor(t, queued, "the get to be queued")
		waitFor(t, sent, "the get to be sent")
	}
	for i := range more {
		get(alone + i)
	}
	waitQueued(t, queued, more)
	close(old.release)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("get %d from a store without GetBlocks: %v", i, err)
		}
	}
	if _, err := s.GetInto(context.Background(), storage.Hash{99}, make([]byte, 3)); err != nil {
		t.Fatal(err)
	}
	if gb, g := old.count(wire.OpGetBlocks), old.count(wire.OpGetBlock); gb != 1 || g != alone+more+1 {
		t.Fatalf("old store saw %d GetBlocks and %d GetBlock requests, want 1 and %d", gb, g, alone+more+1)
	}
}
