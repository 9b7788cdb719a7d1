package mpiio_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckptio/ckptio/mpiio/mpi/mpitest"
	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/cluster/clustertest"
	"github.com/ckptio/ckptio/storage/crypt"
	"github.com/ckptio/ckptio/storage/manifest"
)

// TestEncryptedRoundTripUnderMpirun: with CKPT_ENCRYPT_KEY_FILE every
// block the leaders store is sealed, the versions say with which key, and
// the program's restores (collective and per-rank streams) read them back.
func TestEncryptedRoundTripUnderMpirun(t *testing.T) {
	mpitest.Require(t)
	c := clustertest.NewCluster(t, clustertest.Options{Stores: 2, Extra: []string{"mpiio/internal/mpiprog"}})
	keyFile := filepath.Join(t.TempDir(), "job.key")
	key, err := crypt.NewKeyFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	res, err := mpitest.Run(context.Background(), filepath.Join(c.Bin, "mpiprog"), mpitest.Options{
		Np: 4, Args: []string{"--mode", "roundtrip"},
		Env: append(c.Env(), "CKPT_JOB=enc", "CKPT_RANKS_PER_LEADER=2", "CKPT_BLOCK_SIZE=256KiB",
			"CKPT_ENCRYPT_KEY_FILE="+keyFile),
	})
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() || strings.Count(string(res.Output), ": ok") != 4 {
		t.Fatalf("encrypted round trip: %s", res)
	}
	m, err := c.Client().Manifest(context.Background(), "enc", 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := crypt.Check(m, key); err != nil || m.Meta[catalog.MetaEncrypted] == "" {
		t.Fatalf("version meta %v: %v", m.Meta, err)
	}
	for _, b := range m.Blocks {
		if b.Length > 0 && b.Codec != manifest.CodecAESGCM && b.Codec != manifest.CodecLZ4AESGCM {
			t.Fatalf("rank %d region %q offset %d stored %q", b.Rank, b.Object, b.Offset, b.Codec)
		}
	}
}
