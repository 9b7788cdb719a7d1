package mpiio

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/ckptio/ckptio/collective"
	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/client"
	"github.com/ckptio/ckptio/storage/manifest"
)

// Stream is a checkpoint written by a program that serializes itself: each
// rank writes named objects, then all ranks Commit.
type Stream struct {
	cp    *Checkpointer
	order []string
	bufs  map[string]*bytes.Buffer
}

// Begin starts a stream checkpoint on this rank (not collective).
func (cp *Checkpointer) Begin(ctx context.Context) (*Stream, error) {
	if err := cp.check(); err != nil {
		return nil, err
	}
	return &Stream{cp: cp, bufs: map[string]*bytes.Buffer{}}, nil
}

// Writer returns the writer of this rank's object name; writing to the same
// name again appends. The bytes are held in memory until Commit.
func (s *Stream) Writer(name string) (io.Writer, error) {
	if !regionName.MatchString(name) {
		return nil, fmt.Errorf("mpiio: object name %q: want 1-64 characters of A-Z a-z 0-9 . _ -", name)
	}
	b, ok := s.bufs[name]
	if !ok {
		b = &bytes.Buffer{}
		s.bufs[name] = b
		s.order = append(s.order, name)
	}
	return b, nil
}

// Commit writes every rank's objects as one version. Collective.
func (s *Stream) Commit(ctx context.Context, meta Meta) (int64, error) {
	regions := make([]collective.Region, len(s.order))
	for i, n := range s.order {
		regions[i] = collective.Region{Name: n, Data: s.bufs[n].Bytes()}
	}
	if _, err := s.cp.Wait(ctx); err != nil {
		return 0, err
	}
	r, err := s.cp.checkpoint(ctx, meta, regions)
	return r.Version, err
}

type manifestCache struct {
	once sync.Once
	m    *manifest.Manifest
	err  error
}

// OpenReader reads rank's object name from version v (0 = the latest at
// the time of the call). It is not collective: any rank can read any rank's
// data, which is how a job restarted on a different number of ranks
// redistributes its state.
func (cp *Checkpointer) OpenReader(ctx context.Context, v int64, rank int, name string) (io.ReadCloser, error) {
	if err := cp.check(); err != nil {
		return nil, err
	}
	m, err := cp.manifestOf(ctx, v)
	if err != nil {
		return nil, err
	}
	var blocks []manifest.Block
	for _, b := range m.Blocks {
		if b.Rank == int32(rank) && b.Object == name {
			blocks = append(blocks, b)
		}
	}
	if len(blocks) == 0 {
		return nil, fmt.Errorf("mpiio: %s version %d has no object %q of rank %d (ranks: %s, regions: %s)",
			cp.cfg.Job, m.Version, name, rank, m.Meta[catalog.MetaRanks], m.Meta[catalog.MetaRegions])
	}
	r := client.NewReader(cp.pool.Resolve, cp.backend.Reader)
	return client.NewObjectReader(ctx, r, blocks, 0)
}

func (cp *Checkpointer) manifestOf(ctx context.Context, v int64) (*manifest.Manifest, error) {
	if v == 0 {
		return cp.mc.Manifest(ctx, cp.cfg.Job, 0)
	}
	cp.mu.Lock()
	c, ok := cp.manifest[v]
	if !ok {
		c = &manifestCache{}
		cp.manifest[v] = c
	}
	cp.mu.Unlock()
	c.once.Do(func() { c.m, c.err = cp.mc.Manifest(ctx, cp.cfg.Job, v) })
	return c.m, c.err
}
