package main

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseArgs(t *testing.T) {
	tests := []struct {
		name string
		argv []string
		want options
	}{
		{"np", []string{"-np", "4", "bin/heat"},
			options{np: 4, maxRestarts: 3, program: "bin/heat", args: []string{}}},
		{"n", []string{"-n", "4", "bin/heat"},
			options{np: 4, maxRestarts: 3, program: "bin/heat", args: []string{}}},
		{"--np=", []string{"--np=4", "bin/heat"},
			options{np: 4, maxRestarts: 3, program: "bin/heat", args: []string{}}},
		{"--n and -c", []string{"--n", "2", "-c", "3", "bin/heat"},
			options{np: 3, maxRestarts: 3, program: "bin/heat", args: []string{}}},
		{"no np", []string{"bin/heat"},
			options{maxRestarts: 3, program: "bin/heat", args: []string{}}},
		{"own options", []string{"--job", "heat2", "--max-restarts=0", "-restart-version", "12", "-np", "2", "bin/heat"},
			options{np: 2, job: "heat2", maxRestarts: 0, restartVersion: "12", program: "bin/heat", args: []string{}}},
		{"cluster options", []string{"--token-file", "x", "-np", "2", "--manager=m:7070", "--fresh", "prog"},
			options{np: 2, maxRestarts: 3, tokenFile: "x", manager: "m:7070", fresh: true, program: "prog", args: []string{}}},
		{"program flags after program", []string{"-np", "4", "bin/heat", "--n", "1024", "-np", "9", "--job", "x"},
			options{np: 4, maxRestarts: 3, program: "bin/heat", args: []string{"--n", "1024", "-np", "9", "--job", "x"}}},
		{"double dash", []string{"-np", "2", "--", "bin/heat", "--", "-x"},
			options{np: 2, maxRestarts: 3, program: "bin/heat", args: []string{"--", "-x"}}},
		{"double dash before a dash program", []string{"--", "-weird"},
			options{maxRestarts: 3, program: "-weird", args: []string{}}},
		{"pass-through with values", []string{
			"--host", "a,b", "-x", "OMP_NUM_THREADS", "--mca", "btl", "^openib", "--bind-to", "none",
			"-H", "c", "--hostfile", "hf", "--map-by", "node", "-np", "4", "--report-bindings", "bin/heat", "--steps", "5"},
			options{np: 4, maxRestarts: 3, program: "bin/heat", args: []string{"--steps", "5"},
				mpirunFlags: []string{"--host", "a,b", "-x", "OMP_NUM_THREADS", "--mca", "btl", "^openib", "--bind-to", "none",
					"-H", "c", "--hostfile", "hf", "--map-by", "node", "--report-bindings"}}},
		{"values that look like options or programs", []string{"-x", "-np", "--mca", "a", "-b", "-gmca", "k", "v", "prog"},
			options{maxRestarts: 3, program: "prog", args: []string{},
				mpirunFlags: []string{"-x", "-np", "--mca", "a", "-b", "-gmca", "k", "v"}}},
		{"inline values split for mpirun", []string{"--host=a,b", "--mca=btl", "self", "--unknown=1", "prog"},
			options{maxRestarts: 3, program: "prog", args: []string{},
				mpirunFlags: []string{"--host", "a,b", "--mca", "btl", "self", "--unknown=1"}}},
		{"switches", []string{"--oversubscribe", "--allow-run-as-root", "-v", "prog"},
			options{maxRestarts: 3, program: "prog", args: []string{},
				mpirunFlags: []string{"--oversubscribe", "--allow-run-as-root", "-v"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseArgs(tt.argv)
			if err != nil {
				t.Fatalf("parseArgs(%q): %v", tt.argv, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseArgs(%q)\n got %+v\nwant %+v", tt.argv, got, tt.want)
			}
		})
	}
}

func TestParseArgsErrors(t *testing.T) {
	tests := []struct {
		argv []string
		want string
	}{
		{nil, "no program"},
		{[]string{"-np", "4"}, "no program"},
		{[]string{"-np", "4", "--"}, "no program"},
		{[]string{"-np"}, "needs a value"},
		{[]string{"-np", "four", "prog"}, "positive number"},
		{[]string{"-np", "0", "prog"}, "positive number"},
		{[]string{"--max-restarts", "-1", "prog"}, ">= 0"},
		{[]string{"--job", "a/b", "prog"}, "without slashes"},
		{[]string{"--restart-version=", "prog"}, "want a version number"},
		{[]string{"--restart-version", "x", "prog"}, "want a version number"},
		{[]string{"--manager", "nohost", "prog"}, "HOST:PORT"},
		{[]string{"--token-file="}, "needs a file"},
		{[]string{"--fresh=1", "prog"}, "takes no value"},
		{[]string{"--fresh", "--restart-version", "2", "prog"}, "contradict"},
		{[]string{"--mca", "btl"}, "needs 2 values"},
		{[]string{"--host"}, "needs a value"},
	}
	for _, tt := range tests {
		_, err := parseArgs(tt.argv)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("parseArgs(%q) = %v, want an error containing %q", tt.argv, err, tt.want)
		}
	}
	for _, h := range []string{"-h", "--help", "-help"} {
		if _, err := parseArgs([]string{"-np", "2", h, "prog"}); !errors.Is(err, errHelp) {
			t.Errorf("parseArgs(%s) = %v, want errHelp", h, err)
		}
	}
	// After the program, --help belongs to the program.
	if _, err := parseArgs([]string{"prog", "--help"}); err != nil {
		t.Errorf("parseArgs(prog --help) = %v", err)
	}
}

func TestMpirunArgs(t *testing.T) {
	env := []string{"PATH=/bin", "CKPT_JOB=heat", "CKPT_ATTEMPT=0", "CKPT_MANAGER=m:1", "HOME=/root"}
	tests := []struct {
		name string
		argv []string
		mach machine
		want string
	}{
		{"user, enough cores", []string{"-np", "2", "bin/heat", "--n", "8"}, machine{cpus: 2},
			"-np 2 -x CKPT_ATTEMPT -x CKPT_JOB -x CKPT_MANAGER bin/heat --n 8"},
		{"root", []string{"-np", "2", "bin/heat"}, machine{root: true, cpus: 2},
			"--allow-run-as-root -np 2 -x CKPT_ATTEMPT -x CKPT_JOB -x CKPT_MANAGER bin/heat"},
		{"root, already allowed", []string{"-allow-run-as-root", "-np", "2", "bin/heat"}, machine{root: true, cpus: 2},
			"-np 2 -allow-run-as-root -x CKPT_ATTEMPT -x CKPT_JOB -x CKPT_MANAGER bin/heat"},
		{"oversubscribed", []string{"-np", "4", "bin/heat"}, machine{root: true, cpus: 2},
			"--allow-run-as-root --oversubscribe -np 4 -x CKPT_ATTEMPT -x CKPT_JOB -x CKPT_MANAGER bin/heat"},
		{"oversubscribe given", []string{"-np", "4", "--oversubscribe", "bin/heat"}, machine{cpus: 2},
			"-np 4 --oversubscribe -x CKPT_ATTEMPT -x CKPT_JOB -x CKPT_MANAGER bin/heat"},
		{"nooversubscribe given", []string{"-np", "4", "-nooversubscribe", "bin/heat"}, machine{cpus: 2},
			"-np 4 -nooversubscribe -x CKPT_ATTEMPT -x CKPT_JOB -x CKPT_MANAGER bin/heat"},
		{"map-by modifier", []string{"-np", "4", "--map-by", "core:OVERSUBSCRIBE", "bin/heat"}, machine{cpus: 2},
			"-np 4 --map-by core:OVERSUBSCRIBE -x CKPT_ATTEMPT -x CKPT_JOB -x CKPT_MANAGER bin/heat"},
		{"on hosts", []string{"-np", "8", "--host", "a:4,b:4", "bin/heat"}, machine{cpus: 2},
			"-np 8 --host a:4,b:4 -x CKPT_ATTEMPT -x CKPT_JOB -x CKPT_MANAGER bin/heat"},
		{"switch named like a host option is a value", []string{"-np", "4", "-x", "host", "bin/heat"}, machine{cpus: 2},
			"--oversubscribe -np 4 -x host -x CKPT_ATTEMPT -x CKPT_JOB -x CKPT_MANAGER bin/heat"},
		{"user exports a CKPT variable", []string{"-x", "CKPT_JOB=other", "-np", "1", "bin/heat"}, machine{cpus: 2},
			"-np 1 -x CKPT_JOB=other -x CKPT_ATTEMPT -x CKPT_MANAGER bin/heat"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseArgs(tt.argv)
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Join(mpirunArgs(o, tt.mach, env), " ")
			if got != tt.want {
				t.Errorf("mpirunArgs(%q)\n got %s\nwant %s", tt.argv, got, tt.want)
			}
		})
	}
}

func TestAttemptEnv(t *testing.T) {
	inherited := []string{"PATH=/bin", "CKPT_MANAGER=m:1", "CKPT_TOKEN=secret", "CKPT_ATTEMPT=7",
		"CKPT_RESTART_VERSION=9", "CKPT_RANKS_PER_LEADER=4"}
	tests := []struct {
		name    string
		version string
		attempt int
		want    []string
	}{
		{"attempt 0", "", 0, []string{"CKPT_ATTEMPT=0", "CKPT_JOB=heat", "CKPT_MANAGER=m:1", "CKPT_RANKS_PER_LEADER=4", "CKPT_TOKEN=secret"}},
		{"attempt 0 with version", "12", 0, []string{"CKPT_ATTEMPT=0", "CKPT_JOB=heat", "CKPT_MANAGER=m:1", "CKPT_RANKS_PER_LEADER=4", "CKPT_RESTART_VERSION=12", "CKPT_TOKEN=secret"}},
		{"attempt 1", "", 1, []string{"CKPT_ATTEMPT=1", "CKPT_JOB=heat", "CKPT_MANAGER=m:1", "CKPT_RANKS_PER_LEADER=4", "CKPT_TOKEN=secret"}},
		{"attempt 2 restoring a version again", "12", 2, []string{"CKPT_ATTEMPT=2", "CKPT_JOB=heat", "CKPT_MANAGER=m:1", "CKPT_RANKS_PER_LEADER=4", "CKPT_RESTART_VERSION=12", "CKPT_TOKEN=secret"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := attemptEnv(inherited, "heat", tt.version, tt.attempt)
			var got []string
			for _, name := range ckptNames(env) {
				got = append(got, name+"="+lookupEnv(env, name))
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
			if lookupEnv(env, "PATH") != "/bin" {
				t.Errorf("PATH lost: %q", env)
			}
		})
	}
}

func TestBaseEnv(t *testing.T) {
	abs := func(p string) (string, error) { return "/work/" + p, nil }
	inherited := []string{"CKPT_TOKEN=secret", "CKPT_HOME=.ckpt", "CKPT_TOKEN_FILE=tok", "X=1"}

	// Local cluster: its address and token file win; an inherited token
	// would shadow the file, so it goes.
	env := baseEnv(inherited, clusterEnv{manager: "127.0.0.1:5", tokenFile: "/work/.ckpt/token"}, abs)
	want := map[string]string{"CKPT_MANAGER": "127.0.0.1:5", "CKPT_TOKEN_FILE": "/work/.ckpt/token",
		"CKPT_TOKEN": "", "CKPT_HOME": "/work/.ckpt", "X": "1"}
	for k, v := range want {
		if got := lookupEnv(env, k); got != v {
			t.Errorf("local cluster: %s=%q, want %q", k, got, v)
		}
	}

	// Given cluster: everything passes, relative paths made absolute.
	env = baseEnv(append(inherited, "CKPT_MANAGER=mgr:7"), clusterEnv{}, abs)
	want = map[string]string{"CKPT_MANAGER": "mgr:7", "CKPT_TOKEN_FILE": "/work/tok",
		"CKPT_TOKEN": "secret", "CKPT_HOME": "/work/.ckpt"}
	for k, v := range want {
		if got := lookupEnv(env, k); got != v {
			t.Errorf("given cluster: %s=%q, want %q", k, got, v)
		}
	}
}

func TestJobName(t *testing.T) {
	o := options{program: "/opt/bin/heat"}
	if got := o.jobName(nil); got != "heat" {
		t.Errorf("default job = %q, want heat", got)
	}
	if got := o.jobName([]string{"CKPT_JOB=fromenv"}); got != "fromenv" {
		t.Errorf("job with CKPT_JOB = %q, want fromenv", got)
	}
	o.job = "flag"
	if got := o.jobName([]string{"CKPT_JOB=fromenv"}); got != "flag" {
		t.Errorf("job with --job = %q, want flag", got)
	}
}

func TestShellQuote(t *testing.T) {
	got := shellQuote([]string{"mpirun", "-np", "2", "sh", "-c", "echo $X it's", ""})
	want := `mpirun -np 2 sh -c 'echo $X it'\''s' ''`
	if got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

// TestRestartVersionOnRelaunch: with --restart-version V, a relaunch restores
// V again while the run has committed nothing, and the latest once it has.
func TestRestartVersionOnRelaunch(t *testing.T) {
	latest := int64(20)
	var log strings.Builder
	l := &launcher{opts: options{restartVersion: "12"}, stderr: &log,
		latest: func() (int64, error) { return latest, nil }}
	if got := l.restartFor(0, 20, nil); got != "12" {
		t.Fatalf("attempt 0: %q", got)
	}
	if got := l.restartFor(1, 20, nil); got != "12" {
		t.Fatalf("relaunch with nothing committed: %q, want 12", got)
	}
	latest = 21
	if got := l.restartFor(2, 20, nil); got != "" {
		t.Fatalf("relaunch after a commit: %q, want the latest", got)
	}
	l.latest = nil
	if got := l.restartFor(1, 0, errNoLatest); got != "" || !strings.Contains(log.String(), "cannot ask the manager") {
		t.Fatalf("no manager: %q, log %q", got, log.String())
	}
	l.opts.restartVersion = ""
	if got := l.restartFor(1, 0, nil); got != "" {
		t.Fatalf("no --restart-version: %q", got)
	}
}
