package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// restic drives the backup tool against a repository in the work
// directory.
type restic struct {
	bin     string
	version string
	env     []string
	repo    string
}

// findRestic returns restic, installing Debian's package when it is
// missing and this runs as root. The note says why it is unavailable.
func findRestic(ctx context.Context) (path, note string) {
	if p, err := exec.LookPath("restic"); err == nil {
		return p, ""
	}
	if os.Geteuid() != 0 {
		return "", "restic is not installed and this is not root: install it (Debian: apt-get install restic) to compare with it"
	}
	fmt.Println("  restic not found: installing Debian's package restic")
	env := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if _, err := capture(ctx, 5*time.Minute, env, "apt-get", "install", "-y", "-qq", "restic"); err != nil {
		if _, err := capture(ctx, 5*time.Minute, env, "apt-get", "update", "-qq"); err != nil {
			return "", "restic could not be installed: " + err.Error()
		}
		if _, err := capture(ctx, 5*time.Minute, env, "apt-get", "install", "-y", "-qq", "restic"); err != nil {
			return "", "restic could not be installed: " + err.Error()
		}
	}
	if p, err := exec.LookPath("restic"); err == nil {
		return p, ""
	}
	return "", "restic is still missing after apt-get install restic"
}

func newRestic(ctx context.Context, bin, work string) (*restic, error) {
	r := &restic{bin: bin, repo: filepath.Join(work, "restic-repo")}
	r.env = append(os.Environ(), "RESTIC_PASSWORD=ckptio-bench", "RESTIC_REPOSITORY="+r.repo,
		"RESTIC_CACHE_DIR="+filepath.Join(work, "restic-cache"), "RESTIC_PROGRESS_FPS=0.2")
	out, err := capture(ctx, time.Minute, r.env, bin, "version")
	if err != nil {
		return nil, err
	}
	r.version = strings.TrimSpace(string(out))
	if _, err := capture(ctx, 2*time.Minute, r.env, bin, "init"); err != nil {
		return nil, err
	}
	return r, nil
}

// backup backs dir up and returns the snapshot and the wall time.
func (r *restic) backup(ctx context.Context, timeout time.Duration, dir string) (string, float64, error) {
	t0 := time.Now()
	out, err := capture(ctx, timeout, r.env, r.bin, "backup", "--json", "--host", "bench", dir)
	took := time.Since(t0).Seconds()
	if err != nil {
		return "", 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		var m struct {
			Type     string `json:"message_type"`
			Snapshot string `json:"snapshot_id"`
		}
		if json.Unmarshal(sc.Bytes(), &m) == nil && m.Type == "summary" && m.Snapshot != "" {
			return m.Snapshot, took, nil
		}
	}
	return "", took, fmt.Errorf("restic backup printed no summary")
}

// restore restores snapshot under target and returns the wall time.
func (r *restic) restore(ctx context.Context, timeout time.Duration, snapshot, target string) (float64, error) {
	t0 := time.Now()
	_, err := capture(ctx, timeout, r.env, r.bin, "restore", snapshot, "--target", target)
	return time.Since(t0).Seconds(), err
}

// size is the repository's size on disk.
func (r *restic) size() int64 { return du(r.repo) }

// du is the space the files under root take on disk.
func du(root string) int64 {
	var n int64
	filepath.WalkDir(root, func(_ string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			if info, err := e.Info(); err == nil {
				n += diskBytes(info)
			}
		}
		return nil
	})
	return n
}
