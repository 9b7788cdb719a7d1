package mpiio

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/ckptio/ckptio/collective"
	"github.com/ckptio/ckptio/storage/version"
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

// Commit writes every rank's objects, and its protected files, as one
// version. Collective.
func (s *Stream) Commit(ctx context.Context, meta Meta) (int64, error) {
	regions := make([]collective.Region, len(s.order))
	for i, n := range s.order {
		regions[i] = collective.Region{Name: n, Data: s.bufs[n].Bytes()}
	}
	if _, err := s.cp.Wait(ctx); err != nil {
		return 0, err
	}
	r, err := s.cp.checkpoint(ctx, meta, regions, s.cp.newCapture())
	return r.Version, err
}

type snapshotCache struct {
	once sync.Once
	s    *version.Snapshot
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
	s, err := cp.snapshot(ctx, v)
	if err != nil {
		return nil, err
	}
	r, err := cp.job.NewReader().OpenObject(ctx, s, int32(rank), name)
	if err != nil {
		return nil, fmt.Errorf("mpiio: %w", err)
	}
	return r, nil
}

// snapshot opens version v, once per version (0 = the latest, every time).
func (cp *Checkpointer) snapshot(ctx context.Context, v int64) (*version.Snapshot, error) {
	if v == 0 {
		return cp.job.Open(ctx, 0)
	}
	cp.mu.Lock()
	c, ok := cp.snapshots[v]
	if !ok {
		c = &snapshotCache{}
		cp.snapshots[v] = c
	}
	cp.mu.Unlock()
	c.once.Do(func() { c.s, c.err = cp.job.Open(ctx, v) })
	return c.s, c.err
}
