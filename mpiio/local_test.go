package mpiio_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/ckptio/ckptio/collective"
	"github.com/ckptio/ckptio/collective/local"
	"github.com/ckptio/ckptio/mpiio"
	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/manager/managertest"
	"github.com/ckptio/ckptio/storage/memstore"
)

// These tests run the library without mpirun: ranks are goroutines
// (collective/local) and the cluster is a real manager in this process
// with in-memory stores (managertest), injected through Config.Catalog and
// Config.Dial. The same paths run under mpirun against real daemons in
// mpiio_test.go.

// run opens a Checkpointer on each of n in-process ranks and runs fn on
// them; the Checkpointer is closed after fn. cfg.Catalog, when set, is
// used instead of cl's (a wrapper of it).
func run(t *testing.T, cl *managertest.Cluster, n int, cfg mpiio.Config, fn func(cp *mpiio.Checkpointer, c collective.Comm) error) {
	t.Helper()
	if cfg.Catalog == nil {
		cfg.Catalog = cl.Client
	}
	cfg.Dial = cl.Dial
	if cfg.OnFailure == "" {
		cfg.OnFailure = mpiio.Abort // these tests read failures from the calls
	}
	if cfg.BlockSize == 0 {
		cfg.BlockSize = 4096
	}
	err := local.Run(n, func(c collective.Comm) error {
		cp, err := mpiio.Open(context.Background(), c, cfg)
		if err != nil {
			return err
		}
		ferr := fn(cp, c)
		cerr := cp.Close(context.Background())
		return errors.Join(ferr, cerr)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// field is rank r's state at step s.
func field(r, s int) []float64 {
	f := make([]float64, 5000+100*r)
	for i := range f {
		f[i] = float64(r*1_000_000 + s*1000 + i)
	}
	return f
}

// TestAsyncCheckpointKeepsTheStateOfItsCall: an asynchronous Checkpoint
// returns before the version is written and the program overwrites its
// state at once; the version holds the state as of the call, Wait returns
// its number, and a restore brings that state back.
func TestAsyncCheckpointKeepsTheStateOfItsCall(t *testing.T) {
	cl := managertest.New(t, managertest.Options{Stores: 3})
	run(t, cl, 4, mpiio.Config{Job: "async"}, func(cp *mpiio.Checkpointer, c collective.Comm) error {
		ctx := context.Background()
		r := c.Rank()
		f := field(r, 1)
		if err := cp.Protect("f", f); err != nil {
			return err
		}
		v, err := cp.Checkpoint(ctx, mpiio.Meta{Step: 1})
		if err != nil || v != 0 {
			return fmt.Errorf("asynchronous checkpoint returned %d, %v; want 0 at once", v, err)
		}
		copy(f, field(r, 2)) // the program moves on while the leaders write
		if v, err = cp.Wait(ctx); err != nil || v != 1 {
			return fmt.Errorf("Wait = %d, %v; want version 1", v, err)
		}
		if v, err = cp.Wait(ctx); err != nil || v != 0 {
			return fmt.Errorf("a second Wait = %d, %v; want 0: nothing pending", v, err)
		}
		if err := cp.Restore(ctx, 1); err != nil {
			return err
		}
		if !slices.Equal(f, field(r, 1)) {
			return fmt.Errorf("rank %d restored another state than the one checkpointed", r)
		}
		if res := cp.LastResult(); res.Version != 1 || res.LogicalBytes == 0 {
			return fmt.Errorf("LastResult = %+v", res)
		}
		return nil
	})
	vs, err := cl.Client.Versions(context.Background(), "async")
	if err != nil || len(vs) != 1 || vs[0].Meta[catalog.MetaStep] != "1" || vs[0].Meta[catalog.MetaRanks] != "4" {
		t.Fatalf("versions %+v, %v", vs, err)
	}
}

// TestAsyncFailureComesBackOnEveryRank: a background checkpoint that fails
// (every store refuses) is reported by the next call on every rank, names
// the step, commits nothing, and does not stop the next checkpoint.
func TestAsyncFailureComesBackOnEveryRank(t *testing.T) {
	cl := managertest.New(t, managertest.Options{Stores: 2})
	run(t, cl, 3, mpiio.Config{Job: "fail"}, func(cp *mpiio.Checkpointer, c collective.Comm) error {
		ctx := context.Background()
		f := field(c.Rank(), 1)
		cp.Protect("f", f)
		if _, err := cp.Checkpoint(ctx, mpiio.Meta{Step: 1}); err != nil {
			return err
		}
		if _, err := cp.Wait(ctx); err != nil {
			return err
		}
		c.Barrier()
		if c.Rank() == 0 {
			for _, s := range cl.Stores {
				s.SetFaults(memstore.Faults{Put: func(storage.Hash) error { return storage.ErrDiskFull }})
			}
		}
		c.Barrier()
		copy(f, field(c.Rank(), 2))
		if _, err := cp.Checkpoint(ctx, mpiio.Meta{Step: 2}); err != nil {
			return fmt.Errorf("starting the background checkpoint: %w", err)
		}
		_, err := cp.Checkpoint(ctx, mpiio.Meta{Step: 3})
		if err == nil || !strings.Contains(err.Error(), "checkpoint of step 2 failed") || !strings.Contains(err.Error(), "nothing was committed") {
			return fmt.Errorf("rank %d: the next call returned %v; want the step-2 failure", c.Rank(), err)
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
		if _, err := cp.Checkpoint(ctx, mpiio.Meta{Step: 4}); err != nil {
			return err
		}
		v, err := cp.Wait(ctx)
		if err != nil || v != 2 {
			return fmt.Errorf("checkpoint after the stores recovered: %d, %v; want version 2", v, err)
		}
		return nil
	})
}

// TestSyncWhenTheCopyDoesNotFit: a rank whose regions exceed AsyncMemory
// checkpoints synchronously (Checkpoint returns the version), as does
// every rank with Sync.
func TestSyncWhenTheCopyDoesNotFit(t *testing.T) {
	cl := managertest.New(t, managertest.Options{})
	for _, cfg := range []mpiio.Config{{Job: "big", AsyncMemory: 1000}, {Job: "sync", Sync: true}} {
		run(t, cl, 2, cfg, func(cp *mpiio.Checkpointer, c collective.Comm) error {
			ctx := context.Background()
			cp.Protect("f", field(c.Rank(), 1))
			for want := int64(1); want <= 2; want++ {
				v, err := cp.Checkpoint(ctx, mpiio.Meta{Step: want})
				if err != nil || v != want {
					return fmt.Errorf("%s: synchronous checkpoint returned %d, %v; want %d", cfg.Job, v, err, want)
				}
			}
			return nil
		})
	}
}

// TestResumeAndRestartVersion: Resume restores the latest version, or
// CKPT_RESTART_VERSION when set, nothing with CKPT_RESTART_VERSION=none,
// and reports false on a job with none.
func TestResumeAndRestartVersion(t *testing.T) {
	cl := managertest.New(t, managertest.Options{})
	run(t, cl, 2, mpiio.Config{Job: "resume", Sync: true}, func(cp *mpiio.Checkpointer, c collective.Comm) error {
		ctx := context.Background()
		f := field(c.Rank(), 0)
		cp.Protect("f", f)
		if _, restored, err := cp.Resume(ctx); err != nil || restored {
			return fmt.Errorf("resume of a job with no version: %v, %v", restored, err)
		}
		for s := 1; s <= 3; s++ {
			copy(f, field(c.Rank(), s))
			if _, err := cp.Checkpoint(ctx, mpiio.Meta{Step: int64(s)}); err != nil {
				return err
			}
		}
		copy(f, field(c.Rank(), 9))
		if v, restored, err := cp.Resume(ctx); err != nil || !restored || v != 3 || !slices.Equal(f, field(c.Rank(), 3)) {
			return fmt.Errorf("resume: version %d, %v, %v", v, restored, err)
		}
		return nil
	})
	t.Setenv("CKPT_RESTART_VERSION", "2")
	run(t, cl, 2, mpiio.Config{Job: "resume", Sync: true}, func(cp *mpiio.Checkpointer, c collective.Comm) error {
		f := make([]float64, len(field(c.Rank(), 0)))
		cp.Protect("f", f)
		if v, restored, err := cp.Resume(context.Background()); err != nil || !restored || v != 2 || !slices.Equal(f, field(c.Rank(), 2)) {
			return fmt.Errorf("resume with CKPT_RESTART_VERSION=2: version %d, %v, %v", v, restored, err)
		}
		return nil
	})
	// none (ckptrun --fresh): nothing is restored although versions exist.
	t.Setenv("CKPT_RESTART_VERSION", mpiio.RestartNone)
	run(t, cl, 2, mpiio.Config{Job: "resume", Sync: true}, func(cp *mpiio.Checkpointer, c collective.Comm) error {
		f := make([]float64, len(field(c.Rank(), 0)))
		cp.Protect("f", f)
		if v, restored, err := cp.Resume(context.Background()); err != nil || restored || v != 0 || !slices.Equal(f, make([]float64, len(f))) {
			return fmt.Errorf("resume with CKPT_RESTART_VERSION=none: version %d, %v, %v", v, restored, err)
		}
		return nil
	})
}

// TestStreamReadByAnyRank: objects written through a stream are read back
// by any rank, for any rank, and an unknown object is named in the error.
func TestStreamReadByAnyRank(t *testing.T) {
	cl := managertest.New(t, managertest.Options{})
	run(t, cl, 3, mpiio.Config{Job: "stream"}, func(cp *mpiio.Checkpointer, c collective.Comm) error {
		ctx := context.Background()
		s, err := cp.Begin(ctx)
		if err != nil {
			return err
		}
		w, err := s.Writer("state")
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "rank %d %s", c.Rank(), strings.Repeat("x", 10_000*c.Rank()))
		v, err := s.Commit(ctx, mpiio.Meta{Step: 5})
		if err != nil || v != 1 {
			return fmt.Errorf("stream commit: %d, %v", v, err)
		}
		other := (c.Rank() + 1) % c.Size()
		rd, err := cp.OpenReader(ctx, v, other, "state")
		if err != nil {
			return err
		}
		got, err := io.ReadAll(rd)
		rd.Close()
		want := fmt.Sprintf("rank %d %s", other, strings.Repeat("x", 10_000*other))
		if err != nil || !bytes.Equal(got, []byte(want)) {
			return fmt.Errorf("rank %d reading rank %d: %d bytes, %v", c.Rank(), other, len(got), err)
		}
		if _, err := cp.OpenReader(ctx, v, other, "nope"); err == nil || !strings.Contains(err.Error(), `no object "nope"`) {
			return fmt.Errorf("unknown object: %v", err)
		}
		return nil
	})
}

// TestCloseWaitsForTheBackgroundCheckpoint: Close returns once the version
// is committed.
func TestCloseWaitsForTheBackgroundCheckpoint(t *testing.T) {
	cl := managertest.New(t, managertest.Options{})
	run(t, cl, 2, mpiio.Config{Job: "close"}, func(cp *mpiio.Checkpointer, c collective.Comm) error {
		cp.Protect("f", field(c.Rank(), 1))
		_, err := cp.Checkpoint(context.Background(), mpiio.Meta{Step: 1})
		return err
	})
	if vs, err := cl.Client.Versions(context.Background(), "close"); err != nil || len(vs) != 1 {
		t.Fatalf("after Close: versions %+v, %v; want the background one committed", vs, err)
	}
}

func TestInjectedCatalogNeedsADialer(t *testing.T) {
	cl := managertest.New(t, managertest.Options{})
	err := local.Run(2, func(c collective.Comm) error {
		_, err := mpiio.Open(context.Background(), c, mpiio.Config{Job: "j", Catalog: cl.Client})
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "Config.Dial") {
		t.Fatalf("Open with a catalog and no dialer: %v", err)
	}
}
