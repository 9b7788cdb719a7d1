package mpiio_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ckptio/ckptio/mpiio/mpi/mpitest"
	"github.com/ckptio/ckptio/storage/cluster/clustertest"
)

func TestRoundTripUnderMpirun(t *testing.T) {
	mpitest.Require(t)
	c := clustertest.NewCluster(t, clustertest.Options{Stores: 3, Extra: []string{"mpiio/internal/mpiprog"}})
	for _, tc := range []struct{ perLeader, async string }{{"", "1"}, {"2", "0"}} {
		res, err := mpitest.Run(context.Background(), filepath.Join(c.Bin, "mpiprog"), mpitest.Options{
			Np: 4, Args: []string{"--mode", "roundtrip"},
			Env: append(c.Env(), "CKPT_JOB=rt"+tc.perLeader, "CKPT_RANKS_PER_LEADER="+tc.perLeader,
				"CKPT_BLOCK_SIZE=256KiB", "CKPT_ASYNC="+tc.async),
		})
		if err != nil {
			t.Fatal(err)
		}
		if !res.OK() || strings.Count(string(res.Output), ": ok") != 4 {
			t.Fatalf("ranks per leader %q, async %s: %s", tc.perLeader, tc.async, res)
		}
	}
}

// TestDeadRankCommitsNothing: a rank that dies while the others are inside
// a checkpoint leaves the previous version the latest.
func TestDeadRankCommitsNothing(t *testing.T) {
	mpitest.Require(t)
	c := clustertest.NewCluster(t, clustertest.Options{Stores: 2, Extra: []string{"mpiio/internal/mpiprog"}})
	res, err := mpitest.Run(context.Background(), filepath.Join(c.Bin, "mpiprog"), mpitest.Options{
		Np: 4, Args: []string{"--mode", "die"}, Timeout: time.Minute,
		Env: append(c.Env(), "CKPT_JOB=die"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK() || res.TimedOut || !strings.Contains(string(res.Output), "dying during the second checkpoint") {
		t.Fatalf("want the job to fail after the rank died: %s", res)
	}
	vs, err := c.Client().Versions(context.Background(), "die")
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 1 || vs[0].Meta["step"] != "1" {
		t.Fatalf("versions after the dead rank: %+v; want only the step-1 version", vs)
	}
	jobs, err := c.Client().Jobs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range jobs {
		if j.Name == "die" && j.InFlight != 1 {
			t.Fatalf("in-flight transactions = %d; want the dead checkpoint's one, left for expiry", j.InFlight)
		}
	}
}
