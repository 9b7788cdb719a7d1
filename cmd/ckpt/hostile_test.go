package main_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckptio/ckptio/storage/cluster/clustertest"
)

// A version whose file names and symlink targets hold terminal escapes
// (anyone with the token can commit one): ls and diff print them quoted,
// never the raw escapes that would drive the operator's terminal.
func TestHostileNamesDoNotReachTheTerminal(t *testing.T) {
	c := clustertest.NewCluster(t, clustertest.Options{Stores: 1})
	work := t.TempDir()
	const evil = "evil\x1b]0;owned\x07\x1b[2J"
	writeRandom(t, filepath.Join(work, "top", evil), 100, 1)
	if err := os.Symlink("x\x1b[31m", filepath.Join(work, "top", "link")); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := c.Run(t, work, nil, "ckpt", "put", "hostile", "top"); code != 0 {
		t.Fatalf("put: %s", errOut)
	}
	writeRandom(t, filepath.Join(work, "top", evil), 200, 2)
	if _, errOut, code := c.Run(t, work, nil, "ckpt", "put", "hostile", "top"); code != 0 {
		t.Fatalf("second put: %s", errOut)
	}
	for _, args := range [][]string{{"ls", "hostile", "--version", "1"}, {"diff", "hostile", "1", "2"}} {
		out, errOut, code := c.Run(t, work, nil, "ckpt", args...)
		if code != 0 {
			t.Fatalf("%v: code %d, %s", args, code, errOut)
		}
		if strings.ContainsRune(out, '\x1b') || strings.ContainsRune(out, '\a') {
			t.Fatalf("%v printed raw escapes: %q", args, out)
		}
		if !strings.Contains(out, `"top/evil\x1b]0;owned\a\x1b[2J"`) {
			t.Fatalf("%v does not show the name quoted: %q", args, out)
		}
	}
}
