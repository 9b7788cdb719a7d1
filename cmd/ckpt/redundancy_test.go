package main_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/cluster/clustertest"
)

// TestReedSolomonAgainstRealDaemons: a file put with rs:4+2 on eight real
// stores reads back byte-exact with two of them killed, verify says
// degraded, repair puts the lost shards back on the two spare stores and
// verify says healthy; with three more killed verify says lost and a get
// fails naming too few shards. The stores hold about 1.5 times the bytes.
func TestReedSolomonAgainstRealDaemons(t *testing.T) {
	c := clustertest.NewCluster(t, clustertest.Options{Stores: 8, ManagerArgs: []string{"--repair-every", "0", "--dead-after", "2s"}})
	work := t.TempDir()
	const size = 3<<20 + 12345
	data := writeRandom(t, filepath.Join(work, "state.bin"), size, 11)
	if _, errOut, code := c.Run(t, work, nil, "ckpt", "put", "rs", "state.bin", "--redundancy", "rs:4+2", "--no-compress", "--quiet"); code != 0 {
		t.Fatalf("put --redundancy rs:4+2: %s", errOut)
	}
	var used int64
	for _, st := range c.StoreStats(t) {
		used += st.Used
	}
	// Each 64 KiB block is 6 shards of 16 KiB: 1.5 times, plus the
	// catalog's own records.
	if lo, hi := int64(size)*3/2, int64(size)*3/2+int64(size)/10+(1<<20); used < lo || used > hi {
		t.Fatalf("stores hold %d bytes for %d put with rs:4+2, want %d to %d", used, size, lo, hi)
	}
	out, errOut, code := c.Run(t, work, nil, "ckpt", "versions", "rs", "--json")
	if code != 0 || !strings.Contains(out, `"redundancy": "rs:4+2"`) || !strings.Contains(out, `"overhead": 1.5`) {
		t.Fatalf("versions --json: code %d, want redundancy rs:4+2 and overhead 1.5:\n%s%s", code, out, errOut)
	}
	if out, _, _ := c.Run(t, work, nil, "ckpt", "versions", "rs"); !strings.Contains(out, "rs:4+2") {
		t.Fatalf("ckpt versions does not show the scheme:\n%s", out)
	}
	if st := health(t, c, "rs"); st.State != catalog.StateHealthy || st.Redundancy != "rs:4+2" || st.Target != 6 || st.MinCopies != 6 {
		t.Fatalf("just written: %+v, want healthy with 6 of 6 shards", st)
	}
	if out, errOut, code := c.Run(t, work, nil, "ckpt", "verify", "rs", "--deep", "--quiet"); code != 0 || !strings.Contains(out, "healthy") {
		t.Fatalf("verify --deep: code %d:\n%s%s", code, out, errOut)
	}
	// The same file again: every block's shards are confirmed, nothing
	// is sent.
	if _, errOut, code := c.Run(t, work, nil, "ckpt", "put", "rs", "state.bin", "--redundancy", "rs:4+2", "--no-compress", "--quiet", "--force-read"); code != 0 {
		t.Fatalf("second put: %s", errOut)
	}
	var list struct {
		Versions []struct {
			SentBytes int64 `json:"sent_bytes"`
		} `json:"versions"`
	}
	out, _, _ = c.Run(t, work, nil, "ckpt", "versions", "rs", "--json")
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list.Versions) != 2 || list.Versions[1].SentBytes != 0 {
		t.Fatalf("second put of the same bytes: %v %+v, want version 2 with nothing sent", err, list)
	}

	// Two stores gone: every block still reads.
	c.Stores[0].Stop(t)
	c.Stores[1].Stop(t)
	waitAliveCount(t, c, 6)
	get := func(label string) (string, int) {
		dir := t.TempDir()
		_, errOut, code := c.Run(t, work, nil, "ckpt", "get", "rs", "--to", dir, "--quiet")
		if code == 0 {
			got, err := os.ReadFile(filepath.Join(dir, "state.bin"))
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("%s: get gave different bytes (%v)", label, err)
			}
		}
		return errOut, code
	}
	if errOut, code := get("two stores down"); code != 0 {
		t.Fatalf("get with two of eight stores down: code %d: %s", code, errOut)
	}
	if st := health(t, c, "rs"); st.State != catalog.StateDegraded || st.LostBlocks != 0 {
		t.Fatalf("two stores down: %+v, want degraded with nothing lost", st)
	}

	// Repair rebuilds the missing shards on the spare stores.
	if out, errOut, code := c.Run(t, work, nil, "ckpt", "repair", "rs"); code != 0 {
		t.Fatalf("repair: code %d: %s%s", code, out, errOut)
	}
	if st := health(t, c, "rs"); st.State != catalog.StateHealthy {
		t.Fatalf("after repair: %+v, want healthy", st)
	}

	// Three more gone: some block keeps at most 3 of its 6 shards.
	for _, p := range c.Stores[2:5] {
		p.Stop(t)
	}
	waitAliveCount(t, c, 3)
	if st := health(t, c, "rs"); st.State != catalog.StateLost || st.LostBlocks == 0 {
		t.Fatalf("five stores down: %+v, want lost", st)
	}
	errOut, code = get("five stores down")
	if code == 0 || !strings.Contains(errOut, "shards") {
		t.Fatalf("get with five of eight stores down: code %d, want a failure naming the shards:\n%s", code, errOut)
	}
}

// health is the state of the last version of job.
func health(t *testing.T, c *clustertest.Cluster, job string) catalog.VersionHealth {
	t.Helper()
	out, errOut, _ := c.Run(t, c.Dir, nil, "ckpt", "verify", job, "--json")
	var doc struct {
		Versions []catalog.VersionHealth `json:"versions"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || len(doc.Versions) == 0 {
		t.Fatalf("verify --json: %v:\n%s%s", err, out, errOut)
	}
	return doc.Versions[len(doc.Versions)-1]
}

// waitAliveCount waits until the manager counts n stores alive.
func waitAliveCount(t *testing.T, c *clustertest.Cluster, n int) {
	t.Helper()
	var alive int
	clustertest.Eventually(t, time.Minute, func() bool {
		list, err := c.Client().Stores(t.Context())
		alive = 0
		for _, s := range list {
			if s.Alive {
				alive++
			}
		}
		return err == nil && alive == n
	}, func() string { return fmt.Sprintf("the manager counts %d stores alive, want %d", alive, n) })
}

// TestRaisedReplicasMetAtCommit (finding F5): a file put with 1 copy and
// then with 3 is healthy at 3 copies the moment the second put returns,
// with repair off: reused blocks get their missing copies before commit.
func TestRaisedReplicasMetAtCommit(t *testing.T) {
	c := clustertest.NewCluster(t, clustertest.Options{Stores: 3, ManagerArgs: []string{"--repair-every", "0"}})
	work := t.TempDir()
	writeRandom(t, filepath.Join(work, "f.bin"), 1<<20+777, 5)
	for _, r := range []string{"1", "3"} {
		if _, errOut, code := c.Run(t, work, nil, "ckpt", "put", "rep", "f.bin", "--replicas", r, "--quiet", "--force-read"); code != 0 {
			t.Fatalf("put --replicas %s: %s", r, errOut)
		}
	}
	out, errOut, code := c.Run(t, c.Dir, nil, "ckpt", "verify", "rep", "--json")
	var doc struct {
		Versions []catalog.VersionHealth `json:"versions"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || code != 0 || len(doc.Versions) != 2 {
		t.Fatalf("verify --json: code %d %v:\n%s%s", code, err, out, errOut)
	}
	if v := doc.Versions[1]; v.State != catalog.StateHealthy || v.Target != 3 || v.MinCopies != 3 {
		t.Fatalf("version 2 right after put --replicas 3: %+v, want healthy with 3 copies of every block", v)
	}
}
