package main

import (
	"strings"
	"testing"
)

// TestOwnFlags: --token-file, --manager and --job are ckptrun's, not the
// program; the job gets them as CKPT_TOKEN_FILE (an inherited CKPT_TOKEN
// dropped), CKPT_MANAGER and CKPT_JOB.
func TestOwnFlags(t *testing.T) {
	f := newFake(t)
	m := newManager(t)
	env := cleanEnv("MPIRUN="+f.path, "CKPT_TOKEN=an-inherited-token-to-drop")
	code, out := runCkptrun(t, env, "--token-file", m.c.TokenFile, "--manager", m.addr, "--job", "mine", "-np", "2", "prog", "--x")
	if code != 0 || f.calls(t) != 1 {
		t.Fatalf("exit status %d, %d mpirun calls; output:\n%s", code, f.calls(t), out)
	}
	got := f.env(t, 1)
	if got["CKPT_TOKEN_FILE"] != m.c.TokenFile || got["CKPT_MANAGER"] != m.addr || got["CKPT_JOB"] != "mine" {
		t.Errorf("job env %v, want the token file, manager and job of the command line", got)
	}
	if _, ok := got["CKPT_TOKEN"]; ok {
		t.Errorf("CKPT_TOKEN reached the job beside --token-file: %v", got)
	}
	if argv := f.lines(t, "argv.1"); argv[len(argv)-2] != "prog" || argv[len(argv)-1] != "--x" {
		t.Errorf("program is not prog --x: %q", argv)
	}
	if strings.Contains(out, "warning") {
		t.Errorf("a warning with a good --token-file:\n%s", out)
	}
	code, out = runCkptrun(t, env, "--token-file", "/nonexistent/token", "--manager", m.addr, "prog")
	if code != 2 || f.calls(t) != 1 || !strings.Contains(out, "--token-file") || !strings.Contains(out, "/nonexistent/token") {
		t.Errorf("missing --token-file: exit status %d; output:\n%s", code, out)
	}
	code, out = runCkptrun(t, noManagerEnv(), "--help")
	for _, want := range []string{"--token-file FILE", "--manager HOST:PORT", "--job NAME", "--fresh"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("--help lacks %q", want)
		}
	}
}

// TestPreflight: nothing is launched when the manager does not answer
// (exit 4) or the asked-for version does not exist (exit 3, naming the
// latest).
func TestPreflight(t *testing.T) {
	f := newFake(t)
	code, out := runCkptrun(t, noManagerEnv("MPIRUN="+f.path), "-np", "1", "prog")
	if code != 4 || f.calls(t) != 0 || !strings.Contains(out, "does not answer") || !strings.Contains(out, "nothing launched") {
		t.Errorf("unreachable manager: exit status %d, %d calls; output:\n%s", code, f.calls(t), out)
	}
	m := newManager(t)
	code, out = runCkptrun(t, m.env("MPIRUN="+f.path), "-np", "1", "--restart-version", "99", "--job", "heat", "prog")
	if code != 3 || f.calls(t) != 0 || !strings.Contains(out, "job heat has no committed version") {
		t.Errorf("--restart-version 99 of a job without versions: exit status %d; output:\n%s", code, out)
	}
	m.put(t, "heat")
	code, out = runCkptrun(t, m.env("MPIRUN="+f.path), "-np", "1", "--restart-version", "99", "--job", "heat", "prog")
	if code != 3 || f.calls(t) != 0 || !strings.Contains(out, "job heat has no version 99; its latest is 1") {
		t.Errorf("--restart-version 99: exit status %d; output:\n%s", code, out)
	}
	code, out = runCkptrun(t, m.env("MPIRUN="+f.path), "-np", "1", "--restart-version", "1", "--job", "heat", "prog")
	if code != 0 || f.calls(t) != 1 {
		t.Errorf("--restart-version 1: exit status %d; output:\n%s", code, out)
	}
}

// TestHopelessFailuresNotRelaunched: a refused restore, a usage error and
// the same quick failure twice end the run, saying why; other failures are
// relaunched as before.
func TestHopelessFailuresNotRelaunched(t *testing.T) {
	m := newManager(t)
	for _, tc := range []struct {
		name  string
		env   []string
		calls int
		want  string
	}{
		{"refused restore", []string{"FAKE_FAILS=99", "FAKE_EXIT=1",
			"FAKE_STDERR=heat: rank 0: mpiio: restore of heat refused, nothing touched: rank 0: 2 regions, version has 3"},
			1, "restore was refused"},
		{"usage error", []string{"FAKE_FAILS=99", "FAKE_EXIT=2"}, 1, "exit status 2 is a usage error"},
		// Every failure counts as quick with CKPTRUN_QUICK_EXIT=1h.
		{"same quick failure", []string{"FAKE_FAILS=99", "FAKE_EXIT=3", "CKPTRUN_QUICK_EXIT=1h"}, 2,
			"both failed within 1h0m0s of their start with exit status 3"},
		// None does with 0: all 6 attempts run.
		{"slow failures", []string{"FAKE_FAILS=99", "FAKE_EXIT=3", "CKPTRUN_QUICK_EXIT=0"}, 6, "no restarts left"},
		{"different statuses", []string{"FAKE_FAILS=1", "FAKE_EXIT=3", "CKPTRUN_QUICK_EXIT=1h"}, 2, "finished after 2 attempts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			_, out := runCkptrun(t, m.env(append(tc.env, "MPIRUN="+f.path)...), "--max-restarts", "5", "-np", "1", "heat")
			if n := f.calls(t); n != tc.calls || !strings.Contains(out, tc.want) {
				t.Errorf("%d attempts, want %d, and output with %q:\n%s", n, tc.calls, tc.want, out)
			}
			if tc.calls == 1 && !strings.Contains(out, "not relaunching") {
				t.Errorf("no 'not relaunching':\n%s", out)
			}
		})
	}
}

// TestFreshEnv: --fresh sets CKPT_RESTART_VERSION=none on the first launch
// and again on a relaunch while nothing was committed; it refuses to be
// combined with --restart-version.
func TestFreshEnv(t *testing.T) {
	f := newFake(t)
	m := newManager(t)
	m.put(t, "heat")
	code, out := runCkptrun(t, m.env("MPIRUN="+f.path, "FAKE_FAILS=1", "FAKE_EXIT=1"), "--fresh", "-np", "1", "heat")
	if code != 0 || f.calls(t) != 2 {
		t.Fatalf("exit status %d, %d calls; output:\n%s", code, f.calls(t), out)
	}
	for n := 1; n <= 2; n++ {
		if v := f.env(t, n)["CKPT_RESTART_VERSION"]; v != "none" {
			t.Errorf("call %d: CKPT_RESTART_VERSION=%q, want none", n, v)
		}
	}
	code, out = runCkptrun(t, noManagerEnv(), "--fresh", "--restart-version", "1", "heat")
	if code != 2 || !strings.Contains(out, "contradict") {
		t.Errorf("--fresh --restart-version: exit status %d; output:\n%s", code, out)
	}
}
