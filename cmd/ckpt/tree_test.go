package main_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ckptio/ckptio/storage/cluster/clustertest"
)

// findListing is find's view of every entry under dir/top: path, type,
// mode, mtime to the nanosecond, size, symlink target.
func findListing(t *testing.T, dir string) string {
	t.Helper()
	cmd := exec.Command("find", "top", "-not", "-type", "p", "-printf", "%p %y %m %T@ %s %l\n")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("find: %v: %s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// TestPutGetTree is a tree's round trip through real daemons: nested
// directories, an empty one, a symlink, modes 0755 and 0600, set mtimes;
// find sees the same tree after get. A second put of the unchanged tree
// reads nothing, a get over existing files is refused without
// --overwrite, and ls and diff describe the versions.
func TestPutGetTree(t *testing.T) {
	c := clustertest.NewCluster(t, clustertest.Options{Stores: 2})
	work := t.TempDir()
	top := filepath.Join(work, "top")
	writeRandom(t, filepath.Join(top, "bin", "run.sh"), 3000, 1)
	writeRandom(t, filepath.Join(top, "data", "deep", "state.bin"), 3<<20, 2)
	writeRandom(t, filepath.Join(top, "data", "secret"), 100, 3)
	os.MkdirAll(filepath.Join(top, "empty"), 0o755)
	os.Chmod(filepath.Join(top, "bin", "run.sh"), 0o755)
	os.Chmod(filepath.Join(top, "data", "secret"), 0o600)
	os.Chmod(filepath.Join(top, "empty"), 0o700)
	os.Symlink("data/deep/state.bin", filepath.Join(top, "latest"))
	if err := exec.Command("mkfifo", filepath.Join(top, "pipe")).Run(); err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2023, 7, 8, 9, 10, 11, 987654321, time.UTC)
	for _, p := range []string{"bin/run.sh", "data/deep/state.bin", "data/secret", "data/deep", "data", "bin", "empty", "."} {
		ts = ts.Add(time.Minute + 3*time.Nanosecond)
		os.Chtimes(filepath.Join(top, p), ts, ts)
	}
	want := findListing(t, work)

	out, errOut, code := c.Run(t, work, nil, "ckpt", "put", "tree", "top")
	if code != 0 || strings.TrimSpace(out) != "1" {
		t.Fatalf("put: code %d, %s", code, errOut)
	}
	if !strings.Contains(errOut, "pipe is a FIFO") || !strings.Contains(errOut, "3 files (3 new, 0 changed, 0 unchanged), 5 directories, 1 symlink") {
		t.Fatalf("put said %q", errOut)
	}
	to := t.TempDir()
	if _, errOut, code := c.Run(t, work, nil, "ckpt", "get", "tree", "--to", to); code != 0 {
		t.Fatalf("get: %s", errOut)
	}
	if got := findListing(t, to); got != want {
		t.Fatalf("tree after get:\n%s\nwant\n%s", got, want)
	}
	for _, f := range []string{"bin/run.sh", "data/deep/state.bin", "data/secret"} {
		a, _ := os.ReadFile(filepath.Join(top, f))
		b, _ := os.ReadFile(filepath.Join(to, "top", f))
		if string(a) != string(b) {
			t.Fatalf("%s differs after get", f)
		}
	}

	// Unchanged: nothing read, nothing sent.
	_, errOut, code = c.Run(t, work, nil, "ckpt", "put", "tree", "top")
	if code != 0 || !strings.Contains(errOut, "(0 new, 0 changed, 3 unchanged)") || !strings.Contains(errOut, "0 B read, 0 B sent") {
		t.Fatalf("second put: %s", errOut)
	}
	// Appended: changed, and only the new bytes go out.
	f, _ := os.OpenFile(filepath.Join(top, "data", "deep", "state.bin"), os.O_APPEND|os.O_WRONLY, 0)
	f.Write(make([]byte, 100))
	f.Close()
	os.Remove(filepath.Join(top, "data", "secret"))
	_, errOut, code = c.Run(t, work, nil, "ckpt", "put", "tree", "top")
	if code != 0 || !strings.Contains(errOut, "(0 new, 1 changed, 1 unchanged)") {
		t.Fatalf("third put: %s", errOut)
	}

	_, errOut, code = c.Run(t, work, nil, "ckpt", "get", "tree", "--version", "1", "--to", to)
	if code == 0 || !strings.Contains(errOut, "exist already") || !strings.Contains(errOut, "--overwrite") {
		t.Fatalf("get over existing files: code %d, %s", code, errOut)
	}
	if _, errOut, code := c.Run(t, work, nil, "ckpt", "get", "tree", "--version", "1", "--to", to, "--overwrite"); code != 0 {
		t.Fatalf("get --overwrite: %s", errOut)
	}

	out, errOut, code = c.Run(t, work, nil, "ckpt", "ls", "tree", "--version", "1", "top/data", "--json")
	if code != 0 {
		t.Fatalf("ls: %s", errOut)
	}
	var doc struct {
		Entries []struct {
			Path, Type, Mode string
			Size             int64
			MTime            time.Time
		}
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("ls --json: %v\n%s", err, out)
	}
	listed := doc.Entries
	if len(listed) != 4 || listed[3].Path != "top/data/secret" || listed[3].Mode != "0600" || listed[2].Size != 3<<20 {
		t.Fatalf("ls --json: %+v", listed)
	}
	out, _, code = c.Run(t, work, nil, "ckpt", "ls", "tree")
	if code != 0 || !strings.Contains(out, "lrwxrwxrwx") || !strings.Contains(out, "top/latest -> data/deep/state.bin") || !strings.Contains(out, "-rwxr-xr-x") {
		t.Fatalf("ls:\n%s", out)
	}
	// "." puts what the current directory holds.
	out, errOut, code = c.Run(t, top, nil, "ckpt", "put", "dot", ".")
	if code != 0 || strings.TrimSpace(out) != "1" {
		t.Fatalf("put .: code %d, %s", code, errOut)
	}
	out, _, code = c.Run(t, work, nil, "ckpt", "ls", "dot")
	if code != 0 || !strings.Contains(out, " bin/run.sh") || !strings.Contains(out, " data/deep/state.bin") || strings.Contains(out, " .") {
		t.Fatalf("ls of a put of .:\n%s", out)
	}
	out, errOut, code = c.Run(t, work, nil, "ckpt", "diff", "tree", "1", "3")
	if code != 0 || !strings.Contains(out, "- top/data/secret") || !strings.Contains(out, "M top/data/deep/state.bin") ||
		!strings.Contains(out, "0 added, 1 removed") {
		t.Fatalf("diff: %s %s", out, errOut)
	}
}
