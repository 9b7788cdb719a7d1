//go:build unix

package mpitest_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ckptio/ckptio/mpiio/mpi/mpitest"
)

const hello = "github.com/ckptio/ckptio/mpiio/mpi/internal/mpihello"

func TestRunMain(t *testing.T) {
	res := mpitest.RunMain(t, hello, mpitest.Options{Np: 3, Env: []string{"MPIHELLO_GREETING=hi"}})
	if !res.OK() {
		t.Fatalf("%v", res)
	}
	for r := range 3 {
		if want := fmt.Sprintf("hello from rank %d of 3, greeting \"hi\"", r); !strings.Contains(string(res.Output), want) {
			t.Errorf("missing %q in:\n%s", want, res.Output)
		}
	}
}

func TestExitStatus(t *testing.T) {
	res := mpitest.RunMain(t, hello, mpitest.Options{Np: 2, Args: []string{"abort", "3"}})
	if res.OK() || res.TimedOut || res.ExitCode != 3 {
		t.Fatalf("want exit status 3: %v", res)
	}
}

// TestTimeoutKillsGroup: a hung job is killed as a whole at its timeout.
func TestTimeoutKillsGroup(t *testing.T) {
	mpitest.Require(t)
	bin := mpitest.Build(t, hello)
	start := time.Now()
	res, err := mpitest.Run(context.Background(), bin, mpitest.Options{Np: 2, Args: []string{"hang"}, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if !res.TimedOut || res.ExitCode != -1 {
		t.Fatalf("want a timeout: %v", res)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Fatalf("Run took %v after a 5s timeout", d)
	}
	// No rank of the job may survive.
	deadline := time.Now().Add(5 * time.Second)
	for {
		left := running(bin)
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d processes of %s still running", left, bin)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// running counts processes executing bin.
func running(bin string) int {
	n := 0
	procs, _ := filepath.Glob("/proc/[0-9]*/exe")
	for _, p := range procs {
		if exe, err := os.Readlink(p); err == nil && exe == bin {
			n++
		}
	}
	return n
}

func TestEnvAndArgs(t *testing.T) {
	env := strings.Join(mpitest.Env(), " ")
	for _, want := range []string{"OMPI_MCA_rmaps_base_oversubscribe=1", "OMPI_MCA_btl_vader_single_copy_mechanism=none"} {
		if !strings.Contains(env, want) {
			t.Errorf("Env() lacks %s", want)
		}
	}
	args := mpitest.Args("/bin/prog", mpitest.Options{Np: 4, Args: []string{"-x"}})
	if got := strings.Join(args, " "); !strings.HasPrefix(got, "-np 4") || !strings.HasSuffix(got, "/bin/prog -x") {
		t.Errorf("Args: %q", got)
	}
}
