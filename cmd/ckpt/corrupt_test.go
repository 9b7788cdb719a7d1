package main_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/cluster/clustertest"
)

// TestCorruptCopyRepaired (finding F4): bytes flipped in a store's pack
// file are found by 'verify --deep', the store drops the copies it served
// corrupt, so the next 'verify' says degraded and 'repair' copies them
// from the good holders; afterwards every copy reads back intact.
func TestCorruptCopyRepaired(t *testing.T) {
	c := clustertest.NewCluster(t, clustertest.Options{Stores: 3, ManagerArgs: []string{"--repair-every", "0"}})
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
