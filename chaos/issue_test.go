//go:build linux

package chaos_test

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/cluster/clustertest"
)

// TestKnownIssue1 is the smallest reproduction of known issue 1
// (docs/availability.md, Chaos test, Known issues), without MPI: a version
// that reuses a block while one of its two holders is away lists the
// other only; once that one's disk is lost, the version cannot be read,
// although three stores hold the block, and neither ckpt verify nor ckpt
// repair notices. The issue is fixed (the version writer writes the
// missing copy, and repair rewrites short rows): the test fails if it
// comes back, or skips with CKPT_CHAOS_STRICT=0.
func TestKnownIssue1(t *testing.T) {
	c := clustertest.NewCluster(t, clustertest.Options{Stores: 4})
	c.RestartManager(t, "--dead-after", "2s", "--repair-every", "0", "--gc-every", "0")
	c.WaitAlive(t, 4)
	f := newClusterFleet(t, c)
	work := t.TempDir()
	data := make([]byte, 60000) // one block
	rand.Read(data)
	if err := os.WriteFile(filepath.Join(work, "f.bin"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	put := func(want int64) {
		t.Helper()
		out, errOut, code := c.Run(t, work, nil, "ckpt", "put", "--replicas", "2", "job", "f.bin")
		if v, _ := strconv.ParseInt(string(bytes.TrimSpace([]byte(out))), 10, 64); code != 0 || v != want {
			t.Fatalf("put: exit %d, version %q, want %d\n%s", code, out, want, errOut)
		}
	}

	put(1)
	m, err := c.Client().Manifest(t.Context(), "job", 1)
	if err != nil {
		t.Fatal(err)
	}
	key := m.Blocks[0].Key
	holders := f.holders(t, key)
	if len(holders) != 2 {
		t.Fatalf("version 1's block is on stores %v, want 2", holders)
	}
	x, y := holders[0], holders[1]

	// Version 2 reuses the block while x is away: confirmed on y only.
	c.Stores[x].Kill()
	put(2)
	c.RestartStore(t, x)
	// Version 3 while both are away: put again on the two others.
	c.Stores[x].Kill()
	c.Stores[y].Kill()
	put(3)
	c.RestartStore(t, x)
	// y's disk is lost.
	oldY := f.name(y)
	if err := os.RemoveAll(c.Stores[y].Flag("dir")); err != nil {
		t.Fatal(err)
	}
	c.RestartStore(t, y)
	for deadline := time.Now().Add(20 * time.Second); ; {
		list, err := c.Client().Stores(t.Context())
		dead := err == nil
		for _, s := range list {
			if s.ID == oldY && s.Alive {
				dead = false
			}
		}
		if dead {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("store %d's old ID %s still alive after 20s", y, oldY)
		}
		time.Sleep(100 * time.Millisecond)
	}
	f.waitAllAlive(t)

	if out, errOut, code := c.Run(t, work, nil, "ckpt", "repair", "job"); code != 0 {
		t.Fatalf("ckpt repair: exit %d\n%s%s", code, out, errOut)
	}
	checks, verr := verify(t, c, "job", true)
	to := t.TempDir()
	_, getErr, getCode := c.Run(t, work, nil, "ckpt", "get", "job", "--version", "2", "--to", to)
	got, _ := os.ReadFile(filepath.Join(to, "f.bin"))
	healthy := verr == "" && len(checks) == 3
	for _, ck := range checks {
		healthy = healthy && ck.State == catalog.StateHealthy
	}
	if healthy && getCode == 0 && bytes.Equal(got, data) {
		return // fixed
	}
	msg := "known issue 1 (docs/availability.md, Known issues): after a repair, ckpt verify --deep: %s; " +
		"ckpt get --version 2: exit %d %s; the block is held by stores %v"
	args := []any{verr, getCode, getErr, f.holders(t, key)}
	if os.Getenv("CKPT_CHAOS_STRICT") != "0" {
		t.Fatalf(msg, args...)
	}
	t.Skipf(msg, args...)
}
