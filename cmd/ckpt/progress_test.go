package main_test

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ckptio/ckptio/storage/cluster/clustertest"
)

// finalRate is how every progress-showing command's last stderr line ends.
var finalRate = regexp.MustCompile(`in [0-9.]+(ms|s|m[0-9.]*s), [0-9]+\.[0-9] MB/s$`)

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

// TestProgressBarOnTerminal runs the real ckpt against real daemons under
// a pseudo-terminal (util-linux script) and finds a drawn bar in what the
// terminal got.
func TestProgressBarOnTerminal(t *testing.T) {
	script, err := exec.LookPath("script")
	if err != nil {
		t.Skip("script (util-linux) is not installed")
	}
	c := clustertest.NewCluster(t, clustertest.Options{Stores: 2})
	work := t.TempDir()
	writeRandom(t, filepath.Join(work, "big.bin"), 24<<20, 1)
	to := filepath.Join(t.TempDir(), "out")
	for _, args := range [][]string{
		{"put", "barjob", "big.bin"},
		{"get", "barjob", "--to", to},
	} {
		line := "'" + filepath.Join(c.Bin, "ckpt") + "' " + strings.Join(args, " ")
		cmd := exec.Command(script, "-qefc", line, "/dev/null")
		cmd.Dir = work
		cmd.Env = c.Env()
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s under a terminal: %v\n%s", args[0], err, out)
		}
		tty := string(out)
		for _, want := range []string{"ckpt: " + args[0] + " barjob", "100%", "|██████", "24.0 MiB", "\r"} {
			if !strings.Contains(tty, want) {
				t.Errorf("%s: the terminal shows no %q:\n%q", args[0], want, tty)
			}
		}
		// put's last line on the terminal is its version number (stdout).
		rated := false
		for _, l := range strings.Split(tty, "\n") {
			rated = rated || finalRate.MatchString(strings.TrimRight(l, "\r"))
		}
		if !rated {
			t.Errorf("%s: no line ends with a rate:\n%q", args[0], tty)
		}
		t.Logf("%s on a terminal:\n%q", args[0], tty)
	}
}

// TestProgressPlainAndQuiet: without a terminal the real ckpt writes
// plain progress lines (every millisecond here; a 32 MiB put and get
// through two fsyncing stores take far longer), and with --quiet none,
// only its last line.
func TestProgressPlainAndQuiet(t *testing.T) {
	c := clustertest.NewCluster(t, clustertest.Options{Stores: 2})
	work := t.TempDir()
	writeRandom(t, filepath.Join(work, "state.bin"), 32<<20, 2)
	fast := []string{"CKPT_PROGRESS_INTERVAL=1ms"}
	plain := regexp.MustCompile(`(?m)^ckpt: (put|get|verify --deep) plainjob: [0-9.]+ (B|KiB|MiB) of [0-9.]+ MiB \([0-9]+%\), [0-9]+\.[0-9] MB/s`)

	for _, tc := range []struct {
		what string
		args []string
	}{
		{"put", []string{"put", "plainjob", "state.bin"}},
		{"get", []string{"get", "plainjob", "--to", filepath.Join(t.TempDir(), "a")}},
		{"verify --deep", []string{"verify", "plainjob", "--deep"}},
	} {
		_, errOut, code := c.Run(t, work, fast, "ckpt", tc.args...)
		if code != 0 {
			t.Fatalf("%s: code %d: %s", tc.what, code, errOut)
		}
		if !plain.MatchString(errOut) || !strings.Contains(errOut, "ckpt: "+tc.what+" plainjob: ") {
			t.Errorf("%s: no plain progress line:\n%s", tc.what, errOut)
		}
		if !finalRate.MatchString(lastLine(errOut)) {
			t.Errorf("%s: last line has no rate: %q", tc.what, lastLine(errOut))
		}

		quiet := append(tc.args, "--quiet")
		if tc.what == "get" {
			quiet = []string{"get", "plainjob", "--to", filepath.Join(t.TempDir(), "b"), "--quiet"}
		}
		if tc.what == "put" {
			writeRandom(t, filepath.Join(work, "state.bin"), 32<<20, 3) // something to read again
		}
		_, errOut, code = c.Run(t, work, fast, "ckpt", quiet...)
		if code != 0 {
			t.Fatalf("%s --quiet: code %d: %s", tc.what, code, errOut)
		}
		if n := strings.Count(errOut, "\n"); n != 1 || !finalRate.MatchString(lastLine(errOut)) {
			t.Errorf("%s --quiet: want only the last line, got:\n%s", tc.what, errOut)
		}
	}

	// repair has nothing to copy here; it still ends with its rate.
	_, errOut, code := c.Run(t, work, fast, "ckpt", "repair", "plainjob", "--quiet")
	if code != 0 || strings.Count(errOut, "\n") != 1 || !finalRate.MatchString(lastLine(errOut)) {
		t.Errorf("repair --quiet: code %d, stderr:\n%s", code, errOut)
	}
}
