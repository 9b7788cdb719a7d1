package main_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ckptio/ckptio/cmd/internal/cli"
	"github.com/ckptio/ckptio/storage/cluster/clustertest"
)

// TestExitCodes runs the real ckpt against real daemons (two stores of
// 4 MiB each) and checks the documented exit status of each failure.
func TestExitCodes(t *testing.T) {
	c := clustertest.NewCluster(t, clustertest.Options{Stores: 2, Quota: "4MiB"})
	work := t.TempDir()
	writeRandom(t, filepath.Join(work, "a"), 1000, 1)
	writeRandom(t, filepath.Join(work, "big"), 24<<20, 2)
	if _, errOut, code := c.Run(t, work, nil, "ckpt", "put", "j", "a"); code != 0 {
		t.Fatalf("put: %s", errOut)
	}
	badTok := filepath.Join(t.TempDir(), "bad-token")
	if err := os.WriteFile(badTok, []byte("this-is-not-the-cluster-token-at-all"), 0o600); err != nil {
		t.Fatal(err)
	}
	down := []string{"CKPT_MANAGER=127.0.0.1:1"}
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want int
	}{
		{"ok", nil, []string{"versions", "j"}, cli.ExitOK},
		{"version", nil, []string{"--version"}, cli.ExitOK},
		{"unknown command", nil, []string{"bogus"}, cli.ExitUsage},
		{"unknown subcommand", nil, []string{"cluster", "bogus"}, cli.ExitUsage},
		{"unknown flag", nil, []string{"versions", "j", "--nope"}, cli.ExitUsage},
		{"missing argument", nil, []string{"put", "j"}, cli.ExitUsage},
		{"bad flag value", nil, []string{"put", "j", "a", "--block-size", "lots"}, cli.ExitUsage},
		{"zero block size", nil, []string{"put", "j", "a", "--block-size", "0"}, cli.ExitUsage},
		{"block size above a block", nil, []string{"put", "j", "a", "--block-size", "17MiB"}, cli.ExitUsage},
		{"zero replicas", nil, []string{"put", "j", "a", "--replicas", "0"}, cli.ExitUsage},
		{"negative replicas", nil, []string{"put", "j", "a", "--replicas", "-1"}, cli.ExitUsage},
		{"get without --to", nil, []string{"get", "j"}, cli.ExitUsage},
		{"retain without a rule", nil, []string{"retain", "j"}, cli.ExitUsage},
		{"delete without --version", nil, []string{"delete", "j"}, cli.ExitUsage},
		{"bad job name", nil, []string{"versions", "bad/job"}, cli.ExitUsage},
		{"escaping path", nil, []string{"put", "j", "../a"}, cli.ExitUsage},
		{"unknown job", nil, []string{"versions", "nojob"}, cli.ExitNotFound},
		{"unknown job get", nil, []string{"get", "nojob", "--to", t.TempDir()}, cli.ExitNotFound},
		{"unknown version", nil, []string{"get", "j", "--version", "9", "--to", t.TempDir()}, cli.ExitNotFound},
		{"unknown version delete", nil, []string{"delete", "j", "--version", "9", "--dry-run"}, cli.ExitNotFound},
		{"missing file", nil, []string{"put", "j", "nope"}, cli.ExitNotFound},
		{"path not in version", nil, []string{"ls", "j", "nothere"}, cli.ExitNotFound},
		{"manager down", down, []string{"versions", "j"}, cli.ExitUnreachable},
		{"manager down put", down, []string{"put", "j", "a"}, cli.ExitUnreachable},
		{"manager down gc", down, []string{"gc", "--dry-run"}, cli.ExitUnreachable},
		{"token refused", []string{"CKPT_TOKEN_FILE=" + badTok}, []string{"jobs"}, cli.ExitUnreachable},
		{"out of space", nil, []string{"put", "full", "big", "--replicas", "1", "--no-compress"}, cli.ExitNoSpace},
		{"cluster status down", nil, []string{"cluster", "status", "--home", t.TempDir()}, cli.ExitUnreachable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := c.Run(t, work, tc.env, "ckpt", tc.args...)
			if code != tc.want {
				t.Fatalf("ckpt %s: exit %d, want %d\nstdout %q\nstderr %q", strings.Join(tc.args, " "), code, tc.want, out, errOut)
			}
			lines := strings.Split(strings.TrimSpace(errOut), "\n")
			if code != 0 && !strings.HasPrefix(lines[len(lines)-1], "ckpt: ") {
				t.Fatalf("the last line is not the error: %q", errOut)
			}
		})
	}
}

// TestDaemonsVersionAndUsage: every binary has --version, and the daemons
// exit 2 on a bad command line.
func TestDaemonsVersionAndUsage(t *testing.T) {
	bin := clustertest.Build(t)
	for _, name := range []string{"ckpt", "ckpt-store", "ckpt-manager", "ckptrun"} {
		out, errOut, code := runBin(t, filepath.Join(bin, name), "--version")
		if code != 0 || !strings.HasPrefix(out, name+" ") || !strings.Contains(out, "commit ") || !strings.Contains(out, "go1.") {
			t.Errorf("%s --version: exit %d, %q %q", name, code, out, errOut)
		}
	}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"ckpt-store", []string{"--nope"}},
		{"ckpt-store", []string{"--dir", t.TempDir(), "--quota", "1GiB"}}, // no --manager
		{"ckpt-store", []string{"--manager", "127.0.0.1:1", "--dir", t.TempDir(), "--quota", "lots"}},
		{"ckpt-manager", []string{"--nope"}},
		{"ckpt-manager", nil}, // no --data
		{"ckpt-manager", []string{"--data", t.TempDir(), "extra"}},
		{"ckptrun", []string{"--max-restarts", "many", "prog"}},
	} {
		_, errOut, code := runBin(t, filepath.Join(bin, tc.name), tc.args...)
		if code != cli.ExitUsage {
			t.Errorf("%s %v: exit %d, want %d (%s)", tc.name, tc.args, code, cli.ExitUsage, errOut)
		}
	}
}

// TestClusterStatusExitCodes: the embedded local cluster, started by the
// real ckpt, is healthy (0); with a store killed it is degraded (6); once
// down, not running (4).
func TestClusterStatusExitCodes(t *testing.T) {
	c := clustertest.NewCluster(t, clustertest.Options{Stores: 1})
	home := filepath.Join(t.TempDir(), "home")
	ckpt := func(args ...string) (string, string, int) {
		t.Helper()
		return c.Run(t, t.TempDir(), []string{"CKPT_HOME=" + home, "CKPT_MANAGER="}, "ckpt", args...)
	}
	if _, errOut, code := ckpt("cluster", "up", "--stores", "2", "--quota", "64MiB"); code != 0 {
		t.Fatalf("cluster up: %s", errOut)
	}
	t.Cleanup(func() { ckpt("cluster", "down") })
	status := func() (map[string]any, int) {
		t.Helper()
		out, errOut, code := ckpt("cluster", "status", "--json")
		doc := checkDoc(t, out, "ckptio.cluster/1")
		if code != 0 && !strings.Contains(errOut, "cluster") {
			t.Fatalf("status: exit %d without saying why: %q", code, errOut)
		}
		return doc, code
	}
	doc, code := status()
	if code != 0 || doc["state"] != "running" || doc["alive_stores"] != 2.0 {
		t.Fatalf("healthy cluster: exit %d, %v", code, doc)
	}
	raw, err := os.ReadFile(filepath.Join(home, "cluster.json"))
	if err != nil {
		t.Fatal(err)
	}
	var info struct{ Pids []int }
	if err := json.Unmarshal(raw, &info); err != nil || len(info.Pids) != 3 {
		t.Fatalf("cluster.json: %s", raw)
	}
	if err := syscall.Kill(info.Pids[2], syscall.SIGKILL); err != nil { // a store the cluster started for this test
		t.Fatal(err)
	}
	clustertest.Eventually(t, 20*time.Second, func() bool {
		doc, code = status()
		return code == cli.ExitDegraded && doc["state"] == "degraded"
	}, func() string {
		return fmt.Sprintf("a store killed: status exit %d, %v; want %d degraded", code, doc, cli.ExitDegraded)
	})
	if _, errOut, code := ckpt("cluster", "down"); code != 0 {
		t.Fatal(errOut)
	}
	if doc, code := status(); code != cli.ExitUnreachable || doc["state"] != "down" {
		t.Fatalf("cluster down: status exit %d, %v", code, doc)
	}
	if out, _, code := ckpt("cluster", "status"); code != cli.ExitUnreachable || !strings.Contains(out, "not running") {
		t.Fatalf("cluster status: exit %d, %q", code, out)
	}
}

func runBin(t *testing.T, bin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		code = -1
		if cmd.ProcessState != nil {
			code = cmd.ProcessState.ExitCode()
		}
	}
	return out.String(), errb.String(), code
}

// checkDoc parses a --json document: one JSON object with the schema
// want, whose numbers are all JSON numbers (no figure sent as a string).
func checkDoc(t *testing.T, out, want string) map[string]any {
	t.Helper()
	var doc map[string]any
	dec := json.NewDecoder(strings.NewReader(out))
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("not one JSON object: %v\n%s", err, out)
	}
	if dec.More() {
		t.Fatalf("more than one JSON value:\n%s", out)
	}
	if doc["schema"] != want {
		t.Fatalf("schema %v, want %q:\n%s", doc["schema"], want, out)
	}
	checkNumbers(t, "", doc)
	return doc
}

// numericKeys are fields that must be JSON numbers wherever they appear.
var numericKeys = map[string]bool{
	"version": true, "versions": true, "step": true, "ranks": true, "leaders": true, "latest": true, "latest_step": true,
	"objects": true, "blocks": true, "logical_bytes": true, "new_bytes": true, "sent_bytes": true, "bytes": true,
	"files": true, "seconds": true, "mb_per_s": true, "used": true, "quota": true, "freed_bytes": true,
	"unreferenced": true, "listed": true, "estimated_bytes": true, "replicas": true, "target": true, "min_copies": true,
	"copies": true, "copied_bytes": true, "lost": true, "in_flight": true, "alive_stores": true, "from": true, "to": true,
	"size": true, "disk_free": true, "keep_last": true, "keep_every": true, "dedup_ratio": true,
}

// textKeys are string fields that may look like numbers: an octal mode, a
// hash, a name.
var textKeys = map[string]bool{"mode": true, "key": true, "key_fingerprint": true, "id": true, "name": true, "job": true, "path": true, "target": true}

// checkNumbers fails on a string that holds a number, or on a numeric
// field that is not a number, anywhere in v.
func checkNumbers(t *testing.T, path string, v any) {
	t.Helper()
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			p := path + "." + k
			if textKeys[k] {
				continue
			}
			if numericKeys[k] {
				switch x.(type) {
				case float64, []any, map[string]any:
					// "versions" is a count in a job, a list in a document
				default:
					t.Errorf("%s = %#v: want a JSON number", p, x)
				}
			}
			checkNumbers(t, p, x)
		}
	case []any:
		for i, x := range v {
			checkNumbers(t, path+"["+strconv.Itoa(i)+"]", x)
		}
	case string:
		if _, err := strconv.ParseFloat(v, 64); err == nil && !strings.HasPrefix(path, ".meta.") && !strings.Contains(path, ".labels.") {
			t.Errorf("%s = %q: a number sent as a string", path, v)
		}
	}
}

// TestJSONOutputs runs every command that has --json against real daemons
// and checks each document: one JSON object, its "schema", numbers as
// JSON numbers; and that the dry runs delete nothing.
func TestJSONOutputs(t *testing.T) {
	c := clustertest.NewCluster(t, clustertest.Options{Stores: 2})
	work := t.TempDir()
	writeRandom(t, filepath.Join(work, "d", "a"), 300<<10, 1)
	writeRandom(t, filepath.Join(work, "d", "b"), 1000, 2)
	doc := func(schema string, args ...string) map[string]any {
		t.Helper()
		out, errOut, code := c.Run(t, work, nil, "ckpt", args...)
		if code != 0 {
			t.Fatalf("ckpt %s: exit %d: %s", strings.Join(args, " "), code, errOut)
		}
		return checkDoc(t, out, schema)
	}
	put := doc("ckptio.transfer/1", "put", "j", "d", "--json")
	if put["op"] != "put" || put["version"] != 1.0 || put["files"] != 3.0 || put["bytes"] != float64(300<<10+1000) || put["new_bytes"] == nil {
		t.Fatalf("put --json: %v", put)
	}
	writeRandom(t, filepath.Join(work, "d", "b"), 2000, 3)
	doc("ckptio.transfer/1", "put", "j", "d", "--json")
	doc("ckptio.transfer/1", "put", "j", "d", "--json")
	get := doc("ckptio.transfer/1", "get", "j", "--to", t.TempDir(), "--json")
	if get["op"] != "get" || get["version"] != 3.0 || get["new_bytes"] != nil {
		t.Fatalf("get --json: %v", get)
	}
	doc("ckptio.transfer/1", "restore", "j", "--version", "1", "--to", t.TempDir(), "--json")
	vs := doc("ckptio.versions/1", "versions", "j", "--json")
	if list, ok := vs["versions"].([]any); !ok || len(list) != 3 {
		t.Fatalf("versions --json: %v", vs)
	}
	jobs := doc("ckptio.jobs/1", "jobs", "--json")
	if list, ok := jobs["jobs"].([]any); !ok || len(list) != 1 || list[0].(map[string]any)["versions"] != 3.0 {
		t.Fatalf("jobs --json: %v", jobs)
	}
	doc("ckptio.stores/1", "stores", "--json")
	doc("ckptio.tree/1", "ls", "j", "--json")
	diff := doc("ckptio.diff/1", "diff", "j", "1", "2", "--json")
	if list, ok := diff["changes"].([]any); !ok || len(list) != 1 {
		t.Fatalf("diff --json: %v", diff)
	}
	doc("ckptio.health/1", "verify", "j", "--json")
	doc("ckptio.health/1", "verify", "j", "--json", "--deep")
	doc("ckptio.repair/1", "repair", "j", "--json")

	// Dry runs say what they would delete, and delete nothing.
	ret := doc("ckptio.retention/1", "retain", "j", "--keep-last", "1", "--dry-run", "--json")
	if d, ok := ret["deleted"].([]any); !ok || len(d) != 2 || ret["dry_run"] != true {
		t.Fatalf("retain --dry-run --json: %v", ret)
	}
	if pol := doc("ckptio.retention-policy/1", "retain", "j", "--show", "--json"); pol["keep_last"] != 0.0 {
		t.Fatalf("a dry run stored the policy: %v", pol)
	}
	del := doc("ckptio.delete/1", "delete", "j", "--version", "1", "--dry-run", "--json")
	if del["dry_run"] != true || del["deleted"].(map[string]any)["version"] != 1.0 {
		t.Fatalf("delete --dry-run --json: %v", del)
	}
	if list := doc("ckptio.versions/1", "versions", "j", "--json")["versions"].([]any); len(list) != 3 {
		t.Fatalf("%d versions left after dry runs, want 3", len(list))
	}
	if _, errOut, code := c.Run(t, work, nil, "ckpt", "delete", "j", "--version", "1"); code != 0 {
		t.Fatal(errOut)
	}
	// The garbage version 1 left: a dry run counts it, the collection
	// frees it, and a dry run after finds none.
	c.WaitStoreClocks(t, time.Now().Add(200*time.Millisecond)) // past the blocks' touch times, and the GC's drift margin
	gcDry := doc("ckptio.gc/1", "gc", "--dry-run", "--json")
	if gcDry["dry_run"] != true || gcDry["unreferenced"].(float64) < 1 || gcDry["estimated_bytes"].(float64) <= 0 || gcDry["freed_bytes"] != 0.0 {
		t.Fatalf("gc --dry-run --json: %v", gcDry)
	}
	if again := doc("ckptio.gc/1", "gc", "--dry-run", "--json"); again["unreferenced"] != gcDry["unreferenced"] {
		t.Fatalf("a dry run deleted blocks: %v then %v", gcDry["unreferenced"], again["unreferenced"])
	}
	gc := doc("ckptio.gc/1", "gc", "--json")
	if gc["dry_run"] != false || gc["unreferenced"] != gcDry["unreferenced"] || gc["freed_bytes"].(float64) <= 0 {
		t.Fatalf("gc --json after the dry run %v: %v", gcDry, gc)
	}
	if after := doc("ckptio.gc/1", "gc", "--dry-run", "--json"); after["unreferenced"] != 0.0 {
		t.Fatalf("gc --dry-run after gc: %v", after)
	}
}
