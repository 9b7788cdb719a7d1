package manager_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/cluster/clustertest"
)

// catalogState is what a recovery must bring back of one job.
type catalogState struct {
	versions  []catalog.VersionInfo
	manifests map[int64][]byte
	retention catalog.Retention
}

func readCatalog(t *testing.T, c *clustertest.Cluster, job string) catalogState {
	t.Helper()
	ctx := context.Background()
	cl := c.Client()
	vs, err := cl.Versions(ctx, job)
	if err != nil {
		t.Fatal(err)
	}
	st := catalogState{versions: vs, manifests: map[int64][]byte{}}
	for _, v := range vs {
		b, _, err := cl.ManifestBytes(ctx, job, v.Version)
		if err != nil {
			t.Fatal(err)
		}
		st.manifests[v.Version] = b
	}
	if st.retention, err = cl.Retention(ctx, job); err != nil {
		t.Fatal(err)
	}
	return st
}

// putVersions writes n versions of job with ckpt put, each one file of
// new random bytes, and returns the bytes by version.
func putVersions(t *testing.T, c *clustertest.Cluster, work, job string, first, n int, replicas string, size int) map[int64][]byte {
	t.Helper()
	want := map[int64][]byte{}
	for v := first; v < first+n; v++ {
		data := writeRandom(t, filepath.Join(work, "data.bin"), size, int64(v))
		out, errOut, code := c.Run(t, work, nil, "ckpt", "put", "--replicas", replicas, job, "data.bin")
		if code != 0 || strings.TrimSpace(out) != strconv.Itoa(v) {
			t.Fatalf("put %d: code %d, %q, %s", v, code, out, errOut)
		}
		want[int64(v)] = data
	}
	return want
}

func storeAddrs(c *clustertest.Cluster) string {
	var addrs []string
	for _, s := range c.Stores {
		addrs = append(addrs, s.Addr)
	}
	return strings.Join(addrs, ",")
}

// loseAndRecover kills the manager, removes its data directory and starts
// ckpt-manager --recover on a new directory, at the same address; it waits
// until the n stores still running are heard from again.
func loseAndRecover(t *testing.T, c *clustertest.Cluster, alive int) *clustertest.Proc {
	t.Helper()
	c.Manager.Kill()
	if err := os.RemoveAll(c.Manager.Flag("data")); err != nil {
		t.Fatal(err)
	}
	c.Manager = c.Manager.Restart(t, true, "--data", filepath.Join(c.Dir, "manager-recovered"),
		"--recover", "--recover-from", storeAddrs(c))
	c.WaitAlive(t, alive)
	return c.Manager
}

func getVersion(t *testing.T, c *clustertest.Cluster, job string, v int64) []byte {
	t.Helper()
	to := filepath.Join(t.TempDir(), "out")
	if out, errOut, code := c.Run(t, t.TempDir(), nil, "ckpt", "get", job, "--to", to, "--version", strconv.FormatInt(v, 10)); code != 0 {
		t.Fatalf("get version %d: code %d, %s%s", v, code, out, errOut)
	}
	b, err := os.ReadFile(filepath.Join(to, "data.bin"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRecoverCatalogFromStores: 5 versions with 2 copies on 3 stores, one
// pinned, a retention policy, one deleted; then the manager's data
// directory is lost. ckpt-manager --recover on a new directory brings back
// every remaining version with its number, metadata and byte-identical
// manifest, the pin and the policy; the deleted version stays deleted;
// every version reads back its original bytes, also after a GC.
func TestRecoverCatalogFromStores(t *testing.T) {
	c := clustertest.NewCluster(t, clustertest.Options{Stores: 3})
	work := t.TempDir()
	want := putVersions(t, c, work, "job", 1, 5, "2", 300<<10)
	if _, errOut, code := c.Run(t, work, nil, "ckpt", "pin", "job", "--version", "2"); code != 0 {
		t.Fatal(errOut)
	}
	if _, errOut, code := c.Run(t, work, nil, "ckpt", "retain", "job", "--keep-last", "10"); code != 0 {
		t.Fatal(errOut)
	}
	if _, errOut, code := c.Run(t, work, nil, "ckpt", "delete", "job", "--version", "4"); code != 0 {
		t.Fatal(errOut)
	}
	delete(want, 4)
	before := readCatalog(t, c, "job")
	if len(before.versions) != 4 || !before.versions[1].Pinned || before.retention.KeepLast != 10 {
		t.Fatalf("before the loss: %+v, retention %+v", before.versions, before.retention)
	}

	// A recovery never writes into a directory that holds a catalog.
	out, err := exec.Command(filepath.Join(c.Bin, "ckpt-manager"), "--listen", "127.0.0.1:0", "--data", c.Manager.Flag("data"),
		"--token-file", c.TokenFile, "--recover", "--recover-from", storeAddrs(c)).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || !strings.Contains(string(out), "not empty") {
		t.Fatalf("--recover into the live catalog's directory: %v, %s", err, out)
	}

	m := loseAndRecover(t, c, 3)
	if !strings.Contains(m.Output(), "recovered the catalog from 3 of 3 stores: 1 jobs, 4 versions; 1 deleted versions stay deleted") {
		t.Fatalf("recovery report:\n%s", m.Output())
	}
	after := readCatalog(t, c, "job")
	if !reflect.DeepEqual(after.versions, before.versions) {
		t.Errorf("versions after recovery:\n%+v\nwant\n%+v", after.versions, before.versions)
	}
	for v, b := range before.manifests {
		if !bytes.Equal(after.manifests[v], b) {
			t.Errorf("manifest of version %d differs after recovery (%d bytes, want %d)", v, len(after.manifests[v]), len(b))
		}
	}
	if after.retention != before.retention {
		t.Errorf("retention after recovery %+v, want %+v", after.retention, before.retention)
	}
	if _, err := c.Client().Version(context.Background(), "job", 4); !errors.Is(err, catalog.ErrUnknownVersion) {
		t.Errorf("deleted version 4 after recovery: %v, want ErrUnknownVersion", err)
	}
	// New commits continue the numbering: 6, not 5 again.
	putVersions(t, c, work, "job", 6, 1, "2", 1000)
	if out, errOut, code := c.Run(t, work, nil, "ckpt", "gc"); code != 0 {
		t.Fatalf("gc: %s%s", out, errOut)
	}
	for v, data := range want {
		if got := getVersion(t, c, "job", v); !bytes.Equal(got, data) {
			t.Errorf("version %d reads back %d bytes that differ from the %d put", v, len(got), len(data))
		}
	}
}

// TestRecoverWithAStoreDead: with one of three stores dead, recovery still
// brings back every version that has a record elsewhere (2 copies), and
// reports the dead store and the version whose only record it held.
func TestRecoverWithAStoreDead(t *testing.T) {
	c := clustertest.NewCluster(t, clustertest.Options{Stores: 3})
	work := t.TempDir()
	want := putVersions(t, c, work, "job", 1, 3, "2", 200<<10)
	putVersions(t, c, work, "job", 4, 1, "1", 1000) // one block, one copy
	before := readCatalog(t, c, "job")
	vi4 := before.versions[3]
	man, err := c.Client().Manifest(context.Background(), "job", 4)
	if err != nil {
		t.Fatal(err)
	}
	holder := man.Blocks[0].Stores[0]
	stores, err := c.Client().Stores(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	dead := -1
	for _, s := range stores {
		for i, p := range c.Stores {
			if s.ID == holder && s.Addr == p.Addr {
				dead = i
			}
		}
	}
	if dead < 0 || vi4.Replicas != 1 {
		t.Fatalf("holder %s of version 4 not found among %+v (replicas %d)", holder, stores, vi4.Replicas)
	}
	c.Stores[dead].Kill()

	m := loseAndRecover(t, c, 2)
	log := m.Output()
	if !strings.Contains(log, "store "+c.Stores[dead].Addr+" not read") ||
		!strings.Contains(log, "job job: no record of version(s) 4") ||
		!strings.Contains(log, "recovered the catalog from 2 of 3 stores: 1 jobs, 3 versions") {
		t.Fatalf("recovery report:\n%s", log)
	}
	after := readCatalog(t, c, "job")
	if len(after.versions) != 3 {
		t.Fatalf("recovered %d versions, want 3: %+v", len(after.versions), after.versions)
	}
	for i, vi := range after.versions {
		old := before.versions[i]
		old.Protected, vi.Protected = false, false // a store is dead now
		if !reflect.DeepEqual(vi, old) {
			t.Errorf("version %d after recovery:\n%+v\nwant\n%+v", old.Version, vi, old)
		}
		if !bytes.Equal(after.manifests[vi.Version], before.manifests[vi.Version]) {
			t.Errorf("manifest of version %d differs after recovery", vi.Version)
		}
		if got := getVersion(t, c, "job", vi.Version); !bytes.Equal(got, want[vi.Version]) {
			t.Errorf("version %d reads back bytes that differ from those put", vi.Version)
		}
	}
}

// TestRecoverAfterRepair: a version with 2 copies loses a store; repair
// copies its blocks to the third store and rewrites its manifest, and so
// its catalog record, on the alive holders. Then the other original holder dies
// too and the manager's data is lost: recovery from the one store left
// brings the version back with the repaired manifest, readable.
func TestRecoverAfterRepair(t *testing.T) {
	c := clustertest.NewCluster(t, clustertest.Options{Stores: 3})
	work := t.TempDir()
	want := putVersions(t, c, work, "job", 1, 1, "2", 1000) // one block
	man, err := c.Client().Manifest(context.Background(), "job", 1)
	if err != nil {
		t.Fatal(err)
	}
	stores, err := c.Client().Stores(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var holders []int
	var deadID string
	for _, s := range stores {
		for i, p := range c.Stores {
			if s.Addr == p.Addr && slices.Contains(man.Blocks[0].Stores, s.ID) {
				if holders = append(holders, i); len(holders) == 1 {
					deadID = s.ID
				}
			}
		}
	}
	if len(holders) != 2 {
		t.Fatalf("version 1's block is on stores %v, want 2 of %+v", man.Blocks[0].Stores, stores)
	}
	t.Logf("killing store %s, a holder of version 1", deadID)
	c.Stores[holders[0]].Kill()
	// Repair counts a store out once it is dead (--dead-after 3s).
	var now []string
	clustertest.Eventually(t, time.Minute, func() bool {
		out, errOut, code := c.Run(t, work, nil, "ckpt", "repair", "job", "--quiet")
		if code != 0 {
			t.Fatalf("repair: code %d, %s%s", code, out, errOut)
		}
		m, err := c.Client().Manifest(context.Background(), "job", 1)
		if err != nil {
			t.Fatal(err)
		}
		// The third store holds a copy now (the dead one may stay listed).
		now = m.Blocks[0].Stores
		return slices.ContainsFunc(now, func(id string) bool { return !slices.Contains(man.Blocks[0].Stores, id) })
	}, func() string {
		return fmt.Sprintf("repair did not copy version 1 to the third store within a minute: %v", now)
	})
	repaired := readCatalog(t, c, "job")
	c.Stores[holders[1]].Kill()

	m := loseAndRecover(t, c, 1)
	if !strings.Contains(m.Output(), "recovered the catalog from 1 of 3 stores: 1 jobs, 1 versions") {
		t.Fatalf("recovery report:\n%s", m.Output())
	}
	after := readCatalog(t, c, "job")
	if !bytes.Equal(after.manifests[1], repaired.manifests[1]) {
		t.Errorf("recovered manifest differs from the repaired one")
	}
	if got := getVersion(t, c, "job", 1); !bytes.Equal(got, want[1]) {
		t.Errorf("version 1 reads back bytes that differ from those put")
	}
}
