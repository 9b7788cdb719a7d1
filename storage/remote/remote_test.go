package remote_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
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

var token = []byte("test-cluster-token")

// serve starts a server of bs on ln (a fresh loopback port if nil) and
// returns its address; the server is closed when the test ends.
func serve(t testing.TB, bs storage.BlockStore, ln net.Listener, opts store.Options) (string, *store.Server) {
	t.Helper()
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	srv := store.NewServer(bs, token, opts)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background(), ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String(), srv
}

func dial(t testing.TB, addr string, opts remote.Options) *remote.Store {
	t.Helper()
	s, err := remote.Dial(context.Background(), addr, token, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.RunWithClock(t, func(t *testing.T, quota int64, now func() time.Time) storage.BlockStore {
		addr, _ := serve(t, memstore.NewWithClock("mem-"+t.Name(), quota, now), nil, store.Options{Logger: zaptest.NewLogger(t)})
		s, err := remote.Dial(context.Background(), addr, token, remote.Options{Logger: zaptest.NewLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// gated is a BlockStore whose Put and Get wait at a gate, counting the
// calls waiting at once.
type gated struct {
	*memstore.Store
	gate chan struct{} // closed to let calls through

	mu      sync.Mutex
	waiting int
	most    int
	reached chan struct{} // closed when waiting first reaches target
	target  int
	hit     bool
}

func newGated(target int) *gated {
	return &gated{Store: memstore.New("gated", 0), gate: make(chan struct{}),
		reached: make(chan struct{}), target: target}
}

func (g *gated) wait(ctx context.Context) error {
	g.mu.Lock()
	g.waiting++
	g.most = max(g.most, g.waiting)
	if g.waiting == g.target && !g.hit {
		g.hit = true
		close(g.reached)
	}
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.waiting--
		g.mu.Unlock()
	}()
	select {
	case <-g.gate:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *gated) Put(ctx context.Context, h storage.Hash, data []byte) (bool, error) {
	if err := g.wait(ctx); err != nil {
		return false, err
	}
	return g.Store.Put(ctx, h, data)
}

func (g *gated) Get(ctx context.Context, h storage.Hash) ([]byte, error) {
	if err := g.wait(ctx); err != nil {
		return nil, err
	}
	return g.Store.Get(ctx, h)
}

func (g *gated) mostAtOnce() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.most
}

func waitReached(t *testing.T, g *gated) {
	t.Helper()
	select {
	case <-g.reached:
	case <-time.After(20 * time.Second):
		t.Fatalf("store saw at most %d calls at once, want %d", g.mostAtOnce(), g.target)
	}
}

// Puts from many goroutines are all in flight at once on one connection,
// up to the window and no further.
func TestPipelinedUpToWindow(t *testing.T) {
	const window, callers = 8, 20
	g := newGated(window)
	addr, _ := serve(t, g, nil, store.Options{Logger: zaptest.NewLogger(t), MaxInFlight: 64})
	// One request per put: this is about requests (batches: batch_test.go).
	s := dial(t, addr, remote.Options{Window: window, Batch: -1})

	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for i := range callers {
		wg.Go(func() {
			data, h := storetest.Block(int64(i), 4096)
			if _, err := s.Put(context.Background(), h, data); err != nil {
				errs <- err
			}
		})
	}
	waitReached(t, g)
	close(g.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := g.mostAtOnce(); got != window {
		t.Fatalf("store saw %d puts at once, want the window, %d", got, window)
	}
	st, err := s.Stat(context.Background())
	if err != nil || st.Blocks != callers {
		t.Fatalf("stat = %+v, %v; want %d blocks", st, err, callers)
	}
}

// The server runs at most MaxInFlight requests of a connection at once,
// whatever the client's window.
func TestServerBoundsInFlight(t *testing.T) {
	const inFlight = 3
	g := newGated(inFlight)
	addr, _ := serve(t, g, nil, store.Options{Logger: zaptest.NewLogger(t), MaxInFlight: inFlight})
	s := dial(t, addr, remote.Options{Window: 32, Batch: -1})
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Go(func() {
			data, h := storetest.Block(int64(i), 100)
			if _, err := s.Put(context.Background(), h, data); err != nil {
				t.Error(err)
			}
		})
	}
	waitReached(t, g)
	close(g.gate)
	wg.Wait()
	if got := g.mostAtOnce(); got != inFlight {
		t.Fatalf("store saw %d puts at once, want MaxInFlight %d", got, inFlight)
	}
}

// Cancelling one call leaves the connection usable for the others, and the
// late reply does not reach anyone.
func TestCancelOneCall(t *testing.T) {
	g := newGated(1)
	addr, _ := serve(t, g, nil, store.Options{Logger: zaptest.NewLogger(t)})
	s := dial(t, addr, remote.Options{Window: 4})
	data, h := storetest.Block(1, 1000)
	if _, err := g.Store.Put(context.Background(), h, data); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := s.Get(ctx, h)
		done <- err
	}()
	waitReached(t, g)
	cancel()
	err := <-done
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), addr) {
		t.Fatalf("cancelled get: %v", err)
	}
	close(g.gate)
	for range 3 * 4 { // more calls than the window: the cancelled one's slot came back
		if got, err := s.Get(context.Background(), h); err != nil || string(got) != string(data) {
			t.Fatalf("get after a cancelled call: %v", err)
		}
	}
	if err := s.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestWrongTokenRefused(t *testing.T) {
	addr, _ := serve(t, memstore.New("m", 0), nil, store.Options{Logger: zaptest.NewLogger(t)})
	_, err := remote.Dial(context.Background(), addr, []byte("wrong"), remote.Options{})
	if !errors.Is(err, storage.ErrUnauthorized) {
		t.Fatalf("dial with a wrong token: %v, want ErrUnauthorized", err)
	}
	want := fmt.Sprintf("store %s refused the cluster token (wrong CKPT_TOKEN / token file?)", addr)
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not say %q", err, want)
	}
	s := dial(t, addr, remote.Options{})
	if err := s.Ping(context.Background()); err != nil {
		t.Fatalf("good client after a bad one: %v", err)
	}
}

func TestDialNobodyThere(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = remote.Dial(context.Background(), addr, token, remote.Options{DialTimeout: time.Second})
	if err == nil || !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "store daemon running") {
		t.Fatalf("dial to a closed port: %v", err)
	}
}

func TestStoreErrorsNameStoreAndBlock(t *testing.T) {
	addr, _ := serve(t, memstore.New("m", 64<<10), nil, store.Options{Logger: zaptest.NewLogger(t)})
	s := dial(t, addr, remote.Options{})
	ctx := context.Background()
	data, h := storetest.Block(1, 64<<10)
	if _, err := s.Put(ctx, h, data); err != nil {
		t.Fatal(err)
	}
	data2, h2 := storetest.Block(2, 64<<10)
	_, err := s.Put(ctx, h2, data2)
	var be *storage.BlockError
	if !errors.Is(err, storage.ErrQuotaExceeded) || !errors.As(err, &be) || be.Hash != h2 || be.Store != addr {
		t.Fatalf("put over quota: %v", err)
	}
	for _, want := range []string{addr, h2.Short(), "store quota exceeded", "memstore:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	_, err = s.Get(ctx, h2)
	if !errors.Is(err, storage.ErrNotFound) || !errors.As(err, &be) || be.Op != "get" {
		t.Fatalf("get missing: %v", err)
	}
}

func TestCorruptBlockNotReturned(t *testing.T) {
	ms := memstore.New("m", 0)
	addr, _ := serve(t, ms, nil, store.Options{Logger: zaptest.NewLogger(t)})
	s := dial(t, addr, remote.Options{})
	data, h := storetest.Block(1, 1000)
	if _, err := s.Put(context.Background(), h, data); err != nil {
		t.Fatal(err)
	}
	ms.Corrupt(h)
	if _, err := s.Get(context.Background(), h); !errors.Is(err, storage.ErrHashMismatch) {
		t.Fatalf("get of a corrupt block: %v", err)
	}
}

func TestLargeBatches(t *testing.T) {
	addr, _ := serve(t, memstore.New("m", 0), nil, store.Options{Logger: zaptest.NewLogger(t)})
	s := dial(t, addr, remote.Options{})
	ctx := context.Background()
	data, h := storetest.Block(1, 10)
	if _, err := s.Put(ctx, h, data); err != nil {
		t.Fatal(err)
	}
	hs := make([]storage.Hash, wire.MaxBatch+5)
	hs[wire.MaxBatch+3] = h
	held, err := s.Has(ctx, hs)
	if err != nil || len(held) != len(hs) || !held[wire.MaxBatch+3] || held[0] {
		t.Fatalf("has over two batches: %d answers, %v", len(held), err)
	}
	freed, err := s.Delete(ctx, hs, time.Time{})
	if err != nil || freed != 10 {
		t.Fatalf("delete over two batches: %d, %v", freed, err)
	}
}

// listing is a BlockStore whose List answers made-up hashes: ascending ones
// up to the limit asked, or, with descending set, two out of order.
type listing struct {
	*memstore.Store
	descending atomic.Bool
	asked      atomic.Int64
}

func (l *listing) List(ctx context.Context, after storage.Hash, max int) ([]storage.Hash, error) {
	l.asked.Store(int64(max))
	if l.descending.Load() {
		return []storage.Hash{{9}, {8}}, nil
	}
	hs := make([]storage.Hash, max)
	for i := range hs {
		hs[i] = after
		binary.BigEndian.PutUint64(hs[i][24:], binary.BigEndian.Uint64(after[24:])+uint64(i)+1)
	}
	return hs, nil
}

// A List for more than one reply carries gets wire.MaxBatch hashes, and a
// reply out of order is refused rather than handed to a walk that would
// not advance.
func TestListLimits(t *testing.T) {
	ctx := context.Background()
	l := &listing{Store: memstore.New("m", 0)}
	addr, _ := serve(t, l, nil, store.Options{Logger: zaptest.NewLogger(t)})
	s := dial(t, addr, remote.Options{})
	hs, err := s.List(ctx, storage.Hash{}, wire.MaxBatch+10)
	if err != nil || len(hs) != wire.MaxBatch || l.asked.Load() != wire.MaxBatch {
		t.Fatalf("list max MaxBatch+10 = %d hashes (store asked for %d), %v; want MaxBatch", len(hs), l.asked.Load(), err)
	}
	if hs, err := s.List(ctx, storage.Hash{}, 3); err != nil || len(hs) != 3 {
		t.Fatalf("list max 3 = %d hashes, %v", len(hs), err)
	}
	l.descending.Store(true)
	if _, err := s.List(ctx, storage.Hash{}, 3); !errors.Is(err, wire.ErrMalformed) {
		t.Fatalf("list reply out of order: err = %v, want ErrMalformed", err)
	}
	if hs, err := s.List(ctx, storage.Hash{}, 0); err != nil || len(hs) != 0 {
		t.Fatalf("list max 0 = %d hashes, %v", len(hs), err)
	}
}

// Shutting the server down lets the requests it is running finish and fails
// the others with an error that says so; the client then fails fast until
// a store is back at the address, and reconnects by itself.
func TestServerShutdownFailsOutstanding(t *testing.T) {
	const inFlight, calls = 2, 6
	g := newGated(inFlight)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &closeListener{Listener: ln, closed: make(chan struct{})}
	addr, srv := serve(t, g, cl, store.Options{Logger: zaptest.NewLogger(t), MaxInFlight: inFlight})
	sent := make(chan struct{}, calls)
	s := dial(t, addr, remote.WithSentHook(remote.Options{Window: 16, RedialBackoff: time.Hour, Batch: -1},
		func() { sent <- struct{}{} }))

	var wg sync.WaitGroup
	errs := make([]error, calls)
	for i := range calls {
		wg.Go(func() {
			data, h := storetest.Block(int64(i), 100)
			_, errs[i] = s.Put(context.Background(), h, data)
		})
	}
	// Every put is sent before the store shuts down: one sent after it
	// closed the connection would fail the connection, and with it the
	// puts whose replies the client had not yet read.
	for range calls {
		select {
		case <-sent:
		case <-time.After(20 * time.Second):
			t.Fatal("the puts were not all sent")
		}
	}
	waitReached(t, g)
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		srv.Close()
	}()
	// Close closes the listener and marks every connection as stopping
	// under one lock, and Serve takes that lock: once the listener is
	// closed, a Serve that returns ErrClosed means every connection is
	// stopping.
	select {
	case <-cl.closed:
	case <-time.After(20 * time.Second):
		t.Fatal("Close did not close the listener")
	}
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(context.Background(), ln2); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("serve on a closing server: %v", err)
	}
	close(g.gate)
	wg.Wait()
	<-closed

	var ok, failed int
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, remote.ErrConnLost) && errors.Is(err, storage.ErrClosed) &&
			strings.Contains(err.Error(), addr) && strings.Contains(err.Error(), "store shutting down"):
			// Sent, never read by the store.
			failed++
		default:
			t.Errorf("put during shutdown: %v", err)
		}
	}
	if ok != inFlight || failed != calls-inFlight {
		t.Fatalf("%d puts succeeded and %d failed, want %d and %d", ok, failed, inFlight, calls-inFlight)
	}

	// Nobody listens now: the next call tries once, later ones fail fast.
	err = s.Ping(context.Background())
	if err == nil || !strings.Contains(err.Error(), addr) {
		t.Fatalf("ping with the store gone: %v", err)
	}
	if err2 := s.Ping(context.Background()); err2 == nil || err2.Error() != err.Error() {
		t.Fatalf("second ping: %v, want the same error fast", err2)
	}
}

// closeListener is a listener that closes closed when it is closed.
type closeListener struct {
	net.Listener
	once   sync.Once
	closed chan struct{}
}

func (l *closeListener) Close() error {
	err := l.Listener.Close()
	l.once.Do(func() { close(l.closed) })
	return err
}

func TestRedialAfterStoreRestart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ms := memstore.New("m", 0)
	srv := store.NewServer(ms, token, store.Options{Logger: zaptest.NewLogger(t)})
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background(), ln) }()
	s := dial(t, addr, remote.Options{})
	if err := s.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen again on %s: %v", addr, err)
	}
	serve(t, ms, ln2, store.Options{Logger: zaptest.NewLogger(t)})
	// The first call may still see the old connection fail.
	if err := s.Ping(context.Background()); err != nil {
		if !errors.Is(err, remote.ErrConnLost) {
			t.Fatalf("first ping after restart: %v", err)
		}
		if err := s.Ping(context.Background()); err != nil {
			t.Fatalf("second ping after restart: %v", err)
		}
	}
}

func TestClosedStoreFailsOutstandingAndLater(t *testing.T) {
	g := newGated(1)
	addr, _ := serve(t, g, nil, store.Options{Logger: zaptest.NewLogger(t)})
	s, err := remote.Dial(context.Background(), addr, token, remote.Options{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		data, h := storetest.Block(1, 10)
		_, err := s.Put(context.Background(), h, data)
		done <- err
	}()
	waitReached(t, g)
	s.Close()
	if err := <-done; !errors.Is(err, storage.ErrClosed) || !strings.Contains(err.Error(), addr) {
		t.Fatalf("outstanding put on close: %v", err)
	}
	close(g.gate)
	if err := s.Ping(context.Background()); !errors.Is(err, storage.ErrClosed) {
		t.Fatalf("ping after close: %v", err)
	}
}

// TestGetInto: a block that fits the caller's buffer is read into it; one
// that does not is allocated; a caller that gave up on a slow reply gets
// its buffer back untouched, whenever the reply arrives (run with -race: a
// late write into the buffer would be a data race with the caller's).
func TestGetInto(t *testing.T) {
	ctx := context.Background()
	mem := memstore.New("into", 0)
	data, h := storetest.Block(7, 100_000)
	if _, err := mem.Put(ctx, h, data); err != nil {
		t.Fatal(err)
	}
	addr, _ := serve(t, mem, nil, store.Options{})
	s := dial(t, addr, remote.Options{})

	dst := make([]byte, 200_000)
	got, err := s.GetInto(ctx, h, dst)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("GetInto: %v, equal %v", err, bytes.Equal(got, data))
	}
	if &got[0] != &dst[0] {
		t.Fatal("GetInto allocated although the block fits the buffer")
	}
	small := make([]byte, 10)
	got, err = s.GetInto(ctx, h, small)
	if err != nil || !bytes.Equal(got, data) || &got[0] == &small[0] {
		t.Fatalf("GetInto with a short buffer: %v", err)
	}

	// Each call is cancelled once the store has it, and the store answers
	// it only after that.
	arrived := make(chan struct{}, 1)
	release := make(chan struct{}, 20)
	mem.SetFaults(memstore.Faults{Get: func(storage.Hash) error {
		arrived <- struct{}{}
		<-release
		return nil
	}})
	var left [][]byte
	for range 20 {
		buf := make([]byte, len(data))
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			_, err := s.GetInto(cctx, h, buf)
			done <- err
		}()
		select {
		case <-arrived:
		case err := <-done:
			t.Fatalf("GetInto returned before the store had it: %v", err)
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled GetInto: %v", err)
		}
		for i := range buf { // the caller owns buf again
			buf[i] = 0xaa
		}
		left = append(left, buf)
		release <- struct{}{}
	}
	mem.SetFaults(memstore.Faults{})
	close(release)
	// Replies come in order on the one connection: once this one is in,
	// every earlier one has been read.
	if got, err := s.GetInto(ctx, h, dst); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("GetInto after cancelled calls: %v", err)
	}
	for i, buf := range left {
		if bytes.Count(buf, []byte{0xaa}) != len(buf) {
			t.Fatalf("the reply to cancelled call %d was written into the buffer its caller had taken back", i)
		}
	}
}
