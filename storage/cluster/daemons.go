package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// daemon is one process of the local cluster found on this machine.
type daemon struct {
	name string // "manager" or "store-N", as its pid file is named
	pid  int
}

// runDir holds one pid file per daemon, NAME.pid, written as soon as the
// process exists, before it listens, so that a command killed while
// starting the cluster leaves a record of what it started.
func runDir(home string) string { return filepath.Join(home, "run") }

func pidPath(home, name string) string { return filepath.Join(runDir(home), name+".pid") }

func writePid(home, name string, pid int) error {
	if err := os.MkdirAll(runDir(home), 0o700); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	tmp := pidPath(home, name) + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(pid)+"\n"), 0o600); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	return os.Rename(tmp, pidPath(home, name))
}

// ours reports whether pid is a live (not zombie) ckpt-manager or
// ckpt-store serving home: its command line names the binary and one of
// home's data directories. A pid reused by another process is not ours.
func ours(home string, pid int) (name string, ok bool) {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return "", false
	}
	proc := "/proc/" + strconv.Itoa(pid)
	if b, err := os.ReadFile(proc + "/stat"); err == nil {
		if i := bytes.LastIndexByte(b, ')'); i > 0 && len(b) > i+2 && b[i+2] == 'Z' {
			return "", false
		}
	}
	raw, err := os.ReadFile(proc + "/cmdline")
	if err != nil || len(raw) == 0 {
		return "", false
	}
	argv := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
	bin := filepath.Base(argv[0])
	for i := 1; i+1 < len(argv); i++ {
		switch {
		case bin == "ckpt-manager" && argv[i] == "--data" && argv[i+1] == filepath.Join(home, "manager"):
			return "manager", true
		case bin == "ckpt-store" && argv[i] == "--dir" && filepath.Dir(argv[i+1]) == home &&
			strings.HasPrefix(filepath.Base(argv[i+1]), "store-"):
			return filepath.Base(argv[i+1]), true
		}
	}
	return "", false
}

// Alive reports whether pid is a running daemon of the local cluster under
// home (not a zombie, not a reused pid).
func Alive(home string, pid int) bool {
	_, ok := ours(HomeDir(home), pid)
	return ok
}

// running returns the daemons of home that run now, found by their pid
// files and, for one started by a command killed before it wrote the
// file, by the process table. Sorted by name.
func running(home string) []daemon {
	seen := map[int]bool{}
	var ds []daemon
	add := func(pid int) {
		if seen[pid] {
			return
		}
		seen[pid] = true
		if name, ok := ours(home, pid); ok {
			ds = append(ds, daemon{name: name, pid: pid})
		}
	}
	files, _ := filepath.Glob(filepath.Join(runDir(home), "*.pid"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && perr == nil {
			add(pid)
		}
	}
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		if pid, err := strconv.Atoi(p.Name()); err == nil && pid != os.Getpid() {
			add(pid)
		}
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i].name < ds[j].name })
	return ds
}

// stopPids stops those of pids that are daemons of home: SIGTERM, then
// SIGKILL after 10s.
func stopPids(home string, pids []int) {
	for _, pid := range pids {
		if _, ok := ours(home, pid); ok {
			syscall.Kill(pid, syscall.SIGTERM)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range pids {
		for time.Now().Before(deadline) {
			if _, ok := ours(home, pid); !ok {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if _, ok := ours(home, pid); ok {
			syscall.Kill(pid, syscall.SIGKILL)
			for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
				if _, ok := ours(home, pid); !ok {
					break
				}
			}
		}
	}
}

// stopAll stops every daemon of home that runs (recorded or not) and
// removes the pid files and cluster.json. It returns what it stopped.
func stopAll(home string, recorded []int) []daemon {
	ds := running(home)
	pids := append([]int{}, recorded...)
	for _, d := range ds {
		pids = append(pids, d.pid)
	}
	stopPids(home, pids)
	files, _ := filepath.Glob(filepath.Join(runDir(home), "*.pid"))
	for _, f := range files {
		os.Remove(f)
	}
	os.Remove(filepath.Join(home, "cluster.json"))
	return ds
}

func pidList(ds []daemon) string {
	var s []string
	for _, d := range ds {
		s = append(s, fmt.Sprintf("%s pid %d", d.name, d.pid))
	}
	return strings.Join(s, ", ")
}

// lockWait is how long lock waits for another command to finish starting
// or stopping the cluster.
const lockWait = 60 * time.Second

// lock takes cluster.lock, an flock(2) lock, which the kernel releases
// when its holder dies: a lock file left by a killed command is never
// stale. The holder's pid is written into the file for the error message.
func lock(home string) (func(), error) {
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	path := filepath.Join(home, "cluster.lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	deadline := time.Now().Add(lockWait)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			holder, _ := os.ReadFile(path)
			f.Close()
			return nil, fmt.Errorf("cluster: %s is held by pid %s, another command starting or stopping the local cluster, for over %s: wait for it or stop it (%w)",
				path, orUnknown(strings.TrimSpace(string(holder))), lockWait, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return func() { f.Truncate(0); syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
