package mpiio

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/ckptio/ckptio/collective"
	"github.com/ckptio/ckptio/storage"
)

// pending is a checkpoint draining in the background.
type pending struct {
	done chan struct{}
	step int64
	res  collective.Result
	err  error
}

// staging holds a rank's copy of its regions for an asynchronous
// checkpoint; reused from one checkpoint to the next (the next one waits
// for the previous, so only one is in use).
type staging struct {
	bufs [][]byte
}

func (s *staging) copyOf(regions []collective.Region) []collective.Region {
	out := make([]collective.Region, len(regions))
	for i, r := range regions {
		if i >= len(s.bufs) {
			s.bufs = append(s.bufs, nil)
		}
		if cap(s.bufs[i]) < len(r.Data) {
			s.bufs[i] = make([]byte, len(r.Data))
		}
		b := s.bufs[i][:len(r.Data)]
		copy(b, r.Data)
		out[i] = collective.Region{Name: r.Name, Data: b}
	}
	return out
}

// asyncAllowed reports whether this rank can copy its regions within the
// bound, logging the fallback once.
func (cp *Checkpointer) asyncAllowed(regions []collective.Region) bool {
	if cp.cfg.Sync {
		return false
	}
	var n int64
	for _, r := range regions {
		n += int64(len(r.Data))
	}
	if n <= cp.cfg.AsyncMemory {
		return true
	}
	cp.fallbackOnce.Do(func() {
		cp.cfg.Logger.Warn("protected regions exceed the asynchronous copy bound; checkpointing synchronously",
			zap.Int("rank", cp.Rank()), zap.String("regions", storage.FormatSize(n)),
			zap.String("bound", storage.FormatSize(cp.cfg.AsyncMemory)), zap.String("raise it with", "CKPT_ASYNC_MEMORY"))
	})
	return false
}

// start runs the collective checkpoint of regions and the frozen capture
// c (nil: no files) in the background, begun at began, and reports it
// (st) before it is done.
func (cp *Checkpointer) start(ctx context.Context, meta Meta, regions []collective.Region, c *capture, st CheckpointStats, began time.Time) {
	p := &pending{done: make(chan struct{}), step: meta.Step}
	cp.mu.Lock()
	cp.pending = p
	cp.mu.Unlock()
	go func() {
		defer close(p.done)
		p.res, p.err = cp.checkpoint(context.WithoutCancel(ctx), meta, regions, c)
		cp.report(st, time.Time{}, began, p.res, p.err)
	}()
}

// Wait waits for the checkpoint draining in the background, if any, and
// returns its version (0 when none was pending or it failed) or, with
// Config.OnFailure Abort, its error; with Continue a failure is logged and
// kept for LastError. Collective in effect: every rank gets the same
// outcome. After Wait, the error is not reported again.
func (cp *Checkpointer) Wait(ctx context.Context) (int64, error) {
	cp.mu.Lock()
	p := cp.pending
	cp.mu.Unlock()
	if p == nil {
		return 0, nil
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	cp.mu.Lock()
	cp.pending = nil
	cp.mu.Unlock()
	if p.err != nil {
		return 0, cp.failed(p.step, fmt.Errorf("mpiio: the asynchronous checkpoint of step %d failed, nothing was committed: %w", p.step, p.err))
	}
	return p.res.Version, nil
}

// LastResult returns the figures of the last checkpoint that Wait or a
// synchronous Checkpoint returned.
func (cp *Checkpointer) LastResult() collective.Result {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return cp.last
}
