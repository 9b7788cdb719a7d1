package version_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/client"
	"github.com/ckptio/ckptio/storage/memstore"
	"github.com/ckptio/ckptio/storage/version"
	"github.com/ckptio/ckptio/storage/version/versiontest"
)

// discardingCatalog records the discard an aborted version asks for,
// and whether the transaction was already aborted then.
type discardingCatalog struct {
	*versiontest.Cluster
	asked      map[string][]storage.Hash
	inFlightAt int
}

func (d *discardingCatalog) Discard(_ context.Context, stores map[string][]storage.Hash) (catalog.DiscardReport, error) {
	d.asked, d.inFlightAt = stores, d.InFlight()
	return catalog.DiscardReport{}, nil
}

// TestNewWriterChecksSpace: a writer whose Bytes times the copies exceed
// the stores' free space is refused before anything is sent, with a
// *client.SpaceError; one that fits opens.
func TestNewWriterChecksSpace(t *testing.T) {
	ctx := context.Background()
	cl := versiontest.New(0)
	for _, id := range []string{"st-0", "st-1"} {
		cl.Mem[id] = memstore.New(id, 1000)
	}
	j := cl.Job("j", client.WriterOptions{})
	_, err := j.NewWriter(ctx, nil, version.Hints{Bytes: 1001})
	var se *client.SpaceError
	if !errors.As(err, &se) || !errors.Is(err, storage.ErrNoSpace) || se.Need != 2002 || se.Free != 2000 || se.Stores != 2 {
		t.Fatalf("1001 bytes x 2 copies into 2x1000: %v", err)
	}
	j.Writer.Optimistic = true // one copy at write time
	w, err := j.NewWriter(ctx, nil, version.Hints{Bytes: 1001})
	if err != nil {
		t.Fatalf("optimistic 1001 bytes into 2x1000: %v", err)
	}
	w.Close(ctx)
}

// TestAbortDiscardingAfterAbort: a failed version's writer's new blocks
// are handed to the catalog's discard, after the transaction is aborted
// (else its begin time would hold the horizon below them).
func TestAbortDiscardingAfterAbort(t *testing.T) {
	ctx := context.Background()
	cl := versiontest.New(2)
	dc := &discardingCatalog{Cluster: cl, inFlightAt: -1}
	j := cl.Job("j", client.WriterOptions{BlockSize: 1000, Replicas: 2})
	j.Catalog = dc
	txn, err := j.Begin(ctx, version.Files, nil)
	if err != nil {
		t.Fatal(err)
	}
	w, err := j.NewWriter(ctx, nil, version.Hints{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteObject(ctx, "f", -1, bytes.NewReader(randBytes(7, 5000))); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := txn.AbortDiscarding(ctx, w); err != nil {
		t.Fatal(err)
	}
	if dc.inFlightAt != 0 || len(dc.asked["st-0"]) != 5 || len(dc.asked["st-1"]) != 5 {
		t.Fatalf("discard asked %d+%d blocks with %d transactions in flight; want 5 per store after the abort",
			len(dc.asked["st-0"]), len(dc.asked["st-1"]), dc.inFlightAt)
	}
	if _, err := txn.AbortDiscarding(ctx, w); err != nil || cl.Aborts() != 1 {
		t.Fatalf("a second abort: %v, %d aborts", err, cl.Aborts())
	}
}
