package remote_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/memstore"
	"github.com/ckptio/ckptio/storage/remote"
	"github.com/ckptio/ckptio/storage/store"
)

// TestRecords puts, replaces, gets and lists catalog records through a
// real server over TCP onto a records directory, then reopens the
// directory and finds them there.
func TestRecords(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "records")
	rs, err := store.OpenRecords(dir)
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := serve(t, memstore.New("s", 0), nil, store.Options{Records: rs})
	s := dial(t, addr, remote.Options{})

	if _, err := s.GetRecord(ctx, "v/a/1"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("get of a missing record: %v, want ErrNotFound", err)
	}
	var want []string
	for i := range 7 {
		name := fmt.Sprintf("v/a/%02d", i)
		want = append(want, name)
		if err := s.PutRecord(ctx, name, []byte("first")); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutRecord(ctx, "v/a/03", []byte("second")); err != nil {
		t.Fatal(err)
	}
	if err := s.PutRecord(ctx, "../escape", nil); err == nil {
		t.Fatal("a record named ../escape was accepted")
	}
	var got []string
	for after := ""; ; {
		page, err := s.ListRecords(ctx, after, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		got = append(got, page...)
		after = page[len(page)-1]
	}
	if !slices.Equal(got, want) {
		t.Fatalf("listed %q, want %q", got, want)
	}
	if _, err := store.OpenRecords(dir); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("%x", "v/a/03")))
	if err != nil || string(data) != "second" {
		t.Fatalf("record file holds %q, %v; want the replacement", data, err)
	}
	if data, err := s.GetRecord(ctx, "v/a/03"); err != nil || string(data) != "second" {
		t.Fatalf("get: %q, %v; want the replacement", data, err)
	}
}

// TestRecordsOldStore: a store without records (as one older than the
// ops) answers UnknownOp, which the client reports as ErrNoRecords, and
// the connection stays usable.
func TestRecordsOldStore(t *testing.T) {
	ctx := context.Background()
	addr, _ := serve(t, memstore.New("s", 0), nil, store.Options{})
	s := dial(t, addr, remote.Options{})
	if err := s.PutRecord(ctx, "j/a", []byte("x")); !errors.Is(err, remote.ErrNoRecords) {
		t.Fatalf("put record on a store without records: %v, want ErrNoRecords", err)
	}
	if _, err := s.ListRecords(ctx, "", 10); !errors.Is(err, remote.ErrNoRecords) {
		t.Fatalf("list records on a store without records: %v, want ErrNoRecords", err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("connection unusable after an unknown op: %v", err)
	}
}
