package collective_test

import (
	"context"
	"testing"
	"time"

	"github.com/ckptio/ckptio/collective"
	"github.com/ckptio/ckptio/collective/local"
	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/client"
	"github.com/ckptio/ckptio/storage/version"
	"github.com/ckptio/ckptio/storage/version/versiontest"
)

// TestReuseWritesMissingCopies: a block of the previous version that its
// stores confirm on fewer copies than the replication target is not
// reused as it is; the checkpoint writes the missing copies, so the new
// version is fully replicated at commit and does not wait for repair.
func TestReuseWritesMissingCopies(t *testing.T) {
	ctx := context.Background()
	cl := versiontest.New(4)
	write := func() error {
		return local.RunWith(4, local.Options{RanksPerNode: 2}, func(c collective.Comm) error {
			s, err := collective.NewSession(c, collective.Options{BlockSize: 4096})
			if err != nil {
				return err
			}
			defer s.Close()
			b := &version.Job{Name: "j", Catalog: cl, Pool: cl.Pool(), Writer: client.WriterOptions{Replicas: 2}}
			_, err = s.Checkpoint(ctx, b, regionsFor(c.Rank(), 7), nil)
			return err
		})
	}
	if err := write(); err != nil {
		t.Fatal(err)
	}
	// Every block loses the copy on the first store its manifest lists.
	lost := 0
	for _, b := range cl.Versions("j")[0].Blocks {
		if len(b.Stores) != 2 {
			continue
		}
		if _, err := cl.Mem[b.Stores[0]].Delete(ctx, []storage.Hash{b.Key}, time.Time{}); err != nil {
			t.Fatal(err)
		}
		lost++
	}
	if lost == 0 {
		t.Fatal("the first version has no block with 2 copies")
	}
	if err := write(); err != nil {
		t.Fatal(err)
	}
	v2 := cl.Versions("j")[1]
	for _, b := range v2.Blocks {
		if b.Length == 0 {
			continue
		}
		if len(b.Stores) != 2 {
			t.Fatalf("block %s of rank %d %q at %d: stores %v, want 2 copies", b.Key.Short(), b.Rank, b.Object, b.Offset, b.Stores)
		}
		for _, id := range b.Stores {
			has, err := cl.Mem[id].Has(ctx, []storage.Hash{b.Key})
			if err != nil || !has[0] {
				t.Fatalf("block %s is listed on %s, which does not hold it (%v)", b.Key.Short(), id, err)
			}
		}
	}
	if v2.SentBytes == 0 {
		t.Fatal("the second checkpoint sent nothing: the missing copies were not written")
	}
}
