package collective_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ckptio/ckptio/collective"
	"github.com/ckptio/ckptio/collective/local"
	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/client"
	"github.com/ckptio/ckptio/storage/memstore"
	"github.com/ckptio/ckptio/storage/version"
	"github.com/ckptio/ckptio/storage/version/versiontest"
)

// discarding is a catalog that deletes the blocks it is asked to discard
// (the manager also checks they are unreferenced and untouched; this one
// takes the caller's word, so the test sees exactly what was asked).
type discarding struct {
	*versiontest.Cluster
	mu    sync.Mutex
	asked int
}

func (d *discarding) Discard(ctx context.Context, stores map[string][]storage.Hash) (catalog.DiscardReport, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var rep catalog.DiscardReport
	for id, hs := range stores {
		d.asked += len(hs)
		rep.Asked += int64(len(hs))
		freed, err := d.Mem[id].Delete(ctx, hs, time.Time{})
		if err != nil {
			return rep, err
		}
		rep.FreedBytes += freed
	}
	return rep, nil
}

// keys lists every block the cluster's stores hold, by store.
func keys(t *testing.T, cl *versiontest.Cluster) map[string][]storage.Hash {
	t.Helper()
	out := map[string][]storage.Hash{}
	for id, s := range cl.Mem {
		hs, err := s.List(context.Background(), storage.Hash{}, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(hs, func(a, b storage.Hash) int { return strings.Compare(a.String(), b.String()) })
		out[id] = hs
	}
	return out
}

// TestFailedCheckpointDiscardsItsBlocks: a checkpoint that fails after its
// leaders stored some blocks (one store of three refuses every put, and
// each block needs three copies) asks the manager to discard exactly the
// blocks it created: the stores hold what they held after the first
// checkpoint, and the first version still reads back.
func TestFailedCheckpointDiscardsItsBlocks(t *testing.T) {
	ctx := context.Background()
	cl := versiontest.New(3)
	d := &discarding{Cluster: cl}
	var before map[string][]storage.Hash
	err := local.Run(4, func(c collective.Comm) error {
		s, err := collective.NewSession(c, collective.Options{RanksPerLeader: 2, BlockSize: 4096})
		if err != nil {
			return err
		}
		defer s.Close()
		j := &version.Job{Name: "j", Catalog: d, Pool: cl.Pool(), Writer: client.WriterOptions{Replicas: 3}}
		regions := regionsFor(c.Rank(), 5)
		if _, err := s.Checkpoint(ctx, j, regions, nil); err != nil {
			return fmt.Errorf("first checkpoint: %w", err)
		}
		c.Barrier()
		if c.Rank() == 0 {
			before = keys(t, cl)
			cl.Mem["st-2"].SetFaults(memstore.Faults{Put: func(storage.Hash) error { return errors.New("disk on fire") }})
		}
		c.Barrier()
		for _, r := range regions {
			for i := range r.Data {
				r.Data[i] ^= 0xff // every block is new
			}
		}
		if _, err := s.Checkpoint(ctx, j, regions, nil); err == nil || !strings.Contains(err.Error(), "nothing committed") {
			return fmt.Errorf("checkpoint with a refusing store: %v, want it discarded", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if d.asked == 0 {
		t.Fatal("the failed checkpoint asked to discard nothing; its blocks on st-0 and st-1 stay until garbage collection")
	}
	if after := keys(t, cl); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("the stores hold other blocks after the discard than after the first checkpoint:\n%v\nwant\n%v", after, before)
	}
	if n := len(cl.Versions("j")); n != 1 {
		t.Fatalf("%d versions, want 1", n)
	}
}

// TestCheckpointChecksSpaceFirst: a checkpoint larger than the stores'
// free space fails on every rank with "cluster out of space: need X, free
// Y on N stores" before anything is sent.
func TestCheckpointChecksSpaceFirst(t *testing.T) {
	ctx := context.Background()
	cl := versiontest.New(2)
	for id := range cl.Mem {
		cl.Mem[id] = memstore.New(id, 16<<10)
	}
	err := local.Run(4, func(c collective.Comm) error {
		s, err := collective.NewSession(c, collective.Options{RanksPerLeader: 2, BlockSize: 4096})
		if err != nil {
			return err
		}
		defer s.Close()
		j := &version.Job{Name: "j", Catalog: cl, Pool: cl.Pool(), Writer: client.WriterOptions{Replicas: 2}}
		_, err = s.Checkpoint(ctx, j, regionsFor(c.Rank(), 6), nil)
		var se *client.SpaceError
		if !errors.As(err, &se) && !strings.Contains(fmt.Sprint(err), "cluster out of space: need ") {
			return fmt.Errorf("rank %d: checkpoint larger than the cluster: %v, want cluster out of space", c.Rank(), err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for id, hs := range keys(t, cl) {
		if len(hs) != 0 {
			t.Errorf("store %s holds %d blocks: the pre-check should have sent nothing", id, len(hs))
		}
	}
}
