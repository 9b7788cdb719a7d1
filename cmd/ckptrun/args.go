package main

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// errHelp: --help was asked for; the caller prints the usage and exits 0.
var errHelp = errors.New("ckptrun: help requested")

// errVersion: --version was asked for; the caller prints it and exits 0.
var errVersion = errors.New("ckptrun: version requested")

// defaultMaxRestarts is --max-restarts when not given.
const defaultMaxRestarts = 3

// options is what the command line says.
type options struct {
	np             int    // -np; 0 = not given (mpirun picks)
	job            string // --job; "" = $CKPT_JOB, then the program's base name
	maxRestarts    int    // --max-restarts
	restartVersion string // --restart-version; "" = not given
	fresh          bool   // --fresh: the first launch restores nothing
	manager        string // --manager; "" = $CKPT_MANAGER
	tokenFile      string // --token-file; "" = $CKPT_TOKEN, $CKPT_TOKEN_FILE
	mpirunFlags    []string
	program        string
	args           []string
}

// mpirunValues maps each mpirun option that takes values (spelled without
// leading dashes; mpirun accepts one or two) to how many it takes. Taken
// from 'mpirun --help all' of Open MPI 4.1. An option not listed is passed
// through as a switch, so its value would be taken for the program: write
// such an option as --name=value, which is passed through as one word.
var mpirunValues = map[string]int{
	"mca": 2, "gmca": 2,
	"am": 1, "app": 1, "bind-to": 1, "cf": 1, "cartofile": 1,
	"cpu-list": 1, "cpu-set": 1, "cpus-per-proc": 1, "cpus-per-rank": 1,
	"debugger": 1, "default-hostfile": 1, "H": 1, "host": 1, "hnp": 1,
	"hostfile": 1, "launch-agent": 1, "machinefile": 1, "map-by": 1,
	"max-vm-size": 1, "N": 1, "npernode": 1, "npersocket": 1,
	"ompi-server": 1, "output-filename": 1, "path": 1, "personality": 1,
	"ppr": 1, "prefix": 1, "preload-files": 1, "rank-by": 1,
	"report-events": 1, "report-pid": 1, "report-uri": 1, "rf": 1,
	"rankfile": 1, "stdin": 1, "timeout": 1, "tune": 1, "wd": 1, "wdir": 1,
	"x": 1, "xml-file": 1, "xterm": 1, "tmpdir": 1,
}

// hostOptions place ranks on named hosts: with any of them the local core
// count says nothing, so ckptrun adds no --oversubscribe, and the embedded
// local cluster (127.0.0.1 only) is out of reach for remote ranks.
var hostOptions = map[string]bool{
	"H": true, "host": true, "hostfile": true, "machinefile": true,
	"default-hostfile": true, "rf": true, "rankfile": true,
}

// flagName splits a command-line word that looks like an option into its
// name (without dashes) and an inline "=value". ok is false for words that
// are not options: "-", "--" and anything not starting with a dash.
func flagName(word string) (name, value string, hasValue, ok bool) {
	if len(word) < 2 || word[0] != '-' || word == "--" {
		return "", "", false, false
	}
	name = strings.TrimPrefix(strings.TrimPrefix(word, "-"), "-")
	if i := strings.IndexByte(name, '='); i >= 0 {
		return name[:i], name[i+1:], true, true
	}
	return name, "", false, true
}

// parseArgs reads ckptrun's command line (without the command name).
// ckptrun's own options and mpirun's options come first, in any order;
// "--" or the first word that is not an option starts PROGRAM ARGS, which
// are kept verbatim. mpirun options of the form --name=value (which mpirun
// rejects) are split into --name value when ckptrun knows the option.
func parseArgs(argv []string) (options, error) {
	o := options{maxRestarts: defaultMaxRestarts}
	i := 0
	// value returns the value of the option at argv[i], inline or next.
	value := func(word, inline string, has bool) (string, error) {
		if has {
			return inline, nil
		}
		if i+1 >= len(argv) {
			return "", fmt.Errorf("%s needs a value", word)
		}
		i++
		return argv[i], nil
	}
	for ; i < len(argv); i++ {
		word := argv[i]
		if word == "--" {
			i++
			break
		}
		name, inline, has, ok := flagName(word)
		if !ok {
			break
		}
		switch name {
		case "h", "help":
			return options{}, errHelp
		case "version":
			return options{}, errVersion
		case "np", "n", "c":
			v, err := value(word, inline, has)
			if err != nil {
				return options{}, err
			}
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return options{}, fmt.Errorf("%s %q: want a positive number of processes", word, v)
			}
			o.np = n
		case "job":
			v, err := value(word, inline, has)
			if err != nil {
				return options{}, err
			}
			if v == "" || strings.ContainsAny(v, "/ \t\n") {
				return options{}, fmt.Errorf("%s %q: want a name without slashes or spaces", word, v)
			}
			o.job = v
		case "max-restarts":
			v, err := value(word, inline, has)
			if err != nil {
				return options{}, err
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return options{}, fmt.Errorf("%s %q: want a number >= 0", word, v)
			}
			o.maxRestarts = n
		case "restart-version":
			v, err := value(word, inline, has)
			if err != nil {
				return options{}, err
			}
			if n, err := strconv.ParseInt(v, 10, 64); err != nil || n < 1 {
				return options{}, fmt.Errorf("%s %q: want a version number >= 1 (see 'ckpt versions JOB')", word, v)
			}
			o.restartVersion = v
		case "fresh":
			if has {
				return options{}, fmt.Errorf("%s takes no value", word)
			}
			o.fresh = true
		case "manager":
			v, err := value(word, inline, has)
			if err != nil {
				return options{}, err
			}
			if _, _, err := net.SplitHostPort(v); err != nil {
				return options{}, fmt.Errorf("%s %q: want HOST:PORT", word, v)
			}
			o.manager = v
		case "token-file":
			v, err := value(word, inline, has)
			if err != nil {
				return options{}, err
			}
			if v == "" {
				return options{}, fmt.Errorf("%s needs a file", word)
			}
			o.tokenFile = v
		default:
			n := mpirunValues[name]
			if n == 0 {
				o.mpirunFlags = append(o.mpirunFlags, word)
				continue
			}
			if has {
				if n > 1 {
					// --mca=k v: the first value is inline, the rest follow.
					if i+n-1 >= len(argv) {
						return options{}, fmt.Errorf("%s needs %d values", word, n)
					}
					o.mpirunFlags = append(o.mpirunFlags, word[:len(word)-len(inline)-1], inline)
					o.mpirunFlags = append(o.mpirunFlags, argv[i+1:i+n]...)
					i += n - 1
					continue
				}
				o.mpirunFlags = append(o.mpirunFlags, word[:len(word)-len(inline)-1], inline)
				continue
			}
			if i+n >= len(argv) {
				if n == 1 {
					return options{}, fmt.Errorf("%s needs a value", word)
				}
				return options{}, fmt.Errorf("%s needs %d values", word, n)
			}
			o.mpirunFlags = append(o.mpirunFlags, argv[i:i+n+1]...)
			i += n
		}
	}
	if i >= len(argv) {
		return options{}, errors.New("no program given (see ckptrun --help)")
	}
	if o.fresh && o.restartVersion != "" {
		return options{}, errors.New("--fresh and --restart-version contradict each other: --fresh restores nothing")
	}
	o.program = argv[i]
	o.args = append([]string{}, argv[i+1:]...)
	return o, nil
}

// jobName is the job the checkpoints belong to: --job, then $CKPT_JOB, then
// the base name of the program.
func (o options) jobName(env []string) string {
	if o.job != "" {
		return o.job
	}
	if j := lookupEnv(env, "CKPT_JOB"); j != "" {
		return j
	}
	return filepath.Base(o.program)
}

// passThrough reports whether the mpirun options contain any of names.
// It looks at option names only, not at values.
func (o options) passThrough(names map[string]bool) bool {
	for i := 0; i < len(o.mpirunFlags); i++ {
		name, _, has, ok := flagName(o.mpirunFlags[i])
		if !ok {
			continue
		}
		if names[name] {
			return true
		}
		if !has {
			i += mpirunValues[name]
		}
	}
	return false
}

// optionValues returns the values given to the mpirun option name (one
// value each).
func (o options) optionValues(name string) []string {
	var vals []string
	for i := 0; i < len(o.mpirunFlags); i++ {
		n, _, has, ok := flagName(o.mpirunFlags[i])
		if !ok || has {
			continue
		}
		if n == name && i+1 < len(o.mpirunFlags) {
			vals = append(vals, o.mpirunFlags[i+1])
		}
		i += mpirunValues[n]
	}
	return vals
}

// onHosts reports whether the job is placed on named hosts.
func (o options) onHosts() bool { return o.passThrough(hostOptions) }

// machine is what ckptrun knows about where it runs.
type machine struct {
	root bool // effective uid 0
	cpus int  // runtime.NumCPU()
}

// mpirunArgs returns mpirun's arguments for one attempt: the flags ckptrun
// adds, -np, the pass-through flags, one -x per CKPT_* variable in env, then
// the program and its arguments.
func mpirunArgs(o options, m machine, env []string) []string {
	var a []string
	if m.root && !o.passThrough(map[string]bool{"allow-run-as-root": true}) {
		a = append(a, "--allow-run-as-root")
	}
	if o.np > m.cpus && !o.oversubscribeSet() && !o.onHosts() {
		a = append(a, "--oversubscribe")
	}
	if o.np > 0 {
		a = append(a, "-np", strconv.Itoa(o.np))
	}
	a = append(a, o.mpirunFlags...)
	exported := map[string]bool{}
	for _, x := range o.optionValues("x") {
		name, _, _ := strings.Cut(x, "=")
		exported[name] = true
	}
	for _, name := range ckptNames(env) {
		if !exported[name] {
			a = append(a, "-x", name)
		}
	}
	a = append(a, o.program)
	return append(a, o.args...)
}

// oversubscribeSet reports whether the user already chose: --oversubscribe,
// --nooversubscribe, or a --map-by policy with an (NO)OVERSUBSCRIBE modifier.
func (o options) oversubscribeSet() bool {
	if o.passThrough(map[string]bool{"oversubscribe": true, "nooversubscribe": true}) {
		return true
	}
	for _, v := range o.optionValues("map-by") {
		if strings.Contains(strings.ToUpper(v), "OVERSUBSCRIBE") {
			return true
		}
	}
	return false
}

// ckptNames returns the sorted names of the CKPT_* variables in env.
func ckptNames(env []string) []string {
	var names []string
	seen := map[string]bool{}
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "CKPT_") && !seen[name] {
			seen[name] = true
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

// clusterEnv is how the job reaches its checkpoint cluster.
type clusterEnv struct {
	manager   string // host:port; "" = keep the inherited CKPT_MANAGER
	tokenFile string // set with manager: the local cluster's token file
	home      string // the local cluster's CKPT_HOME; "" = not local
}

// baseEnv prepares the environment shared by every attempt from ckptrun's
// own: the local cluster's address and token file when one was started
// (dropping an inherited CKPT_TOKEN, which would win over the file), and
// CKPT_HOME and the file settings (token, CA, encryption key) made
// absolute so that ranks started in another directory find them.
func baseEnv(env []string, c clusterEnv, abs func(string) (string, error)) []string {
	if c.manager != "" {
		env = setEnv(env, "CKPT_MANAGER", c.manager)
		env = setEnv(env, "CKPT_TOKEN_FILE", c.tokenFile)
		env = unsetEnv(env, "CKPT_TOKEN")
	}
	for _, name := range []string{"CKPT_HOME", "CKPT_TOKEN_FILE", "CKPT_TLS_CA", "CKPT_ENCRYPT_KEY_FILE"} {
		if v := lookupEnv(env, name); v != "" && !filepath.IsAbs(v) {
			if p, err := abs(v); err == nil {
				env = setEnv(env, name, p)
			}
		}
	}
	return env
}

// attemptEnv returns the job's environment for attempt n (0 = first
// launch): CKPT_JOB and CKPT_ATTEMPT always, CKPT_RESTART_VERSION only on
// attempt 0 and only when a version was asked for; a relaunch restores the
// latest committed version.
func attemptEnv(base []string, job, restartVersion string, n int) []string {
	env := setEnv(base, "CKPT_JOB", job)
	env = setEnv(env, "CKPT_ATTEMPT", strconv.Itoa(n))
	if restartVersion != "" {
		return setEnv(env, "CKPT_RESTART_VERSION", restartVersion)
	}
	return unsetEnv(env, "CKPT_RESTART_VERSION")
}

func lookupEnv(env []string, name string) string {
	v := ""
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == name {
			v = val // the last one wins, as with os/exec
		}
	}
	return v
}

// setEnv returns a copy of env with name set to value.
func setEnv(env []string, name, value string) []string {
	return append(unsetEnv(env, name), name+"="+value)
}

// unsetEnv returns a copy of env without name.
func unsetEnv(env []string, name string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); k != name {
			out = append(out, kv)
		}
	}
	return out
}

// shellQuote renders argv for a log line, quoting words a shell would split.
func shellQuote(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		if a != "" && strings.IndexFunc(a, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,+@%", r))
		}) < 0 {
			q[i] = a
			continue
		}
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}
