package mpiio_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ckptio/ckptio/collective"
	"github.com/ckptio/ckptio/mpiio"
	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/manager/managertest"
	"github.com/ckptio/ckptio/storage/memstore"
)

// TestOnCheckpointReportsEveryCheckpoint: every rank hears of each of its
// checkpoints, asynchronous and synchronous, committed and failed, with
// the version's figures, before Wait returns; and the wiring of
// docs/mpiio.md ("Metrics") counts them in Prometheus.
func TestOnCheckpointReportsEveryCheckpoint(t *testing.T) {
	cl := managertest.New(t, managertest.Options{Stores: 2})
	var mu sync.Mutex
	got := map[int][]mpiio.CheckpointStats{}
	reg := prometheus.NewRegistry()
	record := checkpointMetrics(reg)
	cfg := mpiio.Config{Job: "stats", OnCheckpoint: func(st mpiio.CheckpointStats) {
		mu.Lock()
		got[st.Rank] = append(got[st.Rank], st)
		mu.Unlock()
		record(st)
	}}
	const ranks = 3
	run(t, cl, ranks, cfg, func(cp *mpiio.Checkpointer, c collective.Comm) error {
		ctx := context.Background()
		f := field(c.Rank(), 1)
		cp.Protect("f", f)
		if _, err := cp.Checkpoint(ctx, mpiio.Meta{Step: 1}); err != nil {
			return err
		}
		if _, err := cp.Wait(ctx); err != nil {
			return err
		}
		mu.Lock()
		n := len(got[c.Rank()])
		mu.Unlock()
		if n != 1 {
			return fmt.Errorf("rank %d: %d reports once Wait returned, want 1", c.Rank(), n)
		}
		// A background failure: every store refuses.
		c.Barrier()
		if c.Rank() == 0 {
			for _, s := range cl.Stores {
				s.SetFaults(memstore.Faults{Put: func(storage.Hash) error { return storage.ErrDiskFull }})
			}
		}
		c.Barrier()
		copy(f, field(c.Rank(), 2))
		if _, err := cp.Checkpoint(ctx, mpiio.Meta{Step: 2}); err != nil {
			return err
		}
		if _, err := cp.Wait(ctx); err == nil {
			return fmt.Errorf("rank %d: the step-2 checkpoint committed on refusing stores", c.Rank())
		}
		c.Barrier()
		if c.Rank() == 0 {
			for _, s := range cl.Stores {
				s.SetFaults(memstore.Faults{})
			}
		}
		c.Barrier()
		return nil
	})
	// A synchronous checkpoint.
	cfg.Sync = true
	run(t, cl, ranks, cfg, func(cp *mpiio.Checkpointer, c collective.Comm) error {
		cp.Protect("f", field(c.Rank(), 3))
		_, err := cp.Checkpoint(context.Background(), mpiio.Meta{Step: 3})
		return err
	})

	var logical int64
	for r := range ranks {
		sts := got[r]
		if len(sts) != 3 {
			t.Fatalf("rank %d heard of %d checkpoints, want 3: %+v", r, len(sts), sts)
		}
		ok, failed, syncd := sts[0], sts[1], sts[2]
		if ok.Err != nil || ok.Version != 1 || !ok.Async || ok.Step != 1 || ok.Job != "stats" || ok.LogicalBytes == 0 || ok.SentBytes < ok.NewBytes || ok.NewBytes == 0 || ok.Duration <= 0 {
			t.Errorf("rank %d, step 1: %+v", r, ok)
		}
		if logical == 0 {
			logical = ok.LogicalBytes
		} else if ok.LogicalBytes != logical {
			t.Errorf("rank %d reports %d logical bytes, rank 0 %d: the figures are the version's", r, ok.LogicalBytes, logical)
		}
		if failed.Err == nil || failed.Version != 0 || failed.Step != 2 || failed.SentBytes != 0 {
			t.Errorf("rank %d, failed step 2: %+v", r, failed)
		}
		if syncd.Err != nil || syncd.Version != 2 || syncd.Async || syncd.Blocked < syncd.Duration {
			t.Errorf("rank %d, synchronous step 3: %+v (a synchronous checkpoint blocks for all of it)", r, syncd)
		}
	}
	for result, want := range map[string]float64{"ok": 2, "error": 1} {
		if n := sample(t, reg, "ckpt_app_checkpoints_total", result); n != want {
			t.Errorf("ckpt_app_checkpoints_total{result=%s} = %v, want %v (recorded on rank 0 only)", result, n, want)
		}
	}
	if n := sample(t, reg, "ckpt_app_checkpoint_sent_bytes_total", ""); n <= 0 {
		t.Errorf("ckpt_app_checkpoint_sent_bytes_total = %v, want the bytes of steps 1 and 3", n)
	}
}

// sample returns the value of the counter name in reg, the one labelled
// result=result when result is not empty.
func sample(t *testing.T, reg *prometheus.Registry, name, result string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if result == "" || (len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == result) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
