package main_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/cluster/clustertest"
)

// TestStoppedStoreDoesNotHang (finding F2): with one of three stores
// stopped (SIGSTOP: its connections stay open and answer nothing), a get
// of a 2-copy version reads the other copies, verify and gc finish and
// name the store, and a new put goes to the other two stores. Without the
// reply timeout and hedged reads each of these hangs.
func TestStoppedStoreDoesNotHang(t *testing.T) {
	t.Setenv("CKPT_STORE_REPLY_TIMEOUT", "1s") // the daemons inherit it
	env := []string{"CKPT_STORE_REPLY_TIMEOUT=1s"}
	// The manager keeps the stopped store alive for the whole test: what a
	// wedged store that still heartbeats looks like, and the worst case.
	// The stores are slow (2 MiB/s) so that a get is still reading when
	// one is stopped, and log their connections so the test knows when.
	slow := []string{"--max-bandwidth", "2MiB/s", "--log-level", "debug"}
	c := clustertest.NewCluster(t, clustertest.Options{Stores: 3, ManagerArgs: []string{"--repair-every", "0", "--dead-after", "10m"},
		StoreArgs: map[int][]string{0: slow, 1: slow, 2: slow}})
	work := t.TempDir()
	data := writeRandom(t, filepath.Join(work, "a.bin"), 3<<20+99, 3)
	if _, errOut, code := c.Run(t, work, env, "ckpt", "put", "stall", "a.bin", "--replicas", "3", "--quiet"); code != 0 {
		t.Fatalf("put: %s", errOut)
	}

	// A get that the stopped store stalls mid-way: no reply ever comes on
	// its open connections.
	out := t.TempDir()
	if got, errOut, code := getWhileStopping(t, c, work, env, out); code != 0 || !bytes.Equal(got, data) {
		t.Fatalf("get with a store stopped mid-way: code %d, same bytes %v: %s", code, bytes.Equal(got, data), errOut)
	}
	if _, errOut, code := c.Run(t, work, env, "ckpt", "verify", "stall"); code != 0 && code != 1 || !strings.Contains(errOut, "its copies were not counted") {
		t.Fatalf("verify with a stopped store: code %d, want the store named as not answering:\n%s", code, errOut)
	}
	if gout, errOut, _ := c.Run(t, work, env, "ckpt", "gc"); !strings.Contains(gout+errOut, "1 of 3 stores not swept completely") {
		t.Fatalf("gc with a stopped store did not name it:\n%s%s", gout, errOut)
	}
	writeRandom(t, filepath.Join(work, "b.bin"), 1<<20, 4)
	if _, errOut, code := c.Run(t, work, env, "ckpt", "put", "stall", "b.bin", "--replicas", "2", "--quiet"); code != 0 {
		t.Fatalf("put with a stopped store: code %d: %s", code, errOut)
	}
}

// getWhileStopping runs 'ckpt get stall --to out' and stops the store
// whose ID sorts first (with 3 copies on 3 stores, the first copy of every
// block) once the get has connected to it (SIGSTOP, undone when the test
// ends); it returns the file read back, stderr and the exit code.
func getWhileStopping(t *testing.T, c *clustertest.Cluster, work string, env []string, out string) ([]byte, string, int) {
	t.Helper()
	list, err := c.Client().Stores(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(list, func(a, b catalog.StoreInfo) int { return strings.Compare(a.ID, b.ID) })
	var first *clustertest.Proc
	for _, p := range c.Stores {
		if p.Addr == list[0].Addr {
			first = p
		}
	}
	if first == nil {
		t.Fatalf("no store process at %s", list[0].Addr)
	}
	opened := strings.Count(first.Output(), "connection open")
	cmd := exec.Command(filepath.Join(c.Bin, "ckpt"), "get", "stall", "--to", out, "--quiet")
	cmd.Dir, cmd.Env = work, append(c.Env(), env...)
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	clustertest.Eventually(t, time.Minute, func() bool {
		return strings.Count(first.Output(), "connection open") > opened
	}, func() string { return "the get did not connect to the first store" })
	stopped := first.Cmd.Process
	if err := stopped.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopped.Signal(syscall.SIGCONT) })
	code := 0
	if err := cmd.Wait(); err != nil {
		code = cmd.ProcessState.ExitCode()
	}
	got, _ := os.ReadFile(filepath.Join(out, "a.bin"))
	return got, errOut.String(), code
}
