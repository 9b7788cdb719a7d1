package mpiio_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ckptio/ckptio/collective"
	"github.com/ckptio/ckptio/mpiio"
	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/manager/managertest"
	"github.com/ckptio/ckptio/storage/memstore"
)

// TestFailureContinues: with OnFailure Continue (the default), a
// checkpoint that fails (every store refuses), synchronous or
// asynchronous, returns no error: every rank logs it with the step and
// the cause, LastError has it, the latest version stays the one before,
// and the next checkpoint commits.
func TestFailureContinues(t *testing.T) {
	for _, sync := range []bool{true, false} {
		t.Run(fmt.Sprintf("sync=%v", sync), func(t *testing.T) {
			cl := managertest.New(t, managertest.Options{Stores: 2})
			core, logs := observer.New(zap.ErrorLevel)
			const ranks = 3
			cfg := mpiio.Config{Job: "cont", Sync: sync, OnFailure: mpiio.Continue, Logger: zap.New(core)}
			run(t, cl, ranks, cfg, func(cp *mpiio.Checkpointer, c collective.Comm) error {
				ctx := context.Background()
				cp.Protect("f", field(c.Rank(), 1))
				// ckpt makes a checkpoint of step and returns what it ended
				// with: the version (0 when it failed) and LastError.
				ckpt := func(step int64) (int64, error) {
					v, err := cp.Checkpoint(ctx, mpiio.Meta{Step: step})
					if err != nil {
						return 0, fmt.Errorf("rank %d: checkpoint of step %d returned %v under Continue", c.Rank(), step, err)
					}
					if !sync {
						if v, err = cp.Wait(ctx); err != nil {
							return 0, fmt.Errorf("rank %d: Wait after step %d returned %v under Continue", c.Rank(), step, err)
						}
					}
					return v, nil
				}
				if v, err := ckpt(1); err != nil || v != 1 || cp.LastError() != nil {
					return fmt.Errorf("rank %d: first checkpoint: %d, %v, last error %v", c.Rank(), v, err, cp.LastError())
				}
				c.Barrier()
				if c.Rank() == 0 {
					for _, s := range cl.Stores {
						s.SetFaults(memstore.Faults{Put: func(storage.Hash) error { return storage.ErrDiskFull }})
					}
				}
				c.Barrier()
				cp.Protect("f", field(c.Rank(), 2))
				v, err := ckpt(2)
				if err != nil {
					return err
				}
				if le := cp.LastError(); v != 0 || le == nil || !strings.Contains(le.Error(), "nothing") {
					return fmt.Errorf("rank %d: failed checkpoint gave version %d, last error %v; want 0 and the failure", c.Rank(), v, le)
				}
				if v, ok, err := cp.Latest(ctx); err != nil || !ok || v != 1 {
					return fmt.Errorf("latest after the failure: %d %v %v; want 1", v, ok, err)
				}
				c.Barrier()
				if c.Rank() == 0 {
					for _, s := range cl.Stores {
						s.SetFaults(memstore.Faults{})
					}
				}
				c.Barrier()
				if v, err := ckpt(3); err != nil || v != 2 || cp.LastError() != nil {
					return fmt.Errorf("rank %d: checkpoint after the failure: %d, %v, last error %v; want version 2", c.Rank(), v, err, cp.LastError())
				}
				return nil
			})
			seen := map[int64]bool{}
			for _, e := range logs.FilterMessageSnippet("checkpoint failed").All() {
				f := e.ContextMap()
				if f["step"] != int64(2) || !strings.Contains(fmt.Sprint(f["error"]), "disk") {
					t.Errorf("failure line without the step or the cause: %v", f)
				}
				seen[f["rank"].(int64)] = true
			}
			if len(seen) != ranks {
				t.Fatalf("the failure was logged by ranks %v, want all %d", seen, ranks)
			}
		})
	}
}
