// Package versiontest provides an in-memory catalog (version.Catalog) and
// in-memory stores so that the code above the version layer (the
// collective checkpoint, mpiio, the ckpt commands) and the version layer
// itself can be unit tested without daemons. Its catalog keeps manifests
// as the manager does: it decodes and validates each commit and stamps the
// version number into the stored encoding. The same code is tested against
// the real manager in process (storage/manager/managertest) and against
// real daemons (storage/cluster/clustertest).
package versiontest

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
	"github.com/ckptio/ckptio/storage/version"
)

// Cluster is an in-memory catalog with n in-memory stores.
type Cluster struct {
	Mem map[string]*memstore.Store

	mu       sync.Mutex
	nextTxn  int
	txns     map[string]string // txn -> job
	versions map[string][][]byte
	aborts   int
	commits  int
}

var _ version.Catalog = (*Cluster)(nil)

// New returns a cluster with n stores named st-0 .. st-(n-1).
func New(n int) *Cluster {
	c := &Cluster{Mem: map[string]*memstore.Store{}, txns: map[string]string{}, versions: map[string][][]byte{}}
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

// Job returns a version.Job of name over the cluster, with a pool of its
// own and the given writer options.
func (c *Cluster) Job(name string, w client.WriterOptions) *version.Job {
	return &version.Job{Name: name, Catalog: c, Pool: c.Pool(), Writer: w}
}

type nopClose struct{ storage.BlockStore }

func (nopClose) Close() error { return nil }

// Stores implements client.StoreLister; a store's address is its ID.
func (c *Cluster) Stores(ctx context.Context) ([]catalog.StoreInfo, error) {
	var out []catalog.StoreInfo
	for id, s := range c.Mem {
		st, _ := s.Stat(ctx)
		out = append(out, catalog.StoreInfo{Heartbeat: catalog.Heartbeat{ID: id, Addr: id, Usage: st.Usage}, Alive: true, LastSeen: time.Now()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Begin implements version.Catalog.
func (c *Cluster) Begin(ctx context.Context, job string) (catalog.Txn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nextTxn++
	id := fmt.Sprintf("txn-%d", c.nextTxn)
	c.txns[id] = job
	return catalog.Txn{ID: id, Job: job}, nil
}

// Renew implements version.Catalog.
func (c *Cluster) Renew(ctx context.Context, id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.txns[id]; !ok {
		return catalog.ErrUnknownTxn
	}
	return nil
}

// Commit implements version.Catalog: it decodes and validates the
// manifest, checks its job, and stores it stamped with its version number.
func (c *Cluster) Commit(ctx context.Context, id string, raw []byte) (int64, error) {
	m, err := manifest.Unmarshal(raw)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", catalog.ErrInvalid, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	job, ok := c.txns[id]
	if !ok {
		return 0, catalog.ErrUnknownTxn
	}
	if m.Job != job {
		return 0, fmt.Errorf("%w: manifest for job %q in a transaction of %q", catalog.ErrConflict, m.Job, job)
	}
	hdr := *m
	hdr.Blocks, hdr.Version, hdr.LogicalBytes = nil, int64(len(c.versions[job])+1), m.Size()
	stamped, err := manifest.Splice(&hdr, raw)
	if err != nil {
		return 0, err
	}
	delete(c.txns, id)
	c.versions[job] = append(c.versions[job], stamped)
	c.commits++
	return hdr.Version, nil
}

// Abort implements version.Catalog.
func (c *Cluster) Abort(ctx context.Context, id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.txns, id)
	c.aborts++
	return nil
}

// ManifestBytes implements version.Catalog (version 0 = latest).
func (c *Cluster) ManifestBytes(ctx context.Context, job string, v int64) ([]byte, int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	vs := c.versions[job]
	if len(vs) == 0 {
		return nil, 0, fmt.Errorf("job %s: %w", job, catalog.ErrNoVersions)
	}
	if v == 0 {
		v = int64(len(vs))
	}
	if v < 1 || v > int64(len(vs)) {
		return nil, 0, fmt.Errorf("job %s has no version %d: %w", job, v, catalog.ErrUnknownVersion)
	}
	return vs[v-1], v, nil
}

// Manifest returns version v of job (0 = the latest), decoded.
func (c *Cluster) Manifest(ctx context.Context, job string, v int64) (*manifest.Manifest, error) {
	raw, _, err := c.ManifestBytes(ctx, job, v)
	if err != nil {
		return nil, err
	}
	return manifest.Unmarshal(raw)
}

// Versions returns the committed versions of job, decoded.
func (c *Cluster) Versions(job string) []*manifest.Manifest {
	c.mu.Lock()
	raws := append([][]byte(nil), c.versions[job]...)
	c.mu.Unlock()
	var out []*manifest.Manifest
	for _, raw := range raws {
		m, err := manifest.Unmarshal(raw)
		if err != nil {
			panic(fmt.Sprintf("versiontest: a stored manifest does not decode: %v", err))
		}
		out = append(out, m)
	}
	return out
}

// Aborts counts aborted transactions.
func (c *Cluster) Aborts() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.aborts
}

// InFlight counts transactions begun and neither committed nor aborted.
func (c *Cluster) InFlight() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.txns)
}
