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
