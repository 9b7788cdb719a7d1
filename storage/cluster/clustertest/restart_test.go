package clustertest_test

import (
	"os"
	"testing"
	"time"

	"github.com/ckptio/ckptio/storage/cluster/clustertest"
)

// TestRestart restarts the manager on its address with an extra flag (the
// stores find it again) and a store with its directory wiped (it comes
// back under a new ID).
func TestRestart(t *testing.T) {
	c := clustertest.NewCluster(t, clustertest.Options{Stores: 2})
	addr := c.Manager.Addr
	old := c.Manager
	m := c.RestartManager(t, "--dead-after", "2s")
	if !old.Exited() || m.Exited() || c.Manager != m {
		t.Fatalf("after RestartManager: old exited %v, new exited %v", old.Exited(), m.Exited())
	}
	if m.Addr != addr || m.Flag("listen") != addr || m.Flag("dead-after") != "2s" {
		t.Fatalf("restarted manager on %s with --listen %s --dead-after %s, want %s and 2s", m.Addr, m.Flag("listen"), m.Flag("dead-after"), addr)
	}
	c.WaitAlive(t, 2)

	idOf := func(addr string) string {
		list, err := c.Client().Stores(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range list {
			if s.Addr == addr {
				return s.ID
			}
		}
		return ""
	}
	before := idOf(c.Stores[0].Addr)
	c.Stores[0].Kill()
	if err := os.RemoveAll(c.Stores[0].Flag("dir")); err != nil {
		t.Fatal(err)
	}
	s := c.RestartStore(t, 0)
	after := ""
	for deadline := time.Now().Add(10 * time.Second); after == "" && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		after = idOf(s.Addr) // once it heartbeats
	}
	if before == "" || after == "" || after == before {
		t.Fatalf("wiped store came back as %q, was %q: want a new ID", after, before)
	}
}
