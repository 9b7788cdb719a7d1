package clustertest_test

import (
	"bytes"
	"context"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ckptio/ckptio/storage/cluster/clustertest"
)

// TestTLSCluster runs the real daemons with TLS and the ckpt command
// against them: put and get through --tls-ca or CKPT_TLS_CA, a clear error
// without it, garbage collection reaching the stores over TLS, and a
// store that heartbeats to the manager without TLS saying why it fails.
func TestTLSCluster(t *testing.T) {
	c := clustertest.NewCluster(t, clustertest.Options{Stores: 3, TLS: true})
	work := t.TempDir()
	data := make([]byte, 3<<20)
	rand.New(rand.NewSource(1)).Read(data)
	if err := os.WriteFile(filepath.Join(work, "data.bin"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	noEnv := []string{"CKPT_TLS_CA="}

	out, errOut, code := c.Run(t, work, noEnv, "ckpt", "--tls-ca", c.TLS.CAFile, "put", "job1", "data.bin")
	if code != 0 || strings.TrimSpace(out) != "1" {
		t.Fatalf("put --tls-ca: code %d, stdout %q, stderr %s", code, out, errOut)
	}
	to := filepath.Join(t.TempDir(), "restored")
	if _, errOut, code := c.Run(t, work, noEnv, "ckpt", "--tls-ca", c.TLS.CAFile, "get", "job1", "--to", to); code != 0 {
		t.Fatalf("get --tls-ca: %s", errOut)
	}
	if got, err := os.ReadFile(filepath.Join(to, "data.bin")); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("data.bin differs after get (err %v)", err)
	}

	// CKPT_TLS_CA, which Env sets, does as well.
	to2 := filepath.Join(t.TempDir(), "restored")
	if _, errOut, code := c.Run(t, work, nil, "ckpt", "get", "job1", "--to", to2); code != 0 {
		t.Fatalf("get with CKPT_TLS_CA: %s", errOut)
	}

	// Without the CA the command says the manager expects TLS, on one line.
	_, errOut, code = c.Run(t, work, noEnv, "ckpt", "versions", "job1")
	if code == 0 || !strings.Contains(errOut, "expects TLS") || !strings.Contains(errOut, "--tls-ca") {
		t.Fatalf("without --tls-ca: code %d, stderr %q", code, errOut)
	}
	if n := strings.Count(strings.TrimSpace(errOut), "\n"); n != 0 {
		t.Fatalf("error is not one line: %q", errOut)
	}

	// The manager reaches the stores over TLS for garbage collection.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := c.Client().GC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Stores) != 3 || len(rep.Failed()) != 0 {
		t.Fatalf("GC over TLS: %+v", rep)
	}

	// A store without --tls-ca cannot heartbeat to the TLS manager, and
	// says why.
	p := clustertest.Start(t, filepath.Join(c.Bin, "ckpt-store"), "--listen", "127.0.0.1:0",
		"--manager", c.Manager.Addr, "--dir", filepath.Join(c.Dir, "plain"), "--quota", "1GiB",
		"--token-file", c.TokenFile, "--heartbeat", "200ms", "--tls-ca", "")
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.Output(), "expects TLS") {
		if time.Now().After(deadline) {
			t.Fatalf("store without --tls-ca did not say the manager expects TLS:\n%s", p.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
