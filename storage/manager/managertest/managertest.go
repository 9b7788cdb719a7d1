// Package managertest runs a real manager in the test process, behind a
// real HTTP server on loopback, with in-memory stores registered by
// heartbeat: the catalog code of production (storage/manager, the signed
// HTTP API, catalog.Client) without daemons, so that the layers above it
// (storage/version, collective, mpiio) can be tested and benchmarked
// end to end in one process. Integration tests with real store and
// manager processes are in storage/cluster/clustertest.
package managertest

import (
	"context"
	"fmt"
	"net/http/httptest"
	"sort"
	"testing"

	"go.uber.org/zap"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/manager"
	"github.com/ckptio/ckptio/storage/memstore"
)

// Token is the cluster token of every Cluster.
var Token = []byte("managertest-token")

// Cluster is a manager and its in-memory stores. A store's address is
// "mem:" + its ID; Dial resolves it.
type Cluster struct {
	Manager *manager.Manager
	Client  *catalog.Client
	Stores  map[string]*memstore.Store // by ID: st-0, st-1, ...
}

// Options tune New.
type Options struct {
	Stores int   // in-memory stores; 0 = 3
	Quota  int64 // per store; 0 = unlimited
	// Manager's options; Token and Logger are set by New when zero. GC and
	// repair do not run on their own unless set.
	Manager manager.Options
}

// New starts a manager on a temporary directory and registers the stores
// with one heartbeat each. Everything is closed when tb ends.
func New(tb testing.TB, opts Options) *Cluster {
	tb.Helper()
	if opts.Stores <= 0 {
		opts.Stores = 3
	}
	mo := opts.Manager
	if mo.Token == nil {
		mo.Token = Token
	}
	if mo.Logger == nil {
		mo.Logger = zap.NewNop()
	}
	if mo.GCEvery == 0 {
		mo.GCEvery = -1
	}
	if mo.RepairEvery == 0 {
		mo.RepairEvery = -1
	}
	c := &Cluster{Stores: map[string]*memstore.Store{}}
	if mo.DialStore == nil {
		mo.DialStore = func(ctx context.Context, id, addr string) (manager.GCStore, error) {
			s, err := c.Dial(ctx, addr)
			if err != nil {
				return nil, err
			}
			return s.(manager.GCStore), nil
		}
	}
	m, err := manager.Open(tb.TempDir(), mo)
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(m.Handler())
	tb.Cleanup(func() {
		srv.Close()
		m.Close()
	})
	c.Manager = m
	c.Client = catalog.NewClient(srv.Listener.Addr().String(), mo.Token, catalog.ClientOptions{})
	for i := 0; i < opts.Stores; i++ {
		id := fmt.Sprintf("st-%d", i)
		c.Stores[id] = memstore.New(id, opts.Quota)
	}
	if err := c.Heartbeat(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return c
}

// Heartbeat reports every store's figures to the manager now, as the store
// daemons do every few seconds.
func (c *Cluster) Heartbeat(ctx context.Context) error {
	for _, id := range c.IDs() {
		st, err := c.Stores[id].Stat(ctx)
		if err != nil {
			return err
		}
		if err := c.Manager.Heartbeat(catalog.Heartbeat{ID: id, Addr: "mem:" + id, Usage: st.Usage}); err != nil {
			return err
		}
	}
	return nil
}

// IDs returns the stores' IDs in order.
func (c *Cluster) IDs() []string {
	var ids []string
	for id := range c.Stores {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Dial returns the store at addr ("mem:ID"). Closing it does nothing.
func (c *Cluster) Dial(ctx context.Context, addr string) (storage.BlockStore, error) {
	var id string
	if _, err := fmt.Sscanf(addr, "mem:%s", &id); err != nil {
		return nil, fmt.Errorf("managertest: no store at %s", addr)
	}
	s, ok := c.Stores[id]
	if !ok {
		return nil, fmt.Errorf("managertest: no store at %s", addr)
	}
	return nopClose{s}, nil
}

type nopClose struct{ *memstore.Store }

func (nopClose) Close() error { return nil }
