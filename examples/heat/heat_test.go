package main_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ckptio/ckptio/mpiio/mpi/mpitest"
	"github.com/ckptio/ckptio/storage/cluster/clustertest"
)

var (
	finalRE = regexp.MustCompile(`final checksum: ([0-9a-f]{64})`)
	ckptRE  = regexp.MustCompile(`checkpoint step (\d+) version (\d+) sha256 ([0-9a-f]{64})`)
)

func final(t *testing.T, out string) string {
	t.Helper()
	m := finalRE.FindAllStringSubmatch(out, -1)
	if len(m) == 0 {
		t.Fatalf("no final checksum in:\n%s", out)
	}
	return m[len(m)-1][1]
}

// TestHeatRestartsToTheSameResult is the MPI path end to end on real
// daemons: heat through ckptrun on 4 ranks leaves 4 versions; a run with a
// rank killed at step 130 restarts by itself from the step-100 version and
// ends with the same checksum; ckpt restore of that version writes
// per-rank files that hash to what heat printed for step 100.
func TestHeatRestartsToTheSameResult(t *testing.T) {
	mpitest.Require(t)
	args := []string{"-np", "4", filepath.Join("BIN", "heat"), "--n", "192", "--steps", "200", "--checkpoint-every", "50"}
	run := func(c *clustertest.Cluster, job string, extra ...string) string {
		a := append([]string{"--job", job}, args...)
		a[len([]string{"--job", job})+2] = filepath.Join(c.Bin, "heat")
		a = append(a, extra...)
		out, errOut, code := c.Run(t, t.TempDir(), mpitest.Env(), "ckptrun", a...)
		if code != 0 {
			t.Fatalf("ckptrun %v: exit %d\n%s\n%s", a, code, out, errOut)
		}
		return out + errOut
	}

	clean := clustertest.NewCluster(t, clustertest.Options{Stores: 3, Extra: []string{"examples/heat"}})
	out := run(clean, "heat")
	want := final(t, out)
	if vs, _ := clean.Client().Versions(t.Context(), "heat"); len(vs) != 4 {
		t.Fatalf("%d versions after 200 steps every 50, want 4", len(vs))
	}

	// The static conductivity field is stored once: later versions
	// reference the first version's blocks and send none of them.
	first, err := clean.Client().Manifest(t.Context(), "heat", 1)
	if err != nil {
		t.Fatal(err)
	}
	static := map[string]bool{}
	var staticBytes int64
	for _, b := range first.Blocks {
		if b.Object == "conductivity" {
			static[b.Key.String()] = true
			staticBytes += b.Length
		}
	}
	vs, _ := clean.Client().Versions(t.Context(), "heat")
	for _, v := range vs[1:] {
		m, err := clean.Client().Manifest(t.Context(), "heat", v.Version)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range m.Blocks {
			if b.Object == "conductivity" && !static[b.Key.String()] {
				t.Fatalf("version %d stores conductivity block %s anew", v.Version, b.Key.Short())
			}
		}
		if max := (v.LogicalBytes - staticBytes) * int64(max(1, v.Replicas)); v.SentBytes > max {
			t.Fatalf("version %d sent %d bytes, more than its non-static data (%d)", v.Version, v.SentBytes, max)
		}
	}

	failing := clustertest.NewCluster(t, clustertest.Options{Stores: 3})
	out = run(failing, "heat", "--fail-at-step", "130", "--fail-rank", "2")
	if got := final(t, out); got != want {
		t.Fatalf("checksum after a restart %s, without failure %s\n%s", got, want, out)
	}
	if !strings.Contains(out, "attempt 2/") || strings.Contains(out, "attempt 3/") {
		t.Fatalf("want exactly one restart:\n%s", out)
	}
	if !strings.Contains(out, "restored heat version 2 (step 100)") {
		t.Fatalf("the relaunch did not restore the step-100 version:\n%s", out)
	}

	// ckpt restore of the step-100 version, checked against heat's hash.
	var v, sum string
	for _, m := range ckptRE.FindAllStringSubmatch(out, -1) {
		if m[1] == "100" {
			v, sum = m[2], m[3]
		}
	}
	to := t.TempDir()
	if _, errOut, code := failing.Run(t, to, nil, "ckpt", "restore", "heat", "--version", v, "--to", to); code != 0 {
		t.Fatal(errOut)
	}
	h := sha256.New()
	for r := 0; r < 4; r++ {
		b, err := os.ReadFile(filepath.Join(to, "rank-0000"+string(rune('0'+r)), "temperature"))
		if err != nil {
			t.Fatal(err)
		}
		h.Write(b)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sum {
		t.Fatalf("restored step-100 files hash to %s, heat printed %s", got, sum)
	}
	if _, errOut, code := failing.Run(t, to, nil, "ckpt", "verify", "heat"); code != 0 {
		t.Fatalf("verify: %s", errOut)
	}

	// The same grid on 3 ranks gives the same result (no checkpoints), and
	// restoring the 4-rank job on 2 ranks is refused with a clear error.
	a := []string{"--job", "heat3", "-np", "3", filepath.Join(clean.Bin, "heat"), "--n", "192", "--steps", "200", "--checkpoint-every", "0"}
	o, e, code := clean.Run(t, t.TempDir(), mpitest.Env(), "ckptrun", a...)
	if code != 0 || final(t, o+e) != want {
		t.Fatalf("3 ranks: exit %d, want checksum %s\n%s%s", code, want, o, e)
	}
	a = []string{"--job", "heat", "--max-restarts", "0", "-np", "2", filepath.Join(clean.Bin, "heat"), "--n", "192", "--steps", "250"}
	o, e, code = clean.Run(t, t.TempDir(), mpitest.Env(), "ckptrun", a...)
	if code == 0 || !strings.Contains(o+e, "written by 4 ranks, this job has 2") {
		t.Fatalf("restore on 2 ranks: exit %d\n%s%s", code, o, e)
	}
}

// TestHeatOutputSurvivesARestart: heat --out on 3 ranks under ckptrun, with
// rank 1 killed at step 70 after the step-40 version, ends with the
// failure-free run's checksum and per-rank logs byte-identical to it:
// the restart rolled every log back to step 40 (Resume), so each step is
// in each log exactly once.
func TestHeatOutputSurvivesARestart(t *testing.T) {
	mpitest.Require(t)
	c := clustertest.NewCluster(t, clustertest.Options{Stores: 3, Extra: []string{"examples/heat"}})
	heat := func(job, out string, extra ...string) string {
		a := append([]string{"--job", job, "-np", "3", filepath.Join(c.Bin, "heat"),
			"--n", "96", "--steps", "120", "--checkpoint-every", "40", "--out", out}, extra...)
		o, e, code := c.Run(t, t.TempDir(), mpitest.Env(), "ckptrun", a...)
		if code != 0 {
			t.Fatalf("ckptrun %v: exit %d\n%s\n%s", a, code, o, e)
		}
		return o + e
	}
	clean, failing := t.TempDir(), t.TempDir()
	want := final(t, heat("heatlog", clean))
	out := heat("heatlog-fail", failing, "--fail-at-step", "70", "--fail-rank", "1")
	if got := final(t, out); got != want {
		t.Fatalf("checksum after a restart %s, without failure %s\n%s", got, want, out)
	}
	if !strings.Contains(out, "attempt 2/") || strings.Contains(out, "attempt 3/") ||
		!strings.Contains(out, "restored heatlog-fail version 1 (step 40)") {
		t.Fatalf("want exactly one restart, from the step-40 version:\n%s", out)
	}
	for r := 0; r < 3; r++ {
		name := fmt.Sprintf("heat-rank-%d.log", r)
		a, err := os.ReadFile(filepath.Join(clean, name))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(failing, name))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(string(a), "\n"), "\n")
		if len(lines) != 120 {
			t.Fatalf("%s of the failure-free run has %d lines, want 120", name, len(lines))
		}
		for i, l := range lines {
			if !strings.HasPrefix(l, fmt.Sprintf("step %d sum ", i+1)) {
				t.Fatalf("%s line %d is %q", name, i+1, l)
			}
		}
		if string(a) != string(b) {
			t.Fatalf("%s after the restart differs from the failure-free run's:\n%s\nwant\n%s", name, b, a)
		}
	}
	// The logs are in the versions: ckpt ls lists them and ckpt restore
	// writes them under rank-NNNNN/files/ by their absolute paths; the
	// last version (step 120) holds the whole log.
	real, err := filepath.EvalSymlinks(clean)
	if err != nil {
		t.Fatal(err)
	}
	log1 := filepath.Join("rank-00001", "files", real, "heat-rank-1.log")
	if o, e, code := c.Run(t, t.TempDir(), nil, "ckpt", "ls", "heatlog"); code != 0 || !strings.Contains(o, filepath.ToSlash(log1)) {
		t.Fatalf("ckpt ls heatlog: exit %d, want %s listed\n%s%s", code, log1, o, e)
	}
	to := t.TempDir()
	if o, e, code := c.Run(t, t.TempDir(), nil, "ckpt", "restore", "heatlog", "--to", to); code != 0 {
		t.Fatalf("ckpt restore heatlog: exit %d\n%s%s", code, o, e)
	}
	got, err := os.ReadFile(filepath.Join(to, log1))
	want1, _ := os.ReadFile(filepath.Join(clean, "heat-rank-1.log"))
	if err != nil || string(got) != string(want1) {
		t.Fatalf("restored %s: %v\n%s\nwant\n%s", log1, err, got, want1)
	}
}
