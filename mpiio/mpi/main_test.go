//go:build cgo

package mpi

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ckptio/ckptio/mpiio/mpi/mpitest"
)

// The test binary doubles as the MPI program of the mpirun tests: with
// workerEnv set, TestMain runs the checks of worker_test.go as one rank.
const (
	workerEnv = "CKPTIO_MPI_TEST_WORKER" // set: run as an mpirun rank
	chunkEnv  = "CKPTIO_MPI_TEST_CHUNK"  // maxChunk for the worker; empty = default
	npEnv     = "CKPTIO_MPI_TEST_NP"     // expected world size
)

func TestMain(m *testing.M) {
	if os.Getenv(workerEnv) != "" {
		os.Exit(worker())
	}
	code := m.Run()
	if Initialized() && !Finalized() {
		if err := Finalize(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

var singleton struct {
	once sync.Once
	err  error
}

// initSingleton initializes MPI once for the tests that run in the test
// process itself, which is a singleton job of size 1.
func initSingleton(t *testing.T) *Comm {
	t.Helper()
	singleton.once.Do(func() { singleton.err = Init() })
	if singleton.err != nil {
		t.Fatalf("Init: %v", singleton.err)
	}
	return World()
}

// TestMPIRun runs the worker checks under mpirun with several rank counts
// and chunk sizes; the small chunk sizes take every chunked path.
func TestMPIRun(t *testing.T) {
	mpitest.Require(t)
	for _, tc := range []struct {
		np    int
		chunk int // 0: default
	}{
		{np: 4},
		{np: 4, chunk: 1000},
		{np: 3, chunk: 7},
	} {
		t.Run(fmt.Sprintf("np%d-chunk%d", tc.np, tc.chunk), func(t *testing.T) {
			env := []string{workerEnv + "=1", npEnv + "=" + strconv.Itoa(tc.np)}
			if tc.chunk > 0 {
				env = append(env, chunkEnv+"="+strconv.Itoa(tc.chunk))
			}
			res, err := mpitest.Run(context.Background(), os.Args[0], mpitest.Options{
				Np: tc.np, Env: env, Timeout: 3 * time.Minute,
			})
			if err != nil {
				t.Fatal(err)
			}
			if !res.OK() {
				t.Fatalf("%v", res)
			}
			for r := range tc.np {
				if want := fmt.Sprintf("mpi worker: rank %d: all checks passed", r); !strings.Contains(string(res.Output), want) {
					t.Errorf("missing %q in output:\n%s", want, res.Output)
				}
			}
		})
	}
}
