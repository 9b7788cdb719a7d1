package manager_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/cluster/clustertest"
	"github.com/ckptio/ckptio/storage/token"
)

// labelledCluster starts a manager that repairs in the background every
// 300ms and three stores labelled desk-0..desk-2.
func labelledCluster(t *testing.T) *clustertest.Cluster {
	t.Helper()
	c := &clustertest.Cluster{Bin: clustertest.Build(t), Dir: t.TempDir()}
	c.TokenFile = filepath.Join(c.Dir, "token")
	var err error
	if c.Token, err = token.Ensure(c.TokenFile); err != nil {
		t.Fatal(err)
	}
	c.Manager = clustertest.Start(t, filepath.Join(c.Bin, "ckpt-manager"), "--listen", "127.0.0.1:0",
		"--data", filepath.Join(c.Dir, "manager"), "--token-file", c.TokenFile, "--dead-after", "2s",
		"--gc-every", "0", "--repair-every", "300ms")
	for i := range 3 {
		p := clustertest.Start(t, filepath.Join(c.Bin, "ckpt-store"), "--listen", "127.0.0.1:0", "--manager", c.Manager.Addr,
			"--dir", filepath.Join(c.Dir, fmt.Sprintf("store-%d", i)), "--quota", "1GiB", "--token-file", c.TokenFile,
			"--heartbeat", "200ms", "--label", fmt.Sprintf("desk-%d", i))
		c.Stores = append(c.Stores, p)
	}
	c.WaitAlive(t, 3)
	return c
}

// pollStores runs ckpt stores until ok says its output is what the test
// waits for, or fails after a minute.
func pollStores(t *testing.T, c *clustertest.Cluster, what string, ok func(out string) bool) string {
	t.Helper()
	var out, errOut string
	var code int
	clustertest.Eventually(t, time.Minute, func() bool {
		out, errOut, code = c.Run(t, c.Dir, nil, "ckpt", "stores")
		return code == 0 && ok(out)
	}, func() string {
		return fmt.Sprintf("ckpt stores: %s not seen within a minute: code %d\n%s%s", what, code, out, errOut)
	})
	return out
}

// lineOf returns the line of ckpt stores' output naming store id.
func lineOf(out, id string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, id) {
			return l
		}
	}
	return ""
}

// TestDrainAndForgetAgainstRealDaemons: a version with two copies on three
// labelled stores; ckpt stores shows the labels and the bytes each took
// in; one holding blocks is drained, and the background repair moves its
// copies until ckpt stores says drained; a new version places nothing on
// it; forget succeeds, and every version still verifies healthy and reads
// back. A store holding the only copy of a version's blocks dies, and
// forget refuses it, naming the count.
func TestDrainAndForgetAgainstRealDaemons(t *testing.T) {
	c := labelledCluster(t)
	ctx := context.Background()
	work := t.TempDir()
	data := make([]byte, 6<<20)
	rand.New(rand.NewSource(7)).Read(data)
	if err := os.WriteFile(filepath.Join(work, "state.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := c.Run(t, work, nil, "ckpt", "put", "job", "state.bin", "--replicas", "2"); code != 0 {
		t.Fatalf("put: %s", errOut)
	}

	// The labels show, and the heartbeats bring the bytes the stores took in.
	pollStores(t, c, "every label", func(out string) bool {
		return strings.Contains(out, "desk-0") && strings.Contains(out, "desk-1") && strings.Contains(out, "desk-2")
	})
	var in int64
	var out string
	clustertest.Eventually(t, time.Minute, func() bool {
		var code int
		out, _, code = c.Run(t, c.Dir, nil, "ckpt", "stores", "--json")
		var list catalog.StoreList
		in = 0
		if code == 0 && json.Unmarshal([]byte(out), &list) == nil {
			for _, s := range list.Stores {
				in += s.BytesIn
			}
		}
		return in >= 2*int64(len(data)) // two copies of every block
	}, func() string {
		return fmt.Sprintf("stores report %d bytes in after two copies of %d bytes:\n%s", in, len(data), out)
	})

	mc := c.Client()
	list, err := mc.Stores(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var drained string
	for _, s := range list {
		if cp, err := mc.StoreCopies(ctx, s.ID); err == nil && cp.Blocks > 0 {
			drained = s.ID
			break
		}
	}
	if drained == "" {
		t.Fatal("no store holds a block")
	}
	out, errOut, code := c.Run(t, c.Dir, nil, "ckpt", "stores", "drain", drained)
	if code != 0 || !strings.Contains(out, "draining") {
		t.Fatalf("drain: code %d, %s%s", code, out, errOut)
	}
	out = pollStores(t, c, drained+" drained", func(out string) bool { return strings.Contains(lineOf(out, drained), "drained") })
	t.Logf("after the drain:\n%s", out)

	// New writes place nothing on a draining store.
	more := make([]byte, 2<<20)
	rand.New(rand.NewSource(8)).Read(more)
	if err := os.WriteFile(filepath.Join(work, "more.bin"), more, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := c.Run(t, work, nil, "ckpt", "put", "job", "more.bin", "--replicas", "2"); code != 0 {
		t.Fatalf("put while draining: %s", errOut)
	}
	if cp, err := mc.StoreCopies(ctx, drained); err != nil || cp.Blocks != 0 {
		t.Fatalf("a new version placed blocks on the draining store: %+v, %v", cp, err)
	}

	if out, errOut, code := c.Run(t, c.Dir, nil, "ckpt", "stores", "forget", drained); code != 0 || !strings.Contains(out, "forgotten") {
		t.Fatalf("forget of a drained store: code %d, %s%s", code, out, errOut)
	}
	var stopped string
	for _, p := range c.Stores {
		if storeID(t, c, p.Addr) == drained {
			p.Stop(t)
			stopped = p.Addr
		}
	}
	if out, _, _ := c.Run(t, c.Dir, nil, "ckpt", "stores"); strings.Contains(out, drained) {
		t.Fatalf("the forgotten store is still listed:\n%s", out)
	}
	for _, vh := range verifyStates(t, c, 0) {
		if vh.State != catalog.StateHealthy || vh.MinCopies < 2 {
			t.Fatalf("after forget: version %+v", vh)
		}
	}
	to := t.TempDir()
	if _, errOut, code := c.Run(t, work, nil, "ckpt", "get", "job", "--version", "1", "--to", to); code != 0 {
		t.Fatalf("get: %s", errOut)
	}
	if got, err := os.ReadFile(filepath.Join(to, "state.bin")); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("state.bin differs after the drain (err %v)", err)
	}

	// One copy only: the store holding it dies, and forget refuses it.
	solo := make([]byte, 1<<20) // new blocks: none of them deduplicated
	rand.New(rand.NewSource(9)).Read(solo)
	if err := os.WriteFile(filepath.Join(work, "solo.bin"), solo, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := c.Run(t, work, nil, "ckpt", "put", "solo", "solo.bin", "--replicas", "1"); code != 0 {
		t.Fatalf("put solo: %s", errOut)
	}
	var victim string
	for _, p := range c.Stores {
		if p.Addr == stopped {
			continue
		}
		id := storeID(t, c, p.Addr)
		if cp, err := mc.StoreCopies(ctx, id); err == nil && cp.OnlyCopy > 0 {
			victim = id
			p.Kill()
			break
		}
	}
	if victim == "" {
		t.Fatal("no store holds the only copy of solo's blocks")
	}
	waitStore(t, c, victim, false)
	_, errOut, code = c.Run(t, c.Dir, nil, "ckpt", "stores", "forget", victim)
	if code == 0 || !strings.Contains(errOut, "holds the only copy of") || !strings.Contains(errOut, "named by 1 versions") {
		t.Fatalf("forget of the only copy: code %d, %s", code, errOut)
	}
}

// TestQuietHoursAgainstRealDaemons: a store started with --quiet-hours
// around now reports itself busy; ckpt stores shows why, and garbage
// collection leaves it alone, saying so, while it sweeps the other.
func TestQuietHoursAgainstRealDaemons(t *testing.T) {
	c := repairCluster(t)
	now := time.Now()
	window := fmt.Sprintf("%s-%s", now.Add(-time.Hour).Format("15:04"), now.Add(time.Hour).Format("15:04"))
	p := clustertest.Start(t, filepath.Join(c.Bin, "ckpt-store"), "--listen", "127.0.0.1:0", "--manager", c.Manager.Addr,
		"--dir", filepath.Join(c.Dir, "quiet"), "--quota", "1GiB", "--token-file", c.TokenFile,
		"--heartbeat", "200ms", "--label", "night owl", "--quiet-hours", window)
	id := storeID(t, c, p.Addr)
	pollStores(t, c, id+" busy", func(out string) bool {
		l := lineOf(out, id)
		return strings.Contains(l, "night owl") && strings.Contains(l, "busy: quiet hours "+window)
	})
	rep, err := c.Client().GC(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	skipped := false
	for _, s := range rep.Skipped {
		skipped = skipped || (s.ID == id && s.Reason == "busy: quiet hours "+window)
	}
	for _, s := range rep.Stores {
		if s.ID == id {
			t.Fatalf("gc swept the busy store: %+v", rep)
		}
	}
	if !skipped || len(rep.Stores) != 3 {
		t.Fatalf("gc report %+v: want the quiet store skipped as busy and the 3 others swept", rep)
	}
}
