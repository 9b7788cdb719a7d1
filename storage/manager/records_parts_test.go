package manager

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/wire"
)

// The repair test stores keep catalog records in memory, as a real store
// keeps them in its records directory.

func (s *repairStore) PutRecord(_ context.Context, name string, data []byte) error {
	if err := wire.ValidRecordName(name); err != nil {
		return err
	}
	if len(data) > wire.MaxRecordSize {
		return fmt.Errorf("record of %d bytes: %w", len(data), storage.ErrTooLarge)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.records[name] = slices.Clone(data)
	return nil
}

func (s *repairStore) GetRecord(_ context.Context, name string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.mu.records[name]
	if !ok {
		return nil, storage.ErrNotFound
	}
	return slices.Clone(b), nil
}

func (s *repairStore) ListRecords(_ context.Context, after string, max int) ([]string, error) {
	// As a store's wire decoder does: the cursor is a record name.
	if after != "" {
		if err := wire.ValidRecordName(after); err != nil {
			return nil, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, n := range slices.Sorted(maps.Keys(s.mu.records)) {
		if n > after && len(out) < max {
			out = append(out, n)
		}
	}
	return out, nil
}

// recordNames lists the records of store s whose names start with prefix.
func (s *repairStore) recordNames(prefix string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for n := range s.mu.records {
		if strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// recoverEnv rebuilds e's catalog from its stores into a new directory.
func (e *repairEnv) recover(t *testing.T) (*Manager, RecoverReport) {
	t.Helper()
	opts := e.m.opts
	var addrs []string
	for i := range e.stores {
		addrs = append(addrs, fmt.Sprintf("host-%d:7000", i+1))
	}
	m, rep, err := Recover(context.Background(), filepath.Join(t.TempDir(), "recovered"), addrs, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m, rep
}

// TestLargeManifestRecordedInParts: a manifest larger than one record is
// kept on the stores in parts beside its version record, on as many
// stores as the version's copies, and recovered byte for byte; deleting
// the version blanks the parts on every store; a version one of whose
// parts is on no store read is reported, not recovered half.
func TestLargeManifestRecordedInParts(t *testing.T) {
	defer func(n int) { recordPartSize = n }(recordPartSize)
	recordPartSize = 512

	e := newRepairEnv(t, 3, Options{})
	var blocks []placed
	for i := range 40 {
		blocks = append(blocks, placed{fmt.Sprintf("block-%02d", i), []string{"s1", "s2"}})
	}
	big := e.commitPlaced(t, "job", 2, blocks...)
	small := e.commitPlaced(t, "job", 2, placed{"tiny", []string{"s1", "s2"}})
	manBig, _, err := e.m.Manifest("job", big.Version)
	if err != nil {
		t.Fatal(err)
	}
	wantParts := (len(manBig) - 1) / recordPartSize
	if wantParts < 3 {
		t.Fatalf("the test manifest has %d bytes: make it span more parts", len(manBig))
	}
	bigName := versionRecordName("job", big.Version)
	for i, s := range e.stores[:2] {
		if got := len(s.recordNames(bigName + "/")); got != wantParts {
			t.Errorf("store s%d holds %d parts of version %d's manifest, want %d", i+1, got, big.Version, wantParts)
		}
	}
	if got := e.stores[2].recordNames(bigName); len(got) != 0 {
		t.Errorf("s3, which holds none of the version's blocks, was given its records %v", got)
	}

	m, rep := e.recover(t)
	if rep.Versions != 2 || len(rep.Bad) != 0 || len(rep.Missing) != 0 {
		t.Fatalf("recovery report %+v", rep)
	}
	for _, v := range []int64{big.Version, small.Version} {
		want, _, err := e.m.Manifest("job", v)
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := m.Manifest("job", v)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("version %d's manifest after recovery: %d bytes, %v; want the %d bytes committed", v, len(got), err, len(want))
		}
	}

	// One part gone from both holders: the version is not recovered, and
	// the report says which part.
	part := partRecordName("job", big.Version, 2)
	saved, err := e.stores[0].GetRecord(context.Background(), part)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range e.stores {
		s.mu.Lock()
		delete(s.mu.records, part)
		s.mu.Unlock()
	}
	_, rep = e.recover(t)
	if rep.Versions != 1 || !slices.Equal(rep.Missing["job"], []int64{big.Version}) || len(rep.Bad) != 1 || !strings.Contains(rep.Bad[0], fmt.Sprintf("manifest part 2 of %d ", wantParts)) {
		t.Errorf("recovery with a part lost: %+v", rep)
	}

	// The part back with one byte changed: the joined manifest does not
	// match its recorded SHA-256.
	saved[len(saved)-1] ^= 1
	if err := e.stores[0].PutRecord(context.Background(), part, saved); err != nil {
		t.Fatal(err)
	}
	_, rep = e.recover(t)
	if rep.Versions != 1 || !slices.Equal(rep.Missing["job"], []int64{big.Version}) || len(rep.Bad) != 1 || !strings.Contains(rep.Bad[0], "do not match") {
		t.Errorf("recovery with a part changed: %+v", rep)
	}

	// Deleting the version blanks the parts every store still holds.
	if _, err := e.m.DeleteVersion("job", big.Version); err != nil {
		t.Fatal(err)
	}
	for i, s := range e.stores {
		for _, n := range s.recordNames(bigName + "/") {
			data, _ := s.GetRecord(context.Background(), n)
			h, body, err := decodeRecord(n, data)
			if err != nil || h.Kind != kindPart || !h.Deleted || len(body) != 0 {
				t.Errorf("store s%d: part %s after the delete: %+v, %d bytes, %v", i+1, n, h, len(body), err)
			}
		}
	}
	_, rep = e.recover(t)
	if rep.Versions != 1 || rep.Deleted != 1 || len(rep.Missing) != 0 || len(rep.Bad) != 0 {
		t.Errorf("recovery after the delete: %+v", rep)
	}
}

// TestRecordsSyncedToAStoreThatComesBack: a store away while a version it
// holds the record of is deleted and a retention policy is set gets, when
// it comes back, the tombstone and the job record it missed, so a
// recovery from it alone neither brings the deleted version back nor
// loses the policy.
func TestRecordsSyncedToAStoreThatComesBack(t *testing.T) {
	synced := make(chan string, 100)
	e := newRepairEnv(t, 3, Options{hooks: &hooks{recordsSynced: func(id string) { synced <- id }}})
	// The stores' first heartbeats (joins) sync them once each.
	awaitEvents(t, synced, "the records syncs of the stores that joined", "s1", "s2", "s3")
	v1 := e.commitPlaced(t, "job", 1, placed{"aa", []string{"s3"}})
	e.commitPlaced(t, "job", 1, placed{"bb", []string{"s3"}})
	name := versionRecordName("job", v1.Version)
	if got := e.stores[2].recordNames(name); len(got) != 1 {
		t.Fatalf("s3 holds records %v, want version %d's", got, v1.Version)
	}
	e.kill(t, 2)
	if _, err := e.m.DeleteVersion("job", v1.Version); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.SetRetention("job", catalog.Retention{KeepLast: 5}); err != nil {
		t.Fatal(err)
	}
	e.down[2] = false
	e.beat(t) // s3 is back
	awaitEvents(t, synced, "the records sync of s3 coming back", "s3")
	data, _ := e.stores[2].GetRecord(context.Background(), name)
	h, _, _ := decodeRecord(name, data)
	jdata, _ := e.stores[2].GetRecord(context.Background(), jobRecordName("job"))
	jh, _, _ := decodeRecord(jobRecordName("job"), jdata)
	if !h.Deleted || jh.Retention == nil || jh.Retention.KeepLast != 5 {
		t.Fatalf("after s3 came back and was synced it holds version record %+v and job record %+v", h, jh)
	}
	m, rep, err := Recover(context.Background(), filepath.Join(t.TempDir(), "recovered"), []string{"host-3:7000"}, e.m.opts)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	vs, err := m.Versions("job")
	if err != nil || len(vs) != 1 || vs[0].Version == v1.Version || rep.Deleted != 1 {
		t.Errorf("recovered from s3 alone: versions %+v (%v), report %+v; want only version 2, version 1 deleted", vs, err, rep)
	}
	if r, err := m.Retention("job"); err != nil || r.KeepLast != 5 {
		t.Errorf("recovered retention %+v, %v; want keep-last 5", r, err)
	}
}

// awaitEvents waits until ch has delivered each of want (other values
// are skipped; any order), or fails the test after a minute, which only
// a hang takes.
func awaitEvents(t *testing.T, ch <-chan string, what string, want ...string) {
	t.Helper()
	left := map[string]bool{}
	for _, w := range want {
		left[w] = true
	}
	timeout := time.After(time.Minute)
	for len(left) > 0 {
		select {
		case got := <-ch:
			delete(left, got)
		case <-timeout:
			t.Fatalf("%s never came (%d of %d missing)", what, len(left), len(want))
		}
	}
}
