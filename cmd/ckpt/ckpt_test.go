package main_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ckptio/ckptio/storage/cluster/clustertest"
)

func writeRandom(t *testing.T, path string, n int, seed int64) []byte {
	t.Helper()
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPutGetAgainstRealDaemons is the storage layer end to end: a manager
// and 4 stores started as processes with a token file; ckpt put of a large
// random file and two small ones; ckpt get returns identical bytes; the
// blocks are spread over the stores; a wrong token is refused.
func TestPutGetAgainstRealDaemons(t *testing.T) {
	c := clustertest.NewCluster(t, clustertest.Options{})
	work := t.TempDir()
	size := 48 << 20
	if testing.Short() {
		size = 8 << 20
	}
	big := writeRandom(t, filepath.Join(work, "big.bin"), size, 1)
	small := writeRandom(t, filepath.Join(work, "sub", "small.txt"), 100, 2)
	empty := writeRandom(t, filepath.Join(work, "empty"), 0, 3)

	out, errOut, code := c.Run(t, work, nil, "ckpt", "put", "job1", "big.bin", "sub/small.txt", "empty")
	if code != 0 || strings.TrimSpace(out) != "1" {
		t.Fatalf("put: code %d, stdout %q, stderr %s", code, out, errOut)
	}
	to := filepath.Join(t.TempDir(), "restored")
	if _, errOut, code := c.Run(t, work, nil, "ckpt", "get", "job1", "--to", to); code != 0 {
		t.Fatalf("get: %s", errOut)
	}
	for name, want := range map[string][]byte{"big.bin": big, "sub/small.txt": small, "empty": empty} {
		got, err := os.ReadFile(filepath.Join(to, name))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s differs after get (err %v)", name, err)
		}
	}

	// The blocks are spread: the stores say so themselves.
	holding := 0
	stats := c.StoreStats(t)
	for _, st := range stats {
		if st.Blocks > 0 {
			holding++
		}
	}
	if holding < 3 {
		t.Fatalf("blocks on only %d stores: %+v", holding, stats)
	}

	// versions --json reports the figures.
	out, _, code = c.Run(t, work, nil, "ckpt", "versions", "job1", "--json")
	var doc struct {
		Versions []struct {
			Version      int64 `json:"version"`
			Objects      int   `json:"objects"`
			LogicalBytes int64 `json:"logical_bytes"`
			NewBytes     int64 `json:"new_bytes"`
		} `json:"versions"`
	}
	err := json.Unmarshal([]byte(out), &doc)
	vs := doc.Versions
	if code != 0 || err != nil || len(vs) != 1 {
		t.Fatalf("versions --json: %q", out)
	}
	if vs[0].Objects != 3 || vs[0].LogicalBytes != int64(size+100) || vs[0].NewBytes != int64(size+100) {
		t.Fatalf("versions --json = %+v", vs[0])
	}

	// A wrong token is refused, saying so.
	bad := filepath.Join(t.TempDir(), "bad-token")
	os.WriteFile(bad, []byte("this-is-not-the-cluster-token-at-all"), 0o600)
	_, errOut, code = c.Run(t, work, []string{"CKPT_TOKEN_FILE=" + bad}, "ckpt", "versions", "job1")
	if code == 0 || !strings.Contains(errOut, "refused the cluster token") {
		t.Fatalf("wrong token: code %d, stderr %q", code, errOut)
	}
	if n := strings.Count(strings.TrimSpace(errOut), "\n"); n != 0 {
		t.Fatalf("error is not one line: %q", errOut)
	}
}

func TestBadInputGetsOneLineErrors(t *testing.T) {
	c := clustertest.NewCluster(t, clustertest.Options{Stores: 2})
	work := t.TempDir()
	writeRandom(t, filepath.Join(work, "a"), 1000, 1)
	outside := filepath.Join(t.TempDir(), "outside")
	writeRandom(t, outside, 10, 1)
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"escaping name", nil, []string{"put", "j", "../outside"}, "not a relative path"},
		{"absolute name", nil, []string{"put", "j", outside}, "not a relative path"},
		{"missing file", nil, []string{"put", "j", "nope"}, "no such file"},
		{"bad job name", nil, []string{"put", "bad/job", "a"}, "job name"},
		{"unknown job", nil, []string{"get", "nojob", "--to", t.TempDir()}, "nojob"},
		{"get without --to", nil, []string{"get", "j"}, "--to"},
		{"manager down", []string{"CKPT_MANAGER=127.0.0.1:1"}, []string{"versions", "j"}, "127.0.0.1:1 is unreachable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			_, errOut, code := c.Run(t, work, tc.env, "ckpt", tc.args...)
			if code == 0 || !strings.Contains(errOut, tc.want) {
				t.Fatalf("code %d, stderr %q, want it to mention %q", code, errOut, tc.want)
			}
			if strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
				t.Fatalf("error is not one line: %q", errOut)
			}
			if time.Since(start) > 8*time.Second {
				t.Fatalf("took %s to fail", time.Since(start))
			}
		})
	}
	// After a version exists, an unknown version names the latest.
	if _, errOut, code := c.Run(t, work, nil, "ckpt", "put", "j", "a"); code != 0 {
		t.Fatal(errOut)
	}
	_, errOut, code := c.Run(t, work, nil, "ckpt", "get", "j", "--version", "7", "--to", t.TempDir())
	if code == 0 || !strings.Contains(errOut, "no version 7 (latest is 1)") {
		t.Fatalf("unknown version: %q", errOut)
	}
}

// TestFullStoreMovesBlocks: a store whose quota is full refuses blocks and
// the put still succeeds on the others.
func TestFullStoreMovesBlocks(t *testing.T) {
	c := clustertest.NewCluster(t, clustertest.Options{Stores: 2, Quota: "1GiB"})
	tiny := c.AddStore(t, "tiny", "2MiB")
	c.WaitAlive(t, 3)
	work := t.TempDir()
	data := writeRandom(t, filepath.Join(work, "f"), 24<<20, 5)
	if _, errOut, code := c.Run(t, work, nil, "ckpt", "put", "j", "f"); code != 0 {
		t.Fatalf("put with one store over quota: %s", errOut)
	}
	to := t.TempDir()
	if _, errOut, code := c.Run(t, work, nil, "ckpt", "get", "j", "--to", to); code != 0 {
		t.Fatal(errOut)
	}
	got, _ := os.ReadFile(filepath.Join(to, "f"))
	if !bytes.Equal(got, data) {
		t.Fatal("content differs")
	}
	_ = tiny
}

func TestStoreStopsCleanlyOnSIGTERM(t *testing.T) {
	c := clustertest.NewCluster(t, clustertest.Options{Stores: 1})
	c.Stores[0].Stop(t)
	if code := c.Stores[0].Cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("store exit code %d after SIGTERM:\n%s", code, c.Stores[0].Output())
	}
	c.Manager.Stop(t)
	if code := c.Manager.Cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("manager exit code %d after SIGTERM", code)
	}
}

type versionFigures struct {
	Version      int64 `json:"version"`
	LogicalBytes int64 `json:"logical_bytes"`
	NewBytes     int64 `json:"new_bytes"`
	SentBytes    int64 `json:"sent_bytes"`
}

func versions(t *testing.T, c *clustertest.Cluster, dir, job string) []versionFigures {
	t.Helper()
	out, errOut, code := c.Run(t, dir, nil, "ckpt", "versions", job, "--json")
	var doc struct {
		Versions []versionFigures `json:"versions"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &doc) != nil {
		t.Fatalf("versions --json: %s %s", out, errOut)
	}
	return doc.Versions
}

// TestIncrementalPut is the incremental done-when at a size make test can
// afford (CKPT_TEST_SIZE_MIB=256 for the full one): 5% of 1 MiB-aligned
// regions overwritten stores at most 8% new; with cdc, 100 bytes inserted
// near the start store at most 5% new; retain --keep-last 1 and gc free
// space on the stores and the kept version still restores exactly.
func TestIncrementalPut(t *testing.T) {
	mib := 32
	if v := os.Getenv("CKPT_TEST_SIZE_MIB"); v != "" {
		fmt.Sscan(v, &mib)
	}
	size := mib << 20
	c := clustertest.NewCluster(t, clustertest.Options{})
	work := t.TempDir()
	path := filepath.Join(work, "state.bin")
	data := writeRandom(t, path, size, 11)

	put := func(job string, env ...string) {
		t.Helper()
		if _, errOut, code := c.Run(t, work, env, "ckpt", "put", job, "state.bin"); code != 0 {
			t.Fatalf("put: %s", errOut)
		}
	}
	put("fixed")
	rng := rand.New(rand.NewSource(12))
	regions := size >> 20
	for _, r := range rng.Perm(regions)[:max(1, regions*5/100)] {
		rng.Read(data[r<<20 : (r+1)<<20])
	}
	os.WriteFile(path, data, 0o644)
	put("fixed")
	vs := versions(t, c, work, "fixed")
	if len(vs) != 2 || vs[1].NewBytes > int64(size)*8/100 {
		t.Fatalf("after overwriting 5%% of 1 MiB regions: %+v; want new_bytes <= 8%% of %d", vs, size)
	}
	t.Logf("fixed: 5%% of regions overwritten -> new_bytes %.2f%%, sent %.2f%%",
		100*float64(vs[1].NewBytes)/float64(size), 100*float64(vs[1].SentBytes)/float64(size))

	put("cdc", "CKPT_CHUNKING=cdc")
	shifted := append(append(append([]byte(nil), data[:1000]...), bytes.Repeat([]byte{'!'}, 100)...), data[1000:]...)
	os.WriteFile(path, shifted, 0o644)
	put("cdc", "CKPT_CHUNKING=cdc")
	vs = versions(t, c, work, "cdc")
	if len(vs) != 2 || vs[1].NewBytes > int64(size)*5/100 {
		t.Fatalf("cdc after inserting 100 bytes: %+v; want new_bytes <= 5%%", vs)
	}
	t.Logf("cdc: 100 bytes inserted -> new_bytes %.3f%%", 100*float64(vs[1].NewBytes)/float64(size))

	// The stores' own figures: the manager's are a heartbeat old.
	used := func() int64 {
		var n int64
		for _, st := range c.StoreStats(t) {
			n += st.Used
		}
		return n
	}
	before := used()
	if _, errOut, code := c.Run(t, work, nil, "ckpt", "retain", "fixed", "--keep-last", "1"); code != 0 {
		t.Fatal(errOut)
	}
	if _, errOut, code := c.Run(t, work, nil, "ckpt", "gc"); code != 0 {
		t.Fatal(errOut)
	}
	after := used()
	if after >= before {
		t.Fatalf("store usage %d -> %d after retain --keep-last 1 and gc; want it to drop", before, after)
	}
	to := t.TempDir()
	if _, errOut, code := c.Run(t, work, nil, "ckpt", "get", "fixed", "--to", to); code != 0 {
		t.Fatal(errOut)
	}
	got, _ := os.ReadFile(filepath.Join(to, "state.bin"))
	if !bytes.Equal(got, data) {
		t.Fatal("kept version differs after gc")
	}
}
