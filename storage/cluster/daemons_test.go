package cluster

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// startFake starts a long-running shell whose command line looks like a
// daemon's: argv[0] name, then args.
func startFake(t *testing.T, name string, args ...string) int {
	t.Helper()
	sh, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash not installed")
	}
	script := `exec -a "$0" sh -c 'while :; do sleep 1; done' "$@"`
	cmd := exec.Command(sh, append([]string{"-c", script, name}, args...)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// Wait for the exec to replace bash's command line.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if b, _ := os.ReadFile("/proc/" + itoa(cmd.Process.Pid) + "/cmdline"); len(b) > 0 && string(b[:len(name)]) == name {
			return cmd.Process.Pid
		}
		if time.Now().After(deadline) {
			t.Fatal("the fake daemon did not exec")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestOursByCommandLine: a process is a daemon of home only when its
// command line names the binary and one of home's data directories, so a
// pid reused by another program, or a daemon of another home, is not.
func TestOursByCommandLine(t *testing.T) {
	home := t.TempDir()
	mgr := startFake(t, "ckpt-manager", "--listen", "127.0.0.1:0", "--data", filepath.Join(home, "manager"))
	st := startFake(t, "/some/bin/ckpt-store", "--dir", filepath.Join(home, "store-3"))
	other := startFake(t, "ckpt-manager", "--data", filepath.Join(t.TempDir(), "manager"))
	notDaemon := startFake(t, "sleep", "--data", filepath.Join(home, "manager"))
	if name, ok := ours(home, mgr); !ok || name != "manager" {
		t.Errorf("manager: %q %v", name, ok)
	}
	if name, ok := ours(home, st); !ok || name != "store-3" {
		t.Errorf("store: %q %v", name, ok)
	}
	for _, pid := range []int{other, notDaemon, os.Getpid(), 0, -1} {
		if name, ok := ours(home, pid); ok {
			t.Errorf("pid %d taken for %s of %s", pid, name, home)
		}
	}
	// running finds them without pid files; Exists says there is a cluster.
	got := running(home)
	if len(got) != 2 || got[0].pid != mgr || got[1].pid != st {
		t.Errorf("running = %+v, want the manager %d and the store %d", got, mgr, st)
	}
	if !Exists(home) || Exists(t.TempDir()) {
		t.Errorf("Exists is wrong")
	}
	// A pid file naming a process that is not ours is ignored.
	if err := writePid(home, "store-0", notDaemon); err != nil {
		t.Fatal(err)
	}
	if got := running(home); len(got) != 2 {
		t.Errorf("running with a reused pid in a pid file = %+v", got)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
