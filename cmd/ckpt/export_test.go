package main_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ckptio/ckptio/storage/cluster/clustertest"
)

// manifestColumns are the columns storage/manifest/doc.go specifies.
var manifestColumns = []string{"object", "rank", "offset", "length", "hash", "key", "stored_length", "codec", "stores",
	"type", "mode", "mtime_ns", "ctime_ns", "inode", "target"}

// TestExportReadByJavaScriptArrow exports a manifest from real daemons with
// the real ckpt and reads the file with an independent Arrow
// implementation (the apache-arrow npm package under node): its rows,
// columns and hash column must be what the Go manifest reader says.
func TestExportReadByJavaScriptArrow(t *testing.T) {
	reader, err := filepath.Abs(filepath.Join("..", "..", "scripts", "arrow-read"))
	if err != nil {
		t.Fatal(err)
	}
	node, nerr := exec.LookPath("node")
	_, merr := os.Stat(filepath.Join(reader, "node_modules", "apache-arrow"))
	if nerr != nil || merr != nil {
		if os.Getenv("CKPT_REQUIRE_NODE") == "1" {
			t.Fatalf("CKPT_REQUIRE_NODE=1 but node (%v) or the apache-arrow package (%v) is missing: apt-get install nodejs npm && npm ci --prefix scripts/arrow-read", nerr, merr)
		}
		t.Skip("node or scripts/arrow-read/node_modules is missing (npm ci --prefix scripts/arrow-read)")
	}

	c := clustertest.NewCluster(t, clustertest.Options{Stores: 2})
	work := t.TempDir()
	writeRandom(t, filepath.Join(work, "tree", "state.bin"), 1<<20+123, 1)
	writeRandom(t, filepath.Join(work, "tree", "sub", "log.txt"), 5000, 2)
	os.MkdirAll(filepath.Join(work, "tree", "empty"), 0o755)
	os.Symlink("state.bin", filepath.Join(work, "tree", "latest"))
	for i := range 2 {
		if _, errOut, code := c.Run(t, work, nil, "ckpt", "put", "exp", "tree", "--block-size", "64KiB"); code != 0 {
			t.Fatalf("put %d: %s", i, errOut)
		}
		writeRandom(t, filepath.Join(work, "tree", "sub", "log.txt"), 9000, 3)
	}

	file := filepath.Join(t.TempDir(), "v1.arrow")
	_, errOut, code := c.Run(t, work, nil, "ckpt", "export", "exp", "--manifest", filepath.Join(work, "nodir", "x.arrow"))
	if code == 0 || !strings.Contains(errOut, "does not exist") {
		t.Fatalf("export into a missing directory: code %d: %s", code, errOut)
	}
	_, errOut, code = c.Run(t, work, nil, "ckpt", "export", "exp", "--version", "1", "--manifest", file)
	if code != 0 || !strings.Contains(errOut, "exp version 1: manifest of") {
		t.Fatalf("export: code %d: %s", code, errOut)
	}
	before, _ := os.ReadFile(file)
	_, errOut, code = c.Run(t, work, nil, "ckpt", "export", "exp", "--manifest", file)
	if after, _ := os.ReadFile(file); code == 0 || !strings.Contains(errOut, "--overwrite") || string(after) != string(before) {
		t.Fatalf("export over an existing file: code %d, stderr %q, file changed: %v", code, errOut, string(after) != string(before))
	}
	_, errOut, code = c.Run(t, work, nil, "ckpt", "export", "exp", "--manifest", file, "--overwrite")
	if code != 0 {
		t.Fatalf("export --overwrite: %s", errOut)
	}
	if tmps, _ := filepath.Glob(filepath.Join(filepath.Dir(file), ".*tmp*")); len(tmps) > 0 {
		t.Errorf("temporary files left: %v", tmps)
	}

	m, err := c.Client().Manifest(context.Background(), "exp", 0)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.New()
	for _, b := range m.Blocks {
		digest.Write(b.Hash[:])
	}
	cmd := exec.Command(node, filepath.Join(reader, "read.mjs"), file)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node read.mjs: %v\n%s", err, out)
	}
	var got struct {
		Rows       int      `json:"rows"`
		Columns    []string `json:"columns"`
		Job        string   `json:"job"`
		Version    string   `json:"version"`
		HashSHA256 string   `json:"hash_sha256"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("node printed %q: %v", out, err)
	}
	if got.Rows != len(m.Blocks) || got.Rows < 20 {
		t.Errorf("rows: JavaScript Arrow read %d, the Go reader %d", got.Rows, len(m.Blocks))
	}
	if !slices.Equal(got.Columns, manifestColumns) {
		t.Errorf("columns: %v, want %v", got.Columns, manifestColumns)
	}
	if got.Job != "exp" || got.Version != strconv.FormatInt(m.Version, 10) || m.Version != 2 {
		t.Errorf("metadata: job %q version %q, want exp %d", got.Job, got.Version, m.Version)
	}
	if want := hex.EncodeToString(digest.Sum(nil)); got.HashSHA256 != want {
		t.Errorf("hash column digest %s, the Go reader's %s", got.HashSHA256, want)
	}
}
