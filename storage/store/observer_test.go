package store_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/memstore"
	"github.com/ckptio/ckptio/storage/remote"
	"github.com/ckptio/ckptio/storage/store"
	"github.com/ckptio/ckptio/storage/wire"
)

// observed is one call of Observer.Request.
type observed struct {
	op      wire.Op
	st      wire.Status
	in, out int
}

type recorder struct {
	mu    sync.Mutex
	calls []observed
	conns []string
}

func (r *recorder) Connection(outcome string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.conns = append(r.conns, outcome)
}

func (r *recorder) connections() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.conns)
}

func (r *recorder) Request(op wire.Op, st wire.Status, in, out int, took time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if took < 0 {
		panic("negative duration")
	}
	r.calls = append(r.calls, observed{op, st, in, out})
}

func (r *recorder) take() []observed {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.calls
	r.calls = nil
	return c
}

// TestObserverHearsEveryRequest: the observer is told of each request
// before its reply leaves, with its op, status and payload sizes.
func TestObserverHearsEveryRequest(t *testing.T) {
	rec := &recorder{}
	addr, _ := serve(t, memstore.New("s1", 1<<20), store.Options{Observer: rec})
	ctx := context.Background()
	c, err := remote.Dial(ctx, addr, token, remote.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rec.take() // whatever the dial asked

	block := make([]byte, 5000)
	h := storage.Sum(block)
	if _, err := c.Put(ctx, h, block); err != nil {
		t.Fatal(err)
	}
	if got := rec.take(); len(got) != 1 || got[0].op != wire.OpPutBlock || got[0].st != wire.StatusOK || got[0].in < len(block) || got[0].out == 0 {
		t.Fatalf("after a put the observer heard %+v; want one put of at least %d bytes in", got, len(block))
	}
	// The connection was reported before its first request was read.
	if got := rec.connections(); !slices.Equal(got, []string{store.ConnAccepted}) {
		t.Fatalf("the observer heard connections %v, want [accepted]", got)
	}
	if _, err := c.Get(ctx, h); err != nil {
		t.Fatal(err)
	}
	if got := rec.take(); len(got) != 1 || got[0].op != wire.OpGetBlock || got[0].st != wire.StatusOK || got[0].out != len(block) {
		t.Fatalf("after a get the observer heard %+v; want one get of %d bytes out", got, len(block))
	}
	if _, err := c.Get(ctx, storage.Sum([]byte("absent"))); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("get of a missing block: %v", err)
	}
	if got := rec.take(); len(got) != 1 || got[0].op != wire.OpGetBlock || got[0].st != wire.StatusNotFound {
		t.Fatalf("after a failed get the observer heard %+v; want one get answered not found", got)
	}
	big := make([]byte, 2<<20) // over the quota
	if _, err := c.Put(ctx, storage.Sum(big), big); !errors.Is(err, storage.ErrQuotaExceeded) {
		t.Fatalf("put over the quota: %v", err)
	}
	if got := rec.take(); len(got) != 1 || got[0].st != wire.StatusQuotaExceeded {
		t.Fatalf("after a refused put the observer heard %+v; want quota exceeded", got)
	}
}

// TestObserverHearsRefusedConnections: a wrong token and a connection
// beyond MaxConns are told apart.
func TestObserverHearsRefusedConnections(t *testing.T) {
	rec := &recorder{}
	ended := make(chan struct{}, 4)
	addr, _ := serveWith(t, memstore.New("s1", 0), store.Options{Observer: rec, MaxConns: 1}, nil,
		func(s *store.Server) { store.SetConnDone(s, func() { ended <- struct{}{} }) })
	ctx := context.Background()
	if _, err := remote.Dial(ctx, addr, []byte("not the token"), remote.Options{}); !errors.Is(err, storage.ErrUnauthorized) {
		t.Fatalf("dial with a wrong token: %v", err)
	}
	<-ended // the refused connection gave its slot back
	c, err := remote.Dial(ctx, addr, token, remote.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Ping(ctx); err != nil { // answered after the accepted connection was reported
		t.Fatal(err)
	}
	// The busy refusal is reported before it is sent.
	if _, err := remote.Dial(ctx, addr, token, remote.Options{}); err == nil {
		t.Fatal("a second connection beyond MaxConns 1 was accepted")
	}
	want := []string{store.ConnUnauthorized, store.ConnAccepted, store.ConnBusy}
	if got := rec.connections(); !slices.Equal(got, want) {
		t.Fatalf("the observer heard connections %v, want %v", got, want)
	}
}
