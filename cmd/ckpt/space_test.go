package main_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/cluster/clustertest"
	"github.com/ckptio/ckptio/storage/token"
)

// lines returns the non-empty lines of s.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

// blockCounts is the blocks each running store holds, asked of the stores.
func blockCounts(t *testing.T, c *clustertest.Cluster) []int64 {
	t.Helper()
	var out []int64
	for _, st := range c.StoreStats(t) {
		out = append(out, st.Blocks)
	}
	return out
}

// TestPutOutOfSpaceFailsBeforeSending: a put that cannot fit in the
// stores' free space (2 stores of 4 MiB, 6 MiB times 2 copies) fails
// with one line naming the need and the free space, exit status 5, and
// the stores receive nothing.
func TestPutOutOfSpaceFailsBeforeSending(t *testing.T) {
	c := clustertest.NewCluster(t, clustertest.Options{Stores: 2, Quota: "4MiB"})
	work := t.TempDir()
	writeRandom(t, filepath.Join(work, "big"), 6<<20, 1)
	_, errOut, code := c.Run(t, work, nil, "ckpt", "put", "j", "big")
	if code != 5 {
		t.Fatalf("put: exit %d, want 5; stderr %q", code, errOut)
	}
	ls := lines(errOut)
	if len(ls) != 1 || !strings.Contains(ls[0], "cluster out of space: need 12.0 MiB, free 8.0 MiB on 2 stores") ||
		!strings.Contains(ls[0], "ckpt gc") {
		t.Fatalf("stderr is not the one out-of-space line: %q", errOut)
	}
	for i, st := range c.StoreStats(t) {
		if st.Blocks != 0 || st.Used != 0 {
			t.Fatalf("store %d received blocks before the pre-check refused: %+v", i, st)
		}
	}
}

// TestPutFillingMidwayLeavesNothingBehind: the pre-check passes (3
// stores, 66 MiB free) but every block needs 2 copies and two stores have
// room for hardly any: the put fails with one out-of-space line, no
// per-block quota warnings, exit 5, and the blocks it created are
// discarded, so every store holds what it held before.
func TestPutFillingMidwayLeavesNothingBehind(t *testing.T) {
	c := clustertest.NewCluster(t, clustertest.Options{Stores: 2, Quota: "1MiB"})
	c.AddStore(t, "large", "64MiB")
	c.WaitAlive(t, 3)
	work := t.TempDir()
	writeRandom(t, filepath.Join(work, "first"), 100<<10, 1)
	if _, errOut, code := c.Run(t, work, nil, "ckpt", "put", "j", "first"); code != 0 {
		t.Fatalf("first put: %s", errOut)
	}
	before := blockCounts(t, c)

	writeRandom(t, filepath.Join(work, "big"), 8<<20, 2)
	_, errOut, code := c.Run(t, work, nil, "ckpt", "put", "j", "big", "--block-size", "64KiB")
	if code != 5 {
		t.Fatalf("put: exit %d, want 5; stderr %q", code, errOut)
	}
	ls := lines(errOut)
	if len(ls) != 1 || !strings.Contains(ls[0], "cluster out of space: the 3 stores filled up during the write (quotas reached)") {
		t.Fatalf("stderr is not the one out-of-space line: %q", errOut)
	}
	if strings.Contains(errOut, "quota exceeded") {
		t.Fatalf("per-store refusals reached the user: %q", errOut)
	}
	after := blockCounts(t, c)
	for i := range before {
		if after[i] != before[i] {
			t.Fatalf("store %d holds %d blocks after the failed put, %d before: the put left blocks behind", i, after[i], before[i])
		}
	}
	// The version committed before is intact.
	to := filepath.Join(t.TempDir(), "out")
	if _, errOut, code := c.Run(t, work, nil, "ckpt", "get", "j", "--to", to); code != 0 {
		t.Fatalf("get: %s", errOut)
	}
}

// TestPutRightAfterGCUsesTheFreedSpace: stores that heartbeat once an
// hour, so the manager learns their usage only from a collection. After
// a GC the manager's figures are the stores' own: a put that needs more
// than is free is refused; once a version is deleted and GC frees its
// blocks, the manager shows the room at once and the put succeeds.
func TestPutRightAfterGCUsesTheFreedSpace(t *testing.T) {
	bin := clustertest.Build(t)
	dir := t.TempDir()
	c := &clustertest.Cluster{Bin: bin, Dir: dir, TokenFile: filepath.Join(dir, "token")}
	var err error
	if c.Token, err = token.Ensure(c.TokenFile); err != nil {
		t.Fatal(err)
	}
	c.Manager = clustertest.Start(t, filepath.Join(bin, "ckpt-manager"), "--listen", "127.0.0.1:0",
		"--data", filepath.Join(dir, "manager"), "--token-file", c.TokenFile, "--dead-after", "1h", "--gc-every", "1h")
	for _, name := range []string{"s0", "s1"} {
		c.Stores = append(c.Stores, clustertest.Start(t, filepath.Join(bin, "ckpt-store"), "--listen", "127.0.0.1:0",
			"--manager", c.Manager.Addr, "--dir", filepath.Join(dir, name), "--quota", "8MiB",
			"--token-file", c.TokenFile, "--heartbeat", "1h"))
	}
	c.WaitAlive(t, 2)
	managerUsed := func() []int64 {
		list, err := c.Client().Stores(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var used []int64
		for _, s := range list {
			used = append(used, s.Used)
		}
		return used
	}

	work := t.TempDir()
	writeRandom(t, filepath.Join(work, "a"), 3<<20, 1)
	if _, errOut, code := c.Run(t, work, nil, "ckpt", "put", "ja", "a"); code != 0 {
		t.Fatalf("put a: %s", errOut)
	}
	if _, errOut, code := c.Run(t, work, nil, "ckpt", "gc"); code != 0 {
		t.Fatalf("gc: %s", errOut)
	}
	for _, u := range managerUsed() {
		if u < 3<<20 {
			t.Fatalf("after gc the manager says %v bytes used: not refreshed from the stores", managerUsed())
		}
	}
	writeRandom(t, filepath.Join(work, "b"), 6<<20, 2)
	if _, errOut, code := c.Run(t, work, nil, "ckpt", "put", "jb", "b"); code != 5 || !strings.Contains(errOut, "cluster out of space: need 12.0 MiB") {
		t.Fatalf("put b while full: exit %d, stderr %q", code, errOut)
	}
	if _, errOut, code := c.Run(t, work, nil, "ckpt", "delete", "ja", "--version", "1"); code != 0 {
		t.Fatalf("delete: %s", errOut)
	}
	// The deleted version's blocks were last touched before now; GC
	// deletes those untouched since its horizon on the stores' clocks.
	c.WaitStoreClocks(t, time.Now().Add(100*time.Millisecond))
	if _, errOut, code := c.Run(t, work, nil, "ckpt", "gc"); code != 0 {
		t.Fatalf("gc: %s", errOut)
	}
	for _, u := range managerUsed() {
		if u != 0 {
			t.Fatalf("right after gc the manager says %v bytes used, the stores hold none", managerUsed())
		}
	}
	if out, errOut, code := c.Run(t, work, nil, "ckpt", "put", "jb", "b"); code != 0 || strings.TrimSpace(out) != "1" {
		t.Fatalf("put b after gc: exit %d, stderr %q", code, errOut)
	}
}

// TestGetWithAStoreKilledSaysSoOnce: with one of 3 stores killed and
// marked dead, a get of a version with 2 copies of each block returns
// the right bytes and says in one line how many blocks came from another
// copy and which store was passed over, with no line per block.
func TestGetWithAStoreKilledSaysSoOnce(t *testing.T) {
	c := clustertest.NewCluster(t, clustertest.Options{Stores: 3})
	work := t.TempDir()
	want := writeRandom(t, filepath.Join(work, "f"), 4<<20, 1)
	if _, errOut, code := c.Run(t, work, nil, "ckpt", "put", "j", "f", "--block-size", "64KiB"); code != 0 {
		t.Fatalf("put: %s", errOut)
	}
	// A block lists its stores sorted: the store with the lowest ID is
	// the first copy of every block it holds.
	stats := c.StoreStats(t)
	first := 0
	for i, st := range stats {
		if st.ID < stats[first].ID {
			first = i
		}
	}
	if stats[first].Blocks == 0 {
		t.Fatalf("store %s holds no block: %+v", stats[first].ID, stats)
	}
	dead := stats[first].ID
	c.Stores[first].Kill()
	clustertest.Eventually(t, 30*time.Second, func() bool {
		list, err := c.Client().Stores(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return slices.ContainsFunc(list, func(s catalog.StoreInfo) bool { return s.ID == dead && !s.Alive })
	}, func() string { return fmt.Sprintf("the manager does not mark store %s dead after 30s", dead) })
	to := filepath.Join(t.TempDir(), "out")
	_, errOut, code := c.Run(t, work, nil, "ckpt", "get", "j", "--to", to)
	if code != 0 {
		t.Fatalf("get: exit %d, stderr %q", code, errOut)
	}
	got, err := os.ReadFile(filepath.Join(to, "f"))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("get returned other bytes (err %v)", err)
	}
	var summaries int
	for _, l := range lines(errOut) {
		switch {
		case strings.Contains(l, "blocks read from another copy"):
			summaries++
			if !strings.Contains(l, "store "+dead) {
				t.Fatalf("summary does not name the dead store %s: %q", dead, l)
			}
		case strings.Contains(l, "version 1:"): // the closing line
		default:
			t.Fatalf("unexpected line on stderr: %q (all: %q)", l, errOut)
		}
	}
	if summaries != 1 {
		t.Fatalf("%d summary lines, want 1: %q", summaries, errOut)
	}
}
