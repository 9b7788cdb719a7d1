package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ckptio/ckptio/storage/cluster/clustertest"
)

// TestFullDiskRecoversAfterGC (finding F6): a store on a 24 MiB file
// system that a put filled takes puts again once the failed put's blocks
// are gone: deleting them seals and compacts the active pack, so the file
// system's space comes back (before, the active pack was never compacted
// and the disk stayed full, even across a restart).
func TestFullDiskRecoversAfterGC(t *testing.T) {
	c := clustertest.NewCluster(t, clustertest.Options{Stores: 1})
	dir := filepath.Join(c.Dir, "tiny")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("mounting a 24 MiB tmpfs needs root: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	c.AddStore(t, "tiny", "1GiB") // the quota is not what stops it: the disk is
	c.WaitAlive(t, 2)
	c.Stores[0].Stop(t)
	waitAliveCount(t, c, 1) // the tiny store only

	// Fill the disk with a version, then delete it and collect.
	work := t.TempDir()
	writeRandom(t, filepath.Join(work, "big.bin"), 20<<20, 1)
	if _, errOut, code := c.Run(t, work, nil, "ckpt", "put", "full", "big.bin", "--replicas", "1", "--no-compress", "--quiet"); code != 0 {
		t.Fatalf("put of 20 MiB on a 24 MiB disk: code %d:\n%s", code, errOut)
	}
	writeRandom(t, filepath.Join(work, "small.bin"), 8<<20, 2)
	if _, errOut, code := c.Run(t, work, nil, "ckpt", "put", "full", "small.bin", "--replicas", "1", "--no-compress", "--quiet"); code == 0 || !strings.Contains(errOut, "out of space") {
		t.Fatalf("put of 8 MiB more on the full disk: code %d, want out of space:\n%s", code, errOut)
	}
	if out, errOut, code := c.Run(t, work, nil, "ckpt", "delete", "full", "--version", "1", "--gc"); code != 0 {
		t.Fatalf("delete --gc: code %d: %s%s", code, out, errOut)
	}
	clustertest.Eventually(t, 2*time.Minute, func() bool {
		_, _, code := c.Run(t, work, nil, "ckpt", "put", "full", "small.bin", "--replicas", "1", "--no-compress", "--quiet")
		return code == 0
	}, func() string {
		out, _ := exec.Command("df", "-k", dir).CombinedOutput()
		return "a put of 8 MiB never succeeded after the version filling the disk was deleted and collected:\n" + string(out)
	})
}
