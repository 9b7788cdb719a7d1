package manager

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/manifest"
)

func TestRetentionSelect(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	// versions builds infos for the numbers given; version n was committed
	// 11-n hours before now: version 10 an hour ago, version 1 ten hours.
	versions := func(pinned []int64, nums ...int64) []catalog.VersionInfo {
		var vs []catalog.VersionInfo
		for _, n := range nums {
			vs = append(vs, catalog.VersionInfo{Version: n, Committed: now.Add(-time.Duration(11-n) * time.Hour), Pinned: slices.Contains(pinned, n)})
		}
		return vs
	}
	all := []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	tests := []struct {
		name   string
		r      catalog.Retention
		vs     []catalog.VersionInfo
		delete []int64
	}{
		{"no policy keeps all", catalog.Retention{}, versions(nil, all...), nil},
		{"keep last 3", catalog.Retention{KeepLast: 3}, versions(nil, all...), []int64{1, 2, 3, 4, 5, 6, 7}},
		{"keep last more than held", catalog.Retention{KeepLast: 20}, versions(nil, all...), nil},
		{"keep last 1 is the latest", catalog.Retention{KeepLast: 1}, versions(nil, 1, 2), []int64{1}},
		{"keep every 4 keeps the latest too", catalog.Retention{KeepEvery: 4}, versions(nil, all...), []int64{1, 2, 3, 5, 6, 7, 9}},
		{"keep every 5 on the latest", catalog.Retention{KeepEvery: 5}, versions(nil, all...), []int64{1, 2, 3, 4, 6, 7, 8, 9}},
		// Version n is 11-n hours old: within 3h are 8 (3h, the boundary), 9, 10.
		{"keep within 3h", catalog.Retention{KeepWithin: catalog.Duration(3 * time.Hour)}, versions(nil, all...), []int64{1, 2, 3, 4, 5, 6, 7}},
		{"keep within nothing recent keeps the latest", catalog.Retention{KeepWithin: catalog.Duration(time.Minute)}, versions(nil, all...), []int64{1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{"union of rules", catalog.Retention{KeepLast: 2, KeepEvery: 3, KeepWithin: catalog.Duration(4 * time.Hour)}, versions(nil, all...), []int64{1, 2, 4, 5}},
		{"pinned kept", catalog.Retention{KeepLast: 2}, versions([]int64{1, 5}, all...), []int64{2, 3, 4, 6, 7, 8}},
		{"pinned do count in keep last", catalog.Retention{KeepLast: 2}, versions([]int64{10}, all...), []int64{1, 2, 3, 4, 5, 6, 7, 8}},
		{"gaps in the numbers", catalog.Retention{KeepLast: 2}, versions(nil, 2, 5, 9), []int64{2}},
		{"keep every over gaps", catalog.Retention{KeepEvery: 2}, versions(nil, 1, 3, 4, 7), []int64{1, 3}},
		{"no versions", catalog.Retention{KeepLast: 1}, nil, nil},
		{"one version is the latest", catalog.Retention{KeepEvery: 100}, versions(nil, 3), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.r.Select(tt.vs, now)
			if !slices.Equal(got, tt.delete) {
				t.Fatalf("%v deletes %v, want %v", tt.r, got, tt.delete)
			}
		})
	}
}

func TestRetentionJSON(t *testing.T) {
	var r catalog.Retention
	if err := decodeJSON([]byte(`{"keep_last":3,"keep_within":"7d"}`), &r); err != nil {
		t.Fatal(err)
	}
	if r.KeepLast != 3 || r.KeepEvery != 0 || time.Duration(r.KeepWithin) != 7*24*time.Hour {
		t.Fatalf("%+v", r)
	}
	out, _ := json.Marshal(r)
	if string(out) != `{"keep_last":3,"keep_every":0,"keep_within":"168h0m0s"}` {
		t.Fatalf("%s", out)
	}
	for _, bad := range []string{`{"keep_within":"soon"}`, `{"keep_within":36}`, `{"keep_last":"3"}`, `{"keep_all":true}`} {
		wantErr(t, decodeJSON([]byte(bad), &r), catalog.ErrInvalid, "JSON body")
	}
	for in, want := range map[string]time.Duration{"90m": 90 * time.Minute, "1.5d": 36 * time.Hour, "0d": 0, "2h30m": 150 * time.Minute} {
		if d, err := catalog.ParseDuration(in); err != nil || d != want {
			t.Fatalf("ParseDuration(%q) = %v, %v", in, d, err)
		}
	}
	if _, err := catalog.ParseDuration("-d"); err == nil {
		t.Fatal("-d parsed")
	}
}

// keysManifest returns a manifest of job with one object whose blocks have
// the given names as content (keys are their hashes).
func keysManifest(job string, names ...string) *manifest.Manifest {
	m := &manifest.Manifest{Job: job, Kind: "files", Created: time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC)}
	for i, n := range names {
		h := key(n)
		m.Blocks = append(m.Blocks, manifest.Block{Object: "f", Rank: -1, Offset: int64(i) * 100, Length: 100,
			Hash: h, Key: h, StoredLength: 100, Codec: manifest.CodecRaw, Stores: []string{"s1"}})
	}
	return m
}

func key(name string) storage.Hash { return storage.Sum([]byte(name)) }

// commitKeys commits a version of job naming the given blocks.
func commitKeys(t *testing.T, m *Manager, job string, names ...string) catalog.VersionInfo {
	t.Helper()
	txn, err := m.Begin(job)
	if err != nil {
		t.Fatal(err)
	}
	vi, err := m.Commit(txn.ID, marshal(t, keysManifest(job, names...)))
	if err != nil {
		t.Fatal(err)
	}
	return vi
}

func versionNumbers(t *testing.T, m *Manager, job string) []int64 {
	t.Helper()
	vs, err := m.Versions(job)
	if err != nil {
		t.Fatal(err)
	}
	var out []int64
	for _, v := range vs {
		out = append(out, v.Version)
	}
	return out
}

// checkRefs compares the refs bucket with a count over the manifests, and
// with want (block name -> count) when want is not nil.
func checkRefs(t *testing.T, m *Manager, want map[string]uint64) {
	t.Helper()
	err := m.db.View(func(tx *bolt.Tx) error {
		counted, err := countRefs(tx)
		if err != nil {
			return err
		}
		stored := map[storage.Hash]uint64{}
		tx.Bucket(bucketRefs).ForEach(func(k, v []byte) error {
			stored[storage.Hash(k)] = binary.BigEndian.Uint64(v)
			return nil
		})
		if !maps.Equal(counted, stored) {
			return fmt.Errorf("refs bucket %v, manifests count %v", stored, counted)
		}
		if want != nil {
			w := map[storage.Hash]uint64{}
			for n, c := range want {
				w[key(n)] = c
			}
			if !maps.Equal(w, stored) {
				return fmt.Errorf("refs %v, want %v", stored, w)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestRetentionAppliedOnCommit(t *testing.T) {
	clock := newClock()
	m := open(t, t.TempDir(), clock)
	// A policy can be set before the job's first commit.
	deleted, err := m.SetRetention("j", catalog.Retention{KeepLast: 2})
	if err != nil || len(deleted) != 0 {
		t.Fatalf("set: %v, %v", deleted, err)
	}
	if got := versionNumbers(t, m, "j"); len(got) != 0 {
		t.Fatalf("versions %v", got)
	}
	_, err = m.Version("j", 0)
	wantErr(t, err, catalog.ErrNoVersions, "")
	commitKeys(t, m, "j", "a")
	if _, err := m.Pin("j", 1, true); err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"b", "c", "d", "e"} {
		clock.Add(time.Hour)
		commitKeys(t, m, "j", "shared", b)
	}
	if got := versionNumbers(t, m, "j"); !slices.Equal(got, []int64{1, 4, 5}) {
		t.Fatalf("versions %v, want 1 (pinned), 4, 5", got)
	}
	checkRefs(t, m, map[string]uint64{"a": 1, "shared": 2, "d": 1, "e": 1})
	r, err := m.Retention("j")
	if err != nil || r != (catalog.Retention{KeepLast: 2}) {
		t.Fatalf("policy %+v, %v", r, err)
	}

	// A stricter policy applies at once; the latest always stays.
	deleted, err = m.SetRetention("j", catalog.Retention{KeepWithin: catalog.Duration(time.Minute)})
	if err != nil || !slices.Equal(deleted, []int64{4}) {
		t.Fatalf("keep within: deleted %v, %v", deleted, err)
	}
	// Clearing the policy keeps what is there from now on.
	if _, err := m.SetRetention("j", catalog.Retention{}); err != nil {
		t.Fatal(err)
	}
	if r, _ := m.Retention("j"); r.IsSet() {
		t.Fatalf("cleared policy reads %+v", r)
	}
	commitKeys(t, m, "j", "f")
	commitKeys(t, m, "j", "g")
	if got := versionNumbers(t, m, "j"); !slices.Equal(got, []int64{1, 5, 6, 7}) {
		t.Fatalf("versions %v", got)
	}
	jobs, _ := m.Jobs()
	if len(jobs) != 1 || jobs[0].Versions != 4 || jobs[0].Latest != 7 {
		t.Fatalf("jobs %+v", jobs)
	}

	_, err = m.SetRetention("j", catalog.Retention{KeepLast: -1})
	wantErr(t, err, catalog.ErrInvalid, "negative")
	_, err = m.SetRetention("bad/job", catalog.Retention{KeepLast: 1})
	wantErr(t, err, catalog.ErrInvalid, "job name")
	_, err = m.Retention("nojob")
	wantErr(t, err, catalog.ErrUnknownJob, "nojob")
}

func TestDeleteAndPin(t *testing.T) {
	dir, clock := t.TempDir(), newClock()
	m := open(t, dir, clock)
	for _, b := range []string{"a", "b", "c"} {
		commitKeys(t, m, "j", "shared", b)
	}
	vi, err := m.Pin("j", 2, true)
	if err != nil || !vi.Pinned || vi.Version != 2 {
		t.Fatalf("pin: %+v, %v", vi, err)
	}
	if vi, err := m.Pin("j", 2, true); err != nil || !vi.Pinned {
		t.Fatalf("pin twice: %+v, %v", vi, err)
	}
	if vi, _ := m.Version("j", 2); !vi.Pinned {
		t.Fatal("pin not stored")
	}
	_, err = m.DeleteVersion("j", 2)
	wantErr(t, err, catalog.ErrPinned, "job j version 2 is pinned; unpin it first (ckpt unpin j --version 2)")
	_, err = m.DeleteVersion("j", 9)
	wantErr(t, err, catalog.ErrUnknownVersion, "no version 9 (latest is 3)")
	_, err = m.DeleteVersion("j", 0)
	wantErr(t, err, catalog.ErrInvalid, "explicit version")
	_, err = m.DeleteVersion("nojob", 1)
	wantErr(t, err, catalog.ErrUnknownJob, "nojob")
	_, err = m.Pin("j", 7, true)
	wantErr(t, err, catalog.ErrUnknownVersion, "no version 7")
	_, err = m.Pin("nojob", 1, true)
	wantErr(t, err, catalog.ErrUnknownJob, "nojob")

	// The latest may be deleted explicitly; the previous one becomes latest.
	if vi, err := m.DeleteVersion("j", 3); err != nil || vi.Version != 3 {
		t.Fatalf("delete latest: %+v, %v", vi, err)
	}
	if vi, err := m.Version("j", 0); err != nil || vi.Version != 2 {
		t.Fatalf("latest after delete: %+v, %v", vi, err)
	}
	_, _, err = m.Manifest("j", 3)
	wantErr(t, err, catalog.ErrUnknownVersion, "latest is 2")
	checkRefs(t, m, map[string]uint64{"shared": 2, "a": 1, "b": 1})
	if vi, err := m.Pin("j", 0, false); err != nil || vi.Pinned || vi.Version != 2 {
		t.Fatalf("unpin latest: %+v, %v", vi, err)
	}
	for _, v := range []int64{1, 2} {
		if _, err := m.DeleteVersion("j", v); err != nil {
			t.Fatal(err)
		}
	}
	checkRefs(t, m, map[string]uint64{})
	if got := versionNumbers(t, m, "j"); len(got) != 0 {
		t.Fatalf("versions %v", got)
	}
	_, err = m.Version("j", 0)
	wantErr(t, err, catalog.ErrNoVersions, "")
	jobs, _ := m.Jobs()
	if len(jobs) != 1 || jobs[0].Versions != 0 || jobs[0].Latest != 0 {
		t.Fatalf("jobs %+v", jobs)
	}
	// Numbers are never given again, across a restart too.
	m.Close()
	m = open(t, dir, clock)
	if vi := commitKeys(t, m, "j", "d"); vi.Version != 4 {
		t.Fatalf("next version %d, want 4", vi.Version)
	}
}

func TestRefCountsAcrossJobsAndReopen(t *testing.T) {
	dir, clock := t.TempDir(), newClock()
	m := open(t, dir, clock)
	commitKeys(t, m, "a", "x", "y", "y", "z") // y twice in one version counts once
	commitKeys(t, m, "a", "x", "w")
	commitKeys(t, m, "b", "x", "z")
	// Empty objects have a zero key, which is not counted.
	empty := &manifest.Manifest{Job: "b", Kind: "files", Blocks: []manifest.Block{{Object: "e", Rank: -1, Codec: manifest.CodecRaw}}}
	txn, _ := m.Begin("b")
	if _, err := m.Commit(txn.ID, marshal(t, empty)); err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{"x": 3, "y": 1, "z": 2, "w": 1}
	checkRefs(t, m, want)
	if _, err := m.DeleteVersion("a", 1); err != nil {
		t.Fatal(err)
	}
	want = map[string]uint64{"x": 2, "z": 1, "w": 1}
	checkRefs(t, m, want)
	m.Close()
	m = open(t, dir, clock)
	checkRefs(t, m, want)

	// A catalog from before reference counts gets them built at open.
	m.Close()
	db, err := bolt.Open(dir+"/"+CatalogFile, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketRefs); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Delete(keyRefsBuilt)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	m = open(t, dir, clock)
	checkRefs(t, m, want)
	commitKeys(t, m, "b", "w")
	checkRefs(t, m, map[string]uint64{"x": 2, "z": 1, "w": 2})
}
