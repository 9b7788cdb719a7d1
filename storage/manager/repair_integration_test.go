package manager_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/cluster/clustertest"
	"github.com/ckptio/ckptio/storage/manifest"
	"github.com/ckptio/ckptio/storage/remote"
	"github.com/ckptio/ckptio/storage/token"
)

// repairCluster starts a manager that repairs only when asked and marks a
// store dead after 2 s, and three stores.
func repairCluster(t *testing.T) *clustertest.Cluster {
	t.Helper()
	c := &clustertest.Cluster{Bin: clustertest.Build(t), Dir: t.TempDir()}
	c.TokenFile = filepath.Join(c.Dir, "token")
	var err error
	if c.Token, err = token.Ensure(c.TokenFile); err != nil {
		t.Fatal(err)
	}
	c.Manager = clustertest.Start(t, filepath.Join(c.Bin, "ckpt-manager"), "--listen", "127.0.0.1:0",
		"--data", filepath.Join(c.Dir, "manager"), "--token-file", c.TokenFile, "--dead-after", "2s",
		"--gc-every", "0", "--repair-every", "0")
	for _, name := range []string{"store-0", "store-1", "store-2"} {
		c.AddStore(t, name, "1GiB")
	}
	c.WaitAlive(t, 3)
	return c
}

// storeID asks the store at addr for its ID.
func storeID(t *testing.T, c *clustertest.Cluster, addr string) string {
	t.Helper()
	s, err := remote.Dial(context.Background(), addr, c.Token, remote.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, err := s.Stat(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st.ID
}

// waitStore waits until the manager sees store id alive or dead.
func waitStore(t *testing.T, c *clustertest.Cluster, id string, alive bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		list, err := c.Client().Stores(context.Background())
		if err == nil {
			for _, s := range list {
				if s.ID == id && s.Alive == alive {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("store %s not alive=%v after 20s: %+v, %v", id, alive, list, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// verifyStates runs ckpt verify --json and returns each version's state.
func verifyStates(t *testing.T, c *clustertest.Cluster, wantCode int, args ...string) []catalog.VersionHealth {
	t.Helper()
	out, errOut, code := c.Run(t, c.Dir, nil, "ckpt", append([]string{"verify", "job", "--json"}, args...)...)
	var h catalog.JobHealth
	if code != wantCode || json.Unmarshal([]byte(out), &h) != nil || h.Schema != catalog.SchemaHealth {
		t.Fatalf("verify --json %v: code %d (want %d), %q, %s", args, code, wantCode, out, errOut)
	}
	return h.Versions
}

// TestRepairAgainstRealDaemons: a version with every block on two stores
// loses one store (killed, its directory deleted); ckpt verify says
// degraded; ckpt repair copies the blocks to the third store and verify
// says healthy; ckpt get returns the exact bytes. The lost store restarts
// empty in the same directory under a new ID, and is where the next
// repair puts its copies when another store dies.
func TestRepairAgainstRealDaemons(t *testing.T) {
	ctx := context.Background()
	c := repairCluster(t)
	ids := make([]string, 3)
	for i, p := range c.Stores {
		ids[i] = storeID(t, c, p.Addr)
	}

	// Version 1: 1 MiB in 64 KiB blocks, each on stores 0 and 1.
	const block = 64 << 10
	data := writeRandom(t, filepath.Join(c.Dir, "data.bin"), 1<<20, 7)
	man := &manifest.Manifest{Job: "job", Kind: "files", Created: time.Now(), Meta: map[string]string{catalog.MetaReplicas: "2"}}
	for _, i := range []int{0, 1} {
		s, err := remote.Dial(ctx, c.Stores[i].Addr, c.Token, remote.Options{})
		if err != nil {
			t.Fatal(err)
		}
		for off := 0; off < len(data); off += block {
			b := data[off : off+block]
			if _, err := s.Put(ctx, storage.Sum(b), b); err != nil {
				t.Fatal(err)
			}
		}
		s.Close()
	}
	for off := 0; off < len(data); off += block {
		h := storage.Sum(data[off : off+block])
		man.Blocks = append(man.Blocks, manifest.Block{Object: "data.bin", Rank: -1, Offset: int64(off), Length: block,
			Hash: h, Key: h, StoredLength: block, Codec: manifest.CodecRaw, Stores: []string{ids[0], ids[1]}})
	}
	mc := c.Client()
	txn, err := mc.Begin(ctx, "job")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mc.Commit(ctx, txn.ID, mustMarshal(t, man)); err != nil {
		t.Fatal(err)
	}
	nblocks := len(man.Blocks)
	if vs := verifyStates(t, c, 0); len(vs) != 1 || vs[0].State != catalog.StateHealthy || vs[0].Blocks != nblocks || vs[0].Target != 2 {
		t.Fatalf("verify before: %+v", vs)
	}
	if vs := verifyStates(t, c, 0, "--deep"); vs[0].State != catalog.StateHealthy || vs[0].MinCopies != 2 {
		t.Fatalf("verify --deep before: %+v", vs)
	}
	protected := func() bool {
		t.Helper()
		vs, err := mc.Versions(ctx, "job")
		if err != nil {
			t.Fatal(err)
		}
		return vs[0].Protected
	}
	if !protected() {
		t.Fatal("version 1 does not read protected")
	}

	// Store 0 leaves for good.
	c.Stores[0].Kill()
	if err := os.RemoveAll(filepath.Join(c.Dir, "store-0")); err != nil {
		t.Fatal(err)
	}
	waitStore(t, c, ids[0], false)
	if protected() {
		t.Fatal("version 1 reads protected with a store dead")
	}
	out, errOut, code := c.Run(t, c.Dir, nil, "ckpt", "verify", "job")
	if code != 0 || !strings.Contains(out, "degraded") || !strings.Contains(errOut, "ckpt repair job") {
		t.Fatalf("verify degraded: code %d, %q, %s", code, out, errOut)
	}
	t.Logf("ckpt verify job:\n%s%s", out, errOut)

	out, errOut, code = c.Run(t, c.Dir, nil, "ckpt", "repair", "job")
	if code != 0 || !strings.Contains(out, "16 copies made (1.0 MiB)") {
		t.Fatalf("repair: code %d, %q, %s", code, out, errOut)
	}
	t.Logf("ckpt repair job:\n%s", out)
	if vs := verifyStates(t, c, 0, "--deep"); vs[0].State != catalog.StateHealthy || vs[0].MinCopies != 2 {
		t.Fatalf("verify --deep after repair: %+v", vs)
	}
	m, err := mc.Manifest(ctx, "job", 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range m.Blocks {
		if !slices.Equal(b.Stores, sorted(ids[1], ids[2])) {
			t.Fatalf("block at %d listed on %v after repair", b.Offset, b.Stores)
		}
	}
	if !protected() {
		t.Fatal("version 1 does not read protected after repair")
	}
	get := func(what string) {
		t.Helper()
		to := t.TempDir()
		if _, errOut, code := c.Run(t, c.Dir, nil, "ckpt", "get", "job", "--to", to); code != 0 {
			t.Fatalf("get %s: %s", what, errOut)
		}
		if got, err := os.ReadFile(filepath.Join(to, "data.bin")); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("get %s: bytes differ (err %v)", what, err)
		}
	}
	get("after the repair")

	// Store 0 comes back empty in the same directory: a new store.
	p := c.AddStore(t, "store-0", "1GiB")
	fresh := storeID(t, c, p.Addr)
	if fresh == ids[0] {
		t.Fatal("an emptied store kept its ID")
	}
	waitStore(t, c, fresh, true)

	// Store 1 leaves: the only alive store without the blocks is the new
	// one, so the copies go there.
	c.Stores[1].Kill()
	waitStore(t, c, ids[1], false)
	if vs := verifyStates(t, c, 0); vs[0].State != catalog.StateDegraded || vs[0].DegradedBlocks != nblocks {
		t.Fatalf("verify after store 1 died: %+v", vs)
	}
	rep, err := mc.Repair(ctx, "")
	if err != nil || rep.Copies != int64(nblocks) || rep.Updated != 1 || rep.Lost != 0 {
		t.Fatalf("repair: %+v, %v", rep, err)
	}
	for _, s := range rep.Stores {
		if s.ID == fresh && s.Received != int64(nblocks) {
			t.Fatalf("the new store received %d copies: %+v", s.Received, rep.Stores)
		}
	}
	if vs := verifyStates(t, c, 0); vs[0].State != catalog.StateHealthy {
		t.Fatalf("verify after the second repair: %+v", vs)
	}
	// Store 2 leaves too: the new store alone serves the version.
	c.Stores[2].Kill()
	waitStore(t, c, ids[2], false)
	get("from the new store alone")

	// A version whose blocks are all on dead stores is lost: verify exits
	// non-zero.
	p.Kill()
	waitStore(t, c, fresh, false)
	if vs := verifyStates(t, c, 1); vs[0].State != catalog.StateLost || vs[0].LostBlocks != nblocks {
		t.Fatalf("verify with no store: %+v", vs)
	}
}

func sorted(ids ...string) []string {
	slices.Sort(ids)
	return ids
}
