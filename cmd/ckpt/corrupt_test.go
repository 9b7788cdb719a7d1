package main_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/cluster/clustertest"
)

// TestCorruptCopyRepaired (finding F4): bytes flipped in a store's pack
// file are found by 'verify --deep', the store drops the copies it served
// corrupt, so the next 'verify' says degraded and 'repair' copies them
// from the good holders; afterwards every copy reads back intact.
func TestCorruptCopyRepaired(t *testing.T) {
	// No spot checks: they could find the corrupt copies first, and this
	// test is of what a deep verify does with them.
	c := clustertest.NewCluster(t, clustertest.Options{Stores: 3, ManagerArgs: []string{"--repair-every", "0", "--spot-checks", "0"}})
	work := t.TempDir()
	writeRandom(t, filepath.Join(work, "f.bin"), 4<<20, 8)
	if _, errOut, code := c.Run(t, work, nil, "ckpt", "put", "rot", "f.bin", "--replicas", "2", "--no-compress", "--quiet"); code != 0 {
		t.Fatalf("put: %s", errOut)
	}
	packs, err := filepath.Glob(filepath.Join(c.Dir, "store-0", "packs", "*.pack"))
	if err != nil || len(packs) == 0 {
		t.Fatalf("no pack of store-0: %v", err)
	}
	f, err := os.OpenFile(packs[len(packs)-1], os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := f.Stat()
	for _, off := range []int64{st.Size() / 3, 2 * st.Size() / 3} {
		b := make([]byte, 1)
		f.ReadAt(b, off)
		b[0] ^= 0xff
		f.WriteAt(b, off)
	}
	f.Close()

	out, errOut, code := c.Run(t, work, nil, "ckpt", "verify", "rot", "--deep", "--quiet")
	if code == 0 || !strings.Contains(out+errOut, "corrupt") {
		t.Fatalf("verify --deep after flipping bytes: code %d, want the corrupt copies named:\n%s%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "the manager read them back") || !strings.Contains(errOut, "background repair is off: 'ckpt repair rot' replaces them") {
		t.Fatalf("verify --deep: want the corrupt copies reported, and repair by hand advised (background repair is off):\n%s", errOut)
	}
	if h := health(t, c, "rot"); h.State != catalog.StateDegraded {
		t.Fatalf("verify after the deep one: %+v, want degraded (the store dropped the copies it found corrupt)", h)
	}
	if out, errOut, code := c.Run(t, work, nil, "ckpt", "repair", "rot"); code != 0 || strings.Contains(out, " 0 copies made") {
		t.Fatalf("repair: code %d, want copies made:\n%s%s", code, out, errOut)
	}
	if out, errOut, code := c.Run(t, work, nil, "ckpt", "verify", "rot", "--deep", "--quiet"); code != 0 || !strings.Contains(out, "healthy") {
		t.Fatalf("verify --deep after repair: code %d:\n%s%s", code, out, errOut)
	}
}

// findInPacks returns the pack file of store dir that holds data, and
// where; "" when none does.
func findInPacks(t *testing.T, dir string, data []byte) (string, int) {
	t.Helper()
	packs, err := filepath.Glob(filepath.Join(dir, "packs", "*.pack"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range packs {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if i := bytes.Index(b, data); i >= 0 {
			return p, i
		}
	}
	return "", 0
}

// holds says whether store dir's packs hold data.
func holds(t *testing.T, dir string, data []byte) bool {
	t.Helper()
	p, _ := findInPacks(t, dir, data)
	return p != ""
}

// flipInBlock flips one byte in the middle of the copy of data (a block
// stored raw: --no-compress, no encryption) in store dir's pack files.
func flipInBlock(t *testing.T, dir string, data []byte) {
	t.Helper()
	p, i := findInPacks(t, dir, data)
	if p == "" {
		t.Fatalf("no pack of %s holds the block", dir)
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	at := int64(i + len(data)/2)
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, at); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{b[0] ^ 0xff}, at); err != nil {
		t.Fatal(err)
	}
}

// TestCorruptCopyReportedAndRepaired (finding F4): a read that meets
// corrupt copies reports them to the manager, which reads them back,
// drops them and repairs the job at once, with the next periodic repair
// an hour away: a different block is corrupt on each of the two holders,
// 'verify --deep' reports both, and the version is healthy again, every
// copy intact, without 'ckpt repair'. A get that meets one reads the
// other copy, byte-exact, and reports it the same way.
func TestCorruptCopyReportedAndRepaired(t *testing.T) {
	// No spot checks: they could find the corrupt copies before the deep
	// verify does (TestSpotCheckFindsAStoreThatLostItsData tests them).
	c := clustertest.NewCluster(t, clustertest.Options{Stores: 3, ManagerArgs: []string{"--repair-every", "1h", "--spot-checks", "0"}})
	work := t.TempDir()
	const bs = 64 << 10
	data := writeRandom(t, filepath.Join(work, "f.bin"), 16*bs, 10)
	if _, errOut, code := c.Run(t, work, nil, "ckpt", "put", "rot", "f.bin", "--replicas", "2", "--no-compress", "--block-size", "64KiB", "--quiet"); code != 0 {
		t.Fatalf("put: %s", errOut)
	}
	// Block 3 on one of its holders, block 7 on one of its.
	for _, k := range []int{3, 7} {
		block := data[k*bs : (k+1)*bs]
		for i := range c.Stores {
			dir := filepath.Join(c.Dir, fmt.Sprintf("store-%d", (i+k)%len(c.Stores)))
			if holds(t, dir, block) {
				flipInBlock(t, dir, block)
				break
			}
		}
	}
	out, errOut, code := c.Run(t, work, nil, "ckpt", "verify", "rot", "--deep", "--quiet")
	if code == 0 || !strings.Contains(errOut, "2 copies came back corrupt") || !strings.Contains(errOut, "a repair of rot is under way") {
		t.Fatalf("verify --deep: code %d, want 2 corrupt copies reported and a repair under way:\n%s%s", code, out, errOut)
	}
	clustertest.Eventually(t, 2*time.Minute, func() bool { return health(t, c, "rot").State == catalog.StateHealthy },
		func() string { return fmt.Sprintf("not healthy 2 minutes after the report: %+v", health(t, c, "rot")) })
	if out, errOut, code := c.Run(t, work, nil, "ckpt", "verify", "rot", "--deep", "--quiet"); code != 0 || strings.Contains(errOut, "corrupt") {
		t.Fatalf("verify --deep after the repair: code %d:\n%s%s", code, out, errOut)
	}

	// A get meets a corrupt copy: block 5's on the store its manifest
	// row lists first, which a read asks first.
	flipInBlock(t, firstHolderDir(t, c, "rot", 5*bs), data[5*bs:6*bs])
	_, errOut, code = c.Run(t, work, nil, "ckpt", "get", "rot", "--to", "out", "--quiet")
	if code != 0 || !strings.Contains(errOut, "1 copy came back corrupt (store ") || !strings.Contains(errOut, "1 dropped") {
		t.Fatalf("get past a corrupt copy: code %d, want it read from the other copy and reported:\n%s", code, errOut)
	}
	if got, err := os.ReadFile(filepath.Join(work, "out", "f.bin")); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("get read %d bytes that differ from the put (%v)", len(got), err)
	}
}

// firstHolderDir is the directory of the store listed first for the block
// of job's latest version at offset off.
func firstHolderDir(t *testing.T, c *clustertest.Cluster, job string, off int64) string {
	t.Helper()
	ctx := context.Background()
	m, err := c.Client().Manifest(ctx, job, 0)
	if err != nil {
		t.Fatal(err)
	}
	stores, err := c.Client().Stores(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range m.Blocks {
		if b.Offset != off {
			continue
		}
		for _, st := range stores {
			if st.ID != b.Stores[0] {
				continue
			}
			for i, p := range c.Stores {
				if p.Addr == st.Addr {
					return filepath.Join(c.Dir, fmt.Sprintf("store-%d", i))
				}
			}
		}
	}
	t.Fatalf("no running store is listed first for %s's block at %d", job, off)
	return ""
}

// TestVerifyUnknownRightAfterManagerRestart: right after the manager
// restarts, a version whose copies are on a store it has not heard from
// yet is "unknown" (exit 4, "again in a few seconds"), not lost.
func TestVerifyUnknownRightAfterManagerRestart(t *testing.T) {
	c := clustertest.NewCluster(t, clustertest.Options{Stores: 2, ManagerArgs: []string{"--repair-every", "0"}})
	work := t.TempDir()
	writeRandom(t, filepath.Join(work, "f.bin"), 1<<20, 9)
	if _, errOut, code := c.Run(t, work, nil, "ckpt", "put", "rs1", "f.bin", "--replicas", "1", "--quiet"); code != 0 {
		t.Fatalf("put: %s", errOut)
	}
	c.Stores[0].Stop(t)
	c.Stores[1].Stop(t)
	c.RestartManager(t, "--dead-after", "10m") // a long window: the test is not racing it
	_, errOut, code := c.Run(t, work, nil, "ckpt", "verify", "rs1")
	if code != 4 || !strings.Contains(errOut, "unknown") || !strings.Contains(errOut, "again in a few seconds") {
		t.Fatalf("verify right after a manager restart: code %d, want 4 and unknown:\n%s", code, errOut)
	}
}

// TestSpotCheckFindsAStoreThatLostItsData (finding F8): a store whose pack
// files are emptied behind its back still answers that it holds its
// blocks; the manager's spot checks read some back, find them gone, and
// count none of its copies, so 'verify' says degraded (not healthy) and
// names the store, and 'repair' copies the blocks to the other stores.
func TestSpotCheckFindsAStoreThatLostItsData(t *testing.T) {
	c := clustertest.NewCluster(t, clustertest.Options{Stores: 3, ManagerArgs: []string{"--repair-every", "0"}})
	work := t.TempDir()
	writeRandom(t, filepath.Join(work, "f.bin"), 2<<20, 11)
	if _, errOut, code := c.Run(t, work, nil, "ckpt", "put", "lost", "f.bin", "--replicas", "2", "--no-compress", "--quiet"); code != 0 {
		t.Fatalf("put: %s", errOut)
	}
	packs, err := filepath.Glob(filepath.Join(c.Dir, "store-0", "packs", "*.pack"))
	if err != nil || len(packs) == 0 {
		t.Fatalf("no pack of store-0: %v", err)
	}
	for _, p := range packs {
		if err := os.Truncate(p, 0); err != nil {
			t.Fatal(err)
		}
	}
	out, errOut, code := c.Run(t, work, nil, "ckpt", "verify", "lost")
	if !strings.Contains(out, "degraded") || !strings.Contains(errOut, "its copies were not counted: spot check") {
		t.Fatalf("verify with a store that lost its data: code %d, want degraded and the spot check named:\n%s%s", code, out, errOut)
	}
	if out, errOut, code := c.Run(t, work, nil, "ckpt", "repair", "lost"); code != 0 || strings.Contains(out, " 0 copies made") {
		t.Fatalf("repair: code %d, want copies made:\n%s%s", code, out, errOut)
	}
	if h := health(t, c, "lost"); h.State != catalog.StateHealthy {
		t.Fatalf("after the repair: %+v, want healthy", h)
	}
}
