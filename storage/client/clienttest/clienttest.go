// Package clienttest provides an in-memory manager (Catalog) and in-memory
// stores so that code above the storage layer (the collective checkpoint
// logic, mpiio) can be unit tested without daemons. The same code is tested
// against the real daemons in integration tests.
package clienttest

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/client"
	"github.com/ckptio/ckptio/storage/manifest"
	"github.com/ckptio/ckptio/storage/memstore"
)

// Cluster is an in-memory manager with n in-memory stores.
type Cluster struct {
	Mem map[string]*memstore.Store

	mu       sync.Mutex
	nextTxn  int
	txns     map[string]string // txn -> job
	versions map[string][]*manifest.Manifest
	aborts   int
}

// New returns a cluster with n stores named st-0 .. st-(n-1).
func New(n int) *Cluster {
	c := &Cluster{Mem: map[string]*memstore.Store{}, txns: map[string]string{}, versions: map[string][]*manifest.Manifest{}}
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("st-%d", i)
		c.Mem[id] = memstore.New(id, 0)
	}
	return c
}

// Pool returns a client.Pool over the cluster's stores.
func (c *Cluster) Pool() *client.Pool {
	return client.NewPool(c, func(ctx context.Context, addr string) (storage.BlockStore, error) {
		s, ok := c.Mem[addr]
		if !ok {
			return nil, fmt.Errorf("no store at %s", addr)
		}
		return nopClose{s}, nil
	}, nil)
}

type nopClose struct{ storage.BlockStore }

func (nopClose) Close() error { return nil }

// Stores implements client.Catalog; a store's address is its ID.
func (c *Cluster) Stores(ctx context.Context) ([]catalog.StoreInfo, error) {
	var out []catalog.StoreInfo
	for id, s := range c.Mem {
		st, _ := s.Stat(ctx)
		out = append(out, catalog.StoreInfo{Heartbeat: catalog.Heartbeat{ID: id, Addr: id, Usage: st.Usage}, Alive: true, LastSeen: time.Now()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Begin implements client.Catalog.
func (c *Cluster) Begin(ctx context.Context, job string) (catalog.Txn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nextTxn++
	id := fmt.Sprintf("txn-%d", c.nextTxn)
	c.txns[id] = job
	return catalog.Txn{ID: id, Job: job}, nil
}

// Renew implements client.Catalog.
func (c *Cluster) Renew(ctx context.Context, id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.txns[id]; !ok {
		return catalog.ErrUnknownTxn
	}
	return nil
}

// Commit implements client.Catalog; the manifest goes through its Arrow
// encoding, as with the real manager.
func (c *Cluster) Commit(ctx context.Context, id string, m *manifest.Manifest) (int64, error) {
	raw, err := manifest.Marshal(m)
	if err != nil {
		return 0, err
	}
	m2, err := manifest.Unmarshal(raw)
	if err != nil {
		return 0, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	job, ok := c.txns[id]
	if !ok {
		return 0, catalog.ErrUnknownTxn
	}
	delete(c.txns, id)
	m2.Version = int64(len(c.versions[job]) + 1)
	c.versions[job] = append(c.versions[job], m2)
	return m2.Version, nil
}

// Abort implements client.Catalog.
func (c *Cluster) Abort(ctx context.Context, id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.txns, id)
	c.aborts++
	return nil
}

// Manifest implements client.Catalog (version 0 = latest).
func (c *Cluster) Manifest(ctx context.Context, job string, v int64) (*manifest.Manifest, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	vs := c.versions[job]
	if len(vs) == 0 {
		return nil, fmt.Errorf("job %s: %w", job, catalog.ErrNoVersions)
	}
	if v == 0 {
		v = int64(len(vs))
	}
	if v < 1 || v > int64(len(vs)) {
		return nil, fmt.Errorf("job %s has no version %d: %w", job, v, catalog.ErrUnknownVersion)
	}
	return vs[v-1], nil
}

// Versions returns the committed versions of job.
func (c *Cluster) Versions(job string) []*manifest.Manifest {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*manifest.Manifest(nil), c.versions[job]...)
}

// Aborts counts aborted transactions.
func (c *Cluster) Aborts() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.aborts
}
