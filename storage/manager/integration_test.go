package manager_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/cluster/clustertest"
	"github.com/ckptio/ckptio/storage/manager"
	"github.com/ckptio/ckptio/storage/manifest"
	"github.com/ckptio/ckptio/storage/remote"
	"github.com/ckptio/ckptio/storage/token"
)

// gcCluster starts a manager that collects only when asked and with no
// clock-skew allowance (the stores share its clock), and two stores.
func gcCluster(t *testing.T) *clustertest.Cluster {
	t.Helper()
	c := &clustertest.Cluster{Bin: clustertest.Build(t), Dir: t.TempDir()}
	c.TokenFile = filepath.Join(c.Dir, "token")
	var err error
	if c.Token, err = token.Ensure(c.TokenFile); err != nil {
		t.Fatal(err)
	}
	c.Manager = clustertest.Start(t, filepath.Join(c.Bin, "ckpt-manager"), "--listen", "127.0.0.1:0",
		"--data", filepath.Join(c.Dir, "manager"), "--token-file", c.TokenFile, "--dead-after", "3s",
		"--gc-every", "0", "--gc-clock-skew", "0")
	c.AddStore(t, "store-0", "1GiB")
	c.AddStore(t, "store-1", "1GiB")
	c.WaitAlive(t, 2)
	return c
}

func writeRandom(t *testing.T, path string, n int, seed int64) []byte {
	t.Helper()
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

// used sums the stores' used bytes once every store has heartbeated a
// figure satisfying ok, or fails after 10 s.
func used(t *testing.T, c *clustertest.Cluster, what string, ok func(int64) bool) int64 {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, errOut, code := c.Run(t, c.Dir, nil, "ckpt", "stores", "--json")
		var list catalog.StoreList
		if code != 0 || json.Unmarshal([]byte(out), &list) != nil || list.Schema != catalog.SchemaStores {
			t.Fatalf("stores --json: code %d, %q, %s", code, out, errOut)
		}
		var sum int64
		for _, s := range list.Stores {
			sum += s.Used
		}
		if ok(sum) {
			return sum
		}
		if time.Now().After(deadline) {
			t.Fatalf("stores use %d bytes, want %s", sum, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestRetainAndGCAgainstRealDaemons: two versions put with the ckpt tool,
// retain --keep-last 1, gc: the stores' used bytes drop by the first
// version's blocks and the kept version still reads back exactly.
func TestRetainAndGCAgainstRealDaemons(t *testing.T) {
	c := gcCluster(t)
	work := t.TempDir()
	const size = 8 << 20
	writeRandom(t, filepath.Join(work, "a.bin"), size, 1)
	if out, errOut, code := c.Run(t, work, nil, "ckpt", "put", "job", "a.bin"); code != 0 || strings.TrimSpace(out) != "1" {
		t.Fatalf("put 1: %q %s", out, errOut)
	}
	b := writeRandom(t, filepath.Join(work, "b.bin"), size, 2)
	if out, errOut, code := c.Run(t, work, nil, "ckpt", "put", "job", "b.bin"); code != 0 || strings.TrimSpace(out) != "2" {
		t.Fatalf("put 2: %q %s", out, errOut)
	}
	const copies = 2 // the default with 2 live stores
	before := used(t, c, "both versions", func(n int64) bool { return n >= copies*2*size })

	// A pinned version is refused by delete, in one line.
	if _, errOut, code := c.Run(t, work, nil, "ckpt", "pin", "job", "--version", "1"); code != 0 {
		t.Fatal(errOut)
	}
	_, errOut, code := c.Run(t, work, nil, "ckpt", "delete", "job", "--version", "1")
	if code == 0 || !strings.Contains(errOut, "version 1 is pinned") || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Fatalf("delete pinned: code %d, %q", code, errOut)
	}
	out, errOut, code := c.Run(t, work, nil, "ckpt", "retain", "job", "--keep-last", "1")
	if code != 0 || strings.Contains(out, "deleted version") {
		t.Fatalf("retain with version 1 pinned: %q %s", out, errOut)
	}
	if out, errOut, code := c.Run(t, work, nil, "ckpt", "unpin", "job", "--version", "1"); code != 0 || !strings.Contains(out, "version 1 of job is unpinned") {
		t.Fatalf("unpin: %q %s", out, errOut)
	}

	out, errOut, code = c.Run(t, work, nil, "ckpt", "retain", "job", "--keep-last", "1")
	if code != 0 || !strings.Contains(out, "deleted version 1\n") || strings.Contains(out, "version 2") {
		t.Fatalf("retain: code %d, %q, %s", code, out, errOut)
	}
	if out, _, _ := c.Run(t, work, nil, "ckpt", "retain", "job", "--show"); !strings.Contains(out, "keep the last 1") {
		t.Fatalf("retain --show: %q", out)
	}

	c.WaitStoreClocks(t, time.Now().Add(2*manager.GCDriftMargin)) // the last put is older than the GC's horizon
	out, errOut, code = c.Run(t, work, nil, "ckpt", "gc", "--json")
	var rep catalog.GCReport
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil {
		t.Fatalf("gc --json: code %d, %q, %s", code, out, errOut)
	}
	t.Logf("ckpt gc --json:\n%s", out)
	if len(rep.Stores) != 2 || len(rep.Failed()) != 0 || rep.FreedBytes < copies*size || rep.FreedBytes > copies*(size+size/8) {
		t.Fatalf("gc report %+v", rep)
	}
	after := used(t, c, "the first version's bytes fewer", func(n int64) bool { return n <= before-rep.FreedBytes })
	if after != before-rep.FreedBytes {
		t.Fatalf("used %d -> %d, but %d freed", before, after, rep.FreedBytes)
	}

	// A second collection finds nothing more; the human report says so.
	out, errOut, code = c.Run(t, work, nil, "ckpt", "gc")
	if code != 0 || !strings.Contains(out, "freed 0 B on 2 stores") || !strings.Contains(out, "STORE") {
		t.Fatalf("gc: code %d, %q, %s", code, out, errOut)
	}
	t.Logf("ckpt gc:\n%s", out)

	to := t.TempDir()
	if _, errOut, code := c.Run(t, work, nil, "ckpt", "get", "job", "--to", to); code != 0 {
		t.Fatalf("get: %s", errOut)
	}
	if got, err := os.ReadFile(filepath.Join(to, "b.bin")); err != nil || !bytes.Equal(got, b) {
		t.Fatalf("the kept version differs after gc (err %v)", err)
	}
	_, errOut, code = c.Run(t, work, nil, "ckpt", "get", "job", "--version", "1", "--to", t.TempDir())
	if code == 0 || !strings.Contains(errOut, "no version 1") {
		t.Fatalf("get deleted version: code %d, %q", code, errOut)
	}
	if vs, err := c.Client().Versions(context.Background(), "job"); err != nil || len(vs) != 1 || vs[0].Version != 2 {
		t.Fatalf("versions %+v, %v", vs, err)
	}
}

// TestGCSparesInFlightCheckpointOnRealStores: a block put by a checkpoint
// in flight survives a GC (with no clock-skew allowance: one machine) and
// its version commits whole; the block of an aborted checkpoint is
// collected by the next GC.
func TestGCSparesInFlightCheckpointOnRealStores(t *testing.T) {
	ctx := context.Background()
	c := gcCluster(t)
	mc := c.Client()
	st, err := remote.Dial(ctx, c.Stores[0].Addr, c.Token, remote.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	stat, err := st.Stat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	put := func(data string) storage.Hash {
		t.Helper()
		h := storage.Sum([]byte(data))
		if _, err := st.Put(ctx, h, []byte(data)); err != nil {
			t.Fatal(err)
		}
		return h
	}
	held := func(h storage.Hash) bool {
		t.Helper()
		_, err := st.Get(ctx, h)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			t.Fatal(err)
		}
		return err == nil
	}

	txn, err := mc.Begin(ctx, "live")
	if err != nil {
		t.Fatal(err)
	}
	h := put("written by the checkpoint in flight")
	aborted, err := mc.Begin(ctx, "dead")
	if err != nil {
		t.Fatal(err)
	}
	orphan := put("written by a checkpoint that aborts")
	if err := mc.Abort(ctx, aborted.ID); err != nil {
		t.Fatal(err)
	}
	rep, err := mc.GC(ctx)
	if err != nil || rep.Unreferenced != 2 || rep.FreedBytes != 0 {
		t.Fatalf("gc in flight: %+v, %v", rep, err)
	}
	if !held(h) || !held(orphan) {
		t.Fatal("a block touched after the oldest transaction began was collected")
	}
	m := &manifest.Manifest{Job: "live", Kind: "files", Created: time.Now(), Blocks: []manifest.Block{{
		Object: "f", Rank: -1, Length: 35, Hash: h, Key: h, StoredLength: 35, Codec: manifest.CodecRaw, Stores: []string{stat.ID},
	}}}
	if _, err := mc.Commit(ctx, txn.ID, mustMarshal(t, m)); err != nil {
		t.Fatal(err)
	}
	// No transaction in flight now: T0 is the GC's start, after both puts
	// by more than the drift margin.
	c.WaitStoreClocks(t, time.Now().Add(2*manager.GCDriftMargin))
	rep, err = mc.GC(ctx)
	if err != nil || rep.Unreferenced != 1 || rep.FreedBytes != int64(len("written by a checkpoint that aborts")) {
		t.Fatalf("gc after commit: %+v, %v", rep, err)
	}
	if !held(h) || held(orphan) {
		t.Fatalf("after commit and gc: committed block held %v, aborted one held %v", held(h), held(orphan))
	}
}

func mustMarshal(t *testing.T, m *manifest.Manifest) []byte {
	t.Helper()
	b, err := manifest.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
