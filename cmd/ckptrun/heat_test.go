package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/cluster"
	"github.com/ckptio/ckptio/storage/cluster/clustertest"
	"github.com/ckptio/ckptio/storage/token"
)

// The tests in this file run examples/heat on 2 ranks under the real
// mpirun, through the real ckptrun, against the embedded local cluster
// (real ckpt-manager and ckpt-store processes) under a fresh CKPT_HOME.

// heatSetup builds ckptrun, the daemons and heat, and returns a function
// running ckptrun with args in an environment using the local cluster
// under home.
func heatSetup(t *testing.T) (home string, run func(args ...string) (int, string)) {
	t.Helper()
	if _, err := exec.LookPath("mpirun"); err != nil {
		t.Skip("mpirun not installed (apt-get install openmpi-bin libopenmpi-dev)")
	}
	if testing.Short() {
		t.Skip("runs heat under mpirun")
	}
	bin := clustertest.Build(t, "examples/heat")
	if _, err := os.Stat(filepath.Join(bin, "heat")); err != nil {
		t.Skip("heat was not built: another test built the commands first without it")
	}
	home = filepath.Join(t.TempDir(), "home")
	t.Cleanup(func() {
		if err := cluster.Down(home); err != nil {
			t.Errorf("cluster.Down: %v", err)
		}
	})
	env := cleanEnv("CKPT_HOME="+home, "OMPI_MCA_rmaps_base_oversubscribe=1", "OMPI_MCA_btl_vader_single_copy_mechanism=none",
		"HEAT="+filepath.Join(bin, "heat"))
	if os.Geteuid() == 0 {
		env = append(env, "OMPI_ALLOW_RUN_AS_ROOT=1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1")
	}
	return home, func(args ...string) (int, string) {
		t.Helper()
		for i, a := range args {
			if a == "HEAT" {
				args[i] = filepath.Join(bin, "heat")
			}
		}
		cmd := exec.Command(filepath.Join(bin, "ckptrun"), args...)
		cmd.Env, cmd.Dir = env, t.TempDir()
		out, err := cmd.CombinedOutput()
		if _, ok := err.(*exec.ExitError); err != nil && !ok {
			t.Fatal(err)
		}
		return cmd.ProcessState.ExitCode(), string(out)
	}
}

// localVersions lists the committed versions of job in the local cluster.
func localVersions(t *testing.T, home, job string) []int64 {
	t.Helper()
	info, _, err := cluster.Status(t.Context(), home)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := token.ReadFile(info.TokenFile)
	if err != nil {
		t.Fatal(err)
	}
	vs, err := catalog.NewClient(info.Manager, tok, catalog.ClientOptions{}).Versions(context.Background(), job)
	if err != nil {
		t.Fatal(err)
	}
	var ns []int64
	for _, v := range vs {
		ns = append(ns, v.Version)
	}
	sort.Slice(ns, func(i, j int) bool { return ns[i] < ns[j] })
	return ns
}

// TestHeatFailuresClassified: heat's restore of a version of another
// shape is refused and not relaunched; --restart-version 99 fails before
// launch; --fresh starts at step 0 keeping the old versions; local daemons
// killed during an attempt are restarted before the relaunch, which
// restores the latest version.
func TestHeatFailuresClassified(t *testing.T) {
	home, run := heatSetup(t)
	heat := []string{"-np", "2", "--job", "heat", "HEAT", "--n", "64", "--steps", "20", "--checkpoint-every", "10"}
	if code, out := run(heat...); code != 0 {
		t.Fatalf("first run: exit %d\n%s", code, out)
	}
	if vs := localVersions(t, home, "heat"); len(vs) != 2 {
		t.Fatalf("versions after 20 steps every 10: %v, want 2", vs)
	}

	// A grid of another size: the restore is refused on every rank.
	code, out := run("-np", "2", "--job", "heat", "HEAT", "--n", "48", "--steps", "20")
	if code == 0 || !strings.Contains(out, "restore was refused") || !strings.Contains(out, "after 1 attempt (0 restarts)") {
		t.Fatalf("refused restore: exit %d, want one attempt and the reason\n%s", code, out)
	}

	// A version that does not exist: nothing is launched.
	code, out = run(append([]string{"--restart-version", "99"}, heat...)...)
	if code != 3 || !strings.Contains(out, "job heat has no version 99; its latest is 2") || strings.Contains(out, "attempt 1") {
		t.Fatalf("--restart-version 99: exit %d\n%s", code, out)
	}

	// --fresh: from step 0, and versions 1 and 2 stay.
	code, out = run(append([]string{"--fresh"}, heat...)...)
	if code != 0 || !strings.Contains(out, "no version of heat to restore; starting at step 0 on 2 ranks") {
		t.Fatalf("--fresh: exit %d\n%s", code, out)
	}
	if vs := localVersions(t, home, "heat"); len(vs) != 4 || vs[0] != 1 || vs[1] != 2 {
		t.Fatalf("versions after --fresh: %v, want 1 and 2 kept, 3 and 4 new", vs)
	}

	// Attempt 0 kills every daemon of the local cluster (as a crash of
	// the machine's daemons would) and fails; ckptrun restarts the
	// cluster, and attempt 1 restores version 4 and finishes.
	killer := `if [ "$CKPT_ATTEMPT" = 0 ]; then
	if [ "$OMPI_COMM_WORLD_RANK" = 0 ]; then
		for f in "$CKPT_HOME"/run/*.pid; do kill -9 "$(cat "$f")"; done
		for f in "$CKPT_HOME"/run/*.pid; do
			p=$(cat "$f"); i=0
			while [ -d /proc/$p ] && ! grep -q ') Z' /proc/$p/stat 2>/dev/null && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done
		done
	fi
	exit 1
fi
exec "$HEAT" "$@"`
	code, out = run("-np", "2", "--job", "heat", "--", "/bin/sh", "-c", killer, "sh", "--n", "64", "--steps", "30", "--checkpoint-every", "10")
	if code != 0 || !strings.Contains(out, "restarting it before the relaunch") || !strings.Contains(out, "restored heat version 4 (step 20)") {
		t.Fatalf("daemons killed during attempt 0: exit %d\n%s", code, out)
	}
	if _, ok, err := cluster.Status(t.Context(), home); !ok || err != nil {
		t.Fatalf("local cluster after the relaunch: healthy=%v err=%v", ok, err)
	}
	if vs := localVersions(t, home, "heat"); len(vs) != 5 {
		t.Fatalf("versions after the relaunch: %v, want a 5th", vs)
	}
}
