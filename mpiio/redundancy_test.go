package mpiio_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckptio/ckptio/mpiio/mpi/mpitest"
	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/cluster/clustertest"
)

// TestErasureCodedRoundTripUnderMpirun: with CKPT_REDUNDANCY=rs:2+1 the
// leaders store every block as 3 shards on 3 distinct stores, every
// version says so, and the program's restores read them back.
func TestErasureCodedRoundTripUnderMpirun(t *testing.T) {
	mpitest.Require(t)
	c := clustertest.NewCluster(t, clustertest.Options{Stores: 4, Extra: []string{"mpiio/internal/mpiprog"}})
	res, err := mpitest.Run(context.Background(), filepath.Join(c.Bin, "mpiprog"), mpitest.Options{
		Np: 4, Args: []string{"--mode", "roundtrip"},
		Env: append(c.Env(), "CKPT_JOB=rs", "CKPT_RANKS_PER_LEADER=2", "CKPT_BLOCK_SIZE=256KiB", "CKPT_REDUNDANCY=rs:2+1"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() || strings.Count(string(res.Output), ": ok") != 4 {
		t.Fatalf("erasure-coded round trip: %s", res)
	}
	vs, err := c.Client().Versions(context.Background(), "rs")
	if err != nil || len(vs) == 0 {
		t.Fatalf("versions: %v %v", vs, err)
	}
	for _, vi := range vs {
		m, err := c.Client().Manifest(context.Background(), "rs", vi.Version)
		if err != nil {
			t.Fatal(err)
		}
		if m.Meta[catalog.MetaRedundancy] != "rs:2+1" {
			t.Fatalf("version %d meta %v, want redundancy rs:2+1", vi.Version, m.Meta)
		}
		for _, b := range m.Blocks {
			if b.Length > 0 && (b.DataShards != 2 || len(b.Shards) != 3) {
				t.Fatalf("version %d rank %d region %q offset %d: %d data shards of %d, want 2 of 3", vi.Version, b.Rank, b.Object, b.Offset, b.DataShards, len(b.Shards))
			}
		}
	}
	// A configuration that cannot hold is refused before anything runs.
	res, err = mpitest.Run(context.Background(), filepath.Join(c.Bin, "mpiprog"), mpitest.Options{
		Np: 2, Args: []string{"--mode", "roundtrip"},
		Env: append(c.Env(), "CKPT_JOB=rs-bad", "CKPT_REDUNDANCY=rs:2+1", "CKPT_REPLICAS=2"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK() || !strings.Contains(string(res.Output), "erasure-coded") {
		t.Fatalf("rs:2+1 with 2 replicas: %s", res)
	}
}
