package main_test

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ckptio/ckptio/storage/cluster/clustertest"
	"github.com/ckptio/ckptio/storage/mount"
)

// requireMountTools skips where FUSE mounts or the tools a test drives
// are missing.
func requireMountTools(t *testing.T, tools ...string) {
	t.Helper()
	if err := mount.Supported(); err != nil {
		t.Skip(err)
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
}

// mountProc is a running 'ckpt mount'.
type mountProc struct {
	cmd  *exec.Cmd
	dir  string
	mu   sync.Mutex
	errb strings.Builder
	done chan error
}

func (m *mountProc) stderr() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.errb.String()
}

type lockedWriter struct{ m *mountProc }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.m.mu.Lock()
	defer w.m.mu.Unlock()
	return w.m.errb.Write(p)
}

// startMount runs 'ckpt mount JOB DIR args...' and waits for its
// "mounted" line. The mount is removed when the test ends.
func startMount(t *testing.T, c *clustertest.Cluster, job, dir string, args ...string) *mountProc {
	t.Helper()
	cmd := exec.Command(filepath.Join(c.Bin, "ckpt"), append([]string{"mount", job, dir, "--timeout", "30s"}, args...)...)
	cmd.Env = append(c.Env(), "CKPT_HOME="+t.TempDir())
	m := &mountProc{cmd: cmd, dir: dir, done: make(chan error, 1)}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = lockedWriter{m}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	mounted := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "mounted ") {
				mounted <- true
			}
		}
		m.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-m.done
		}
		exec.Command(filepath.Join(c.Bin, "ckpt"), "umount", "--lazy", dir).Run()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	select {
	case <-mounted:
		return m
	case err := <-m.done:
		t.Fatalf("ckpt mount exited before mounting (%v):\n%s", err, m.stderr())
	case <-ctx.Done():
		t.Fatalf("ckpt mount did not say it mounted within 30s:\n%s", m.stderr())
	}
	return nil
}

// umount runs 'ckpt umount' and waits for the mount process to exit 0.
func (m *mountProc) umount(t *testing.T, c *clustertest.Cluster) {
	t.Helper()
	if _, errOut, code := c.Run(t, "", nil, "ckpt", "umount", m.dir); code != 0 {
		t.Fatalf("ckpt umount: %s\nmount's log:\n%s", errOut, m.stderr())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	select {
	case err := <-m.done:
		if err != nil {
			t.Fatalf("ckpt mount exited with %v:\n%s", err, m.stderr())
		}
	case <-ctx.Done():
		t.Fatalf("ckpt mount still runs 30s after umount:\n%s", m.stderr())
	}
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// headerScript writes a file as many checkpoint writers do: a
// placeholder header, the body in pieces, then the real header patched
// in at offset 0 once the body's size is known.
const headerScript = `
import os, sys, random
path, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(7)
with open(path, "wb") as f:
    f.write(b"\0" * 64)
    total = 0
    while total < n:
        k = min(rng.randint(1, 200000), n - total)
        f.write(rng.randbytes(k))
        total += k
    f.seek(0)
    f.write(("CKPT %d bytes" % total).encode().ljust(64, b" "))
    f.seek(0, 2)
    f.write(b"END")
`

// TestMountWithOrdinaryTools: cp, dd with seeks into an existing file,
// tar -x of nested directories and a Python writer that patches its
// header write through a real mount process to real daemons; the bytes
// read back under versions/ and with 'ckpt get' are the originals.
func TestMountWithOrdinaryTools(t *testing.T) {
	requireMountTools(t, "cp", "dd", "tar", "python3")
	c := clustertest.NewCluster(t, clustertest.Options{Stores: 3})
	work, mnt := t.TempDir(), t.TempDir()
	m := startMount(t, c, "tools", mnt)

	want := map[string][]byte{}
	// cp of a multi-MiB random file.
	want["big.bin"] = writeRandom(t, filepath.Join(work, "big.bin"), 6<<20+12345, 1)
	run(t, "cp", filepath.Join(work, "big.bin"), filepath.Join(mnt, "big.bin"))

	// dd writes a file, then patches it in place at block-sized seeks.
	src := writeRandom(t, filepath.Join(work, "dd.src"), 2<<20, 2)
	patch := writeRandom(t, filepath.Join(work, "dd.patch"), 3*4096, 3)
	run(t, "dd", "if="+filepath.Join(work, "dd.src"), "of="+filepath.Join(mnt, "dd.bin"), "bs=64k", "status=none")
	run(t, "dd", "if="+filepath.Join(work, "dd.patch"), "of="+filepath.Join(mnt, "dd.bin"), "bs=4k", "seek=37", "conv=notrunc", "status=none")
	run(t, "dd", "if="+filepath.Join(work, "dd.patch"), "of="+filepath.Join(mnt, "dd.bin"), "bs=4k", "seek=400", "count=1", "conv=notrunc", "status=none")
	run(t, "dd", "if="+filepath.Join(work, "dd.patch"), "of="+filepath.Join(mnt, "dd.bin"), "bs=4k", "seek=700", "count=1", "conv=notrunc", "status=none")
	dd := append([]byte(nil), src...)
	copy(dd[37*4096:], patch)
	copy(dd[400*4096:], patch[:4096])
	dd = append(dd, make([]byte, 700*4096-len(dd))...) // a hole, then the last patch
	dd = append(dd, patch[:4096]...)
	want["dd.bin"] = dd

	// tar -x of nested directories, a symlink and modes.
	tarball := filepath.Join(work, "t.tar")
	tarFiles := writeTarball(t, tarball)
	if err := os.Mkdir(filepath.Join(mnt, "tree"), 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, "tar", "-xf", tarball, "-C", filepath.Join(mnt, "tree"))
	for name, data := range tarFiles {
		want["tree/"+name] = data
	}

	// A Python writer patching its header at the end.
	pyPath := filepath.Join(mnt, "py.bin")
	run(t, "python3", "-c", headerScript, pyPath, "3000000")
	run(t, "python3", "-c", headerScript, filepath.Join(work, "py.bin"), "3000000")
	py, err := os.ReadFile(filepath.Join(work, "py.bin"))
	if err != nil {
		t.Fatal(err)
	}
	want["py.bin"] = py

	// Everything reads back through the tree and versions/.
	for name, data := range want {
		mustEqual(t, filepath.Join(mnt, name), data)
		mustEqual(t, filepath.Join(mnt, "latest", name), data)
	}
	if target, err := os.Readlink(filepath.Join(mnt, "tree", "link")); err != nil || target != "a/b/c.txt" {
		t.Fatalf("tree/link -> %q (%v)", target, err)
	}
	if st, err := os.Stat(filepath.Join(mnt, "latest", "tree", "a", "run.sh")); err != nil || st.Mode().Perm() != 0o755 {
		t.Fatalf("tree/a/run.sh under latest: %v %v", st, err)
	}
	if err := os.WriteFile(filepath.Join(mnt, "latest", "nope"), nil, 0o644); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("writing under latest/: %v, want a read-only file system", err)
	}
	m.umount(t, c)

	// ckpt get writes the same tree back.
	out := filepath.Join(t.TempDir(), "out")
	if _, errOut, code := c.Run(t, "", nil, "ckpt", "get", "tools", "--to", out); code != 0 {
		t.Fatalf("ckpt get: %s", errOut)
	}
	for name, data := range want {
		mustEqual(t, filepath.Join(out, name), data)
	}
	if target, err := os.Readlink(filepath.Join(out, "tree", "link")); err != nil || target != "a/b/c.txt" {
		t.Fatalf("tree/link after get -> %q (%v)", target, err)
	}
	if st, err := os.Stat(filepath.Join(out, "tree", "a", "empty-dir")); err != nil || !st.IsDir() {
		t.Fatalf("tree/a/empty-dir after get: %v %v", st, err)
	}
	if st, err := os.Stat(filepath.Join(out, "tree", "a", "run.sh")); err != nil || st.Mode().Perm() != 0o755 {
		t.Fatalf("tree/a/run.sh after get: %v %v", st, err)
	}
}

// writeTarball writes a tarball of nested directories and returns its
// regular files by name.
func writeTarball(t *testing.T, path string) map[string][]byte {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	files := map[string][]byte{}
	mtime := time.Date(2021, 6, 7, 8, 9, 10, 0, time.UTC)
	add := func(h *tar.Header, data []byte) {
		h.ModTime = mtime
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if data != nil {
			tw.Write(data)
			files[h.Name] = data
		}
	}
	for _, d := range []string{"a/", "a/b/", "a/b/deep/", "a/empty-dir/"} {
		add(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755}, nil)
	}
	for i, name := range []string{"a/b/c.txt", "a/b/deep/d.bin", "a/top.dat", "z.txt"} {
		data := bytes.Repeat([]byte(name+"\n"), 1+i*5000)
		add(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data))}, data)
	}
	script := []byte("#!/bin/sh\necho hi\n")
	add(&tar.Header{Name: "a/run.sh", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(script))}, script)
	add(&tar.Header{Name: "link", Typeflag: tar.TypeSymlink, Linkname: "a/b/c.txt", Mode: 0o777}, nil)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return files
}

func mustEqual(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes, not the %d written", path, len(got), len(want))
	}
}

// simScript is a program that checkpoints its state to a file and can
// restart from one: 'sim.py CKPT STEPS [RESTART]' runs to STEPS,
// checkpointing every 10 steps, and prints its final state's digest.
const simScript = `
import hashlib, struct, sys
ckpt, steps = sys.argv[1], int(sys.argv[2])
M = (1 << 61) - 1
state, step = [i * 7919 % M for i in range(20000)], 0
if len(sys.argv) > 3:
    with open(sys.argv[3], "rb") as f:
        magic, step, n = struct.unpack("<8sqq", f.read(24))
        assert magic == b"SIMCKPT1", magic
        state = list(struct.unpack("<%dq" % n, f.read(8 * n)))
while step < steps:
    state = [(x * 6364136223846793005 + step + i) % M for i, x in enumerate(state)]
    step += 1
    if step % 10 == 0:
        with open(ckpt, "wb") as f:
            f.write(b"\0" * 24)
            f.write(struct.pack("<%dq" % len(state), *state))
            f.seek(0)
            f.write(struct.pack("<8sqq", b"SIMCKPT1", step, len(state)))
print(hashlib.sha256(struct.pack("<%dq" % len(state), *state)).hexdigest())
`

// TestRestartFromMountedCheckpoint: a program that writes its checkpoint
// into the mount, stopped halfway and restarted from the file read back
// under latest/, ends with the state of a run that never stopped.
func TestRestartFromMountedCheckpoint(t *testing.T) {
	requireMountTools(t, "python3")
	c := clustertest.NewCluster(t, clustertest.Options{Stores: 2})
	mnt := t.TempDir()
	m := startMount(t, c, "sim", mnt, "--async")
	sim := func(args ...string) string {
		out, err := exec.Command("python3", append([]string{"-c", simScript}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("sim %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	straight := sim(filepath.Join(t.TempDir(), "ckpt"), "40")
	sim(filepath.Join(mnt, "ckpt.dat"), "20")
	m.umount(t, c) // the last asynchronous commit is done
	m = startMount(t, c, "sim", mnt)
	restarted := sim(filepath.Join(t.TempDir(), "ckpt"), "40", filepath.Join(mnt, "latest", "ckpt.dat"))
	if restarted != straight {
		t.Fatalf("restarted from the mounted checkpoint: %s; straight run: %s", restarted, straight)
	}
	st, err := os.Stat(filepath.Join(mnt, "ckpt.dat"))
	if err != nil || st.Mode().Type() != 0 || st.Mode().Perm()&fs.FileMode(0o600) != 0o600 {
		t.Fatalf("ckpt.dat in the remounted tree: %v %v", st, err)
	}
	m.umount(t, c)
}

// TestStopMount: SIGTERM unmounts cleanly with the last commit; a mount
// whose process was killed is still removed by 'ckpt umount'; umount
// of a directory that is not a ckpt mount says so.
func TestStopMount(t *testing.T) {
	requireMountTools(t)
	c := clustertest.NewCluster(t, clustertest.Options{Stores: 2})
	mnt := t.TempDir()
	m := startMount(t, c, "stop", mnt)
	data := writeRandom(t, filepath.Join(mnt, "a"), 100000, 9)
	if err := os.Mkdir(filepath.Join(mnt, "d"), 0o755); err != nil { // committed at the unmount
		t.Fatal(err)
	}
	m.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-m.done; err != nil {
		t.Fatalf("ckpt mount after SIGTERM: %v\n%s", err, m.stderr())
	}
	if _, mounted, _ := mount.Mounted(mnt); mounted {
		t.Fatal("still mounted after SIGTERM")
	}
	out := filepath.Join(t.TempDir(), "out")
	if _, errOut, code := c.Run(t, "", nil, "ckpt", "get", "stop", "--to", out); code != 0 {
		t.Fatalf("ckpt get: %s", errOut)
	}
	mustEqual(t, filepath.Join(out, "a"), data)
	if st, err := os.Stat(filepath.Join(out, "d")); err != nil || !st.IsDir() {
		t.Fatalf("the directory made before SIGTERM: %v %v", st, err)
	}

	m = startMount(t, c, "stop", mnt)
	m.cmd.Process.Kill()
	<-m.done
	if _, errOut, code := c.Run(t, "", nil, "ckpt", "umount", mnt); code != 0 || !strings.Contains(errOut, "is gone") {
		t.Fatalf("ckpt umount of a dead mount: code %d, %s", code, errOut)
	}
	if _, mounted, _ := mount.Mounted(mnt); mounted {
		t.Fatal("a dead mount is still mounted after ckpt umount")
	}
	if _, errOut, code := c.Run(t, "", nil, "ckpt", "umount", mnt); code == 0 || !strings.Contains(errOut, "is not a ckpt mount") {
		t.Fatalf("ckpt umount of a plain directory: code %d, %s", code, errOut)
	}
}
