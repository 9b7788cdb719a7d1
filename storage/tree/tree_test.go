package tree

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ckptio/ckptio/storage/client"
	"github.com/ckptio/ckptio/storage/manifest"
	"github.com/ckptio/ckptio/storage/version"
	"github.com/ckptio/ckptio/storage/version/versiontest"
)

func writeRand(t *testing.T, p string, n int, seed int64, mode os.FileMode) {
	t.Helper()
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	if err := os.WriteFile(p, b, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

// sampleTree makes, under root/top: nested directories, an empty one
// with mode 0700, files of modes 0755, 0600 and 04755, a symlink, a
// dangling symlink, and fixed mtimes everywhere; and a FIFO, which a
// capture skips.
func sampleTree(t *testing.T, root string) {
	t.Helper()
	top := filepath.Join(root, "top")
	for _, d := range []string{"top/a/b", "top/empty"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(filepath.Join(top, "empty"), 0o700)
	writeRand(t, filepath.Join(top, "run.sh"), 5000, 1, 0o755)
	writeRand(t, filepath.Join(top, "a", "secret"), 70000, 2, 0o600)
	writeRand(t, filepath.Join(top, "a", "b", "suid"), 10, 3, os.ModeSetuid|0o755)
	writeRand(t, filepath.Join(top, "a", "b", "zero"), 0, 4, 0o644)
	os.Symlink("a/secret", filepath.Join(top, "link"))
	os.Symlink("/nowhere/at/all", filepath.Join(top, "a", "dangling"))
	if err := exec.Command("mkfifo", filepath.Join(top, "fifo")).Run(); err != nil {
		t.Fatal(err)
	}
	// mtimes, deepest first so directories keep theirs
	ts := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	for _, p := range []string{"top/a/b/suid", "top/a/b/zero", "top/a/secret", "top/run.sh", "top/a/b", "top/empty", "top/a", "top"} {
		ts = ts.Add(time.Hour + 17*time.Nanosecond)
		if err := os.Chtimes(filepath.Join(root, p), ts, ts); err != nil {
			t.Fatal(err)
		}
	}
}

// listing is what find says of every entry under dir/top: path, type,
// mode, mtime, size, symlink target (fifos excluded).
func listing(t *testing.T, dir string) string {
	t.Helper()
	cmd := exec.Command("find", "top", "-not", "-type", "p", "-printf", "%p %y %m %T@ %s %l\n")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("find: %v: %s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	// find prints in directory order; sort for a stable comparison
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

type env struct {
	cl  *versiontest.Cluster
	job *version.Job
}

func newEnv() *env {
	cl := versiontest.New(2)
	return &env{cl: cl, job: cl.Job("tree", client.WriterOptions{BlockSize: 4096, Replicas: 1})}
}

// capture writes paths under root as a new version and returns it with
// the scan's counts.
func (e *env) capture(t *testing.T, root string, paths []string, opts Options, edit func(*Scan)) (version.Committed, Counts) {
	t.Helper()
	ctx := context.Background()
	txn, err := e.job.Begin(ctx, version.Files, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Abort(ctx)
	var prev []manifest.File
	if p := txn.Previous(); p != nil {
		s, err := version.ParseSnapshot(p.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		prev = s.Manifest().Tree(opts.Rank)
	}
	s, err := ScanPaths(root, paths, prev, opts)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(s)
	}
	counts := s.Counts()
	w, err := e.job.NewWriter(ctx, txn.Previous(), version.Hints{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctx, w); err != nil {
		t.Fatal(err)
	}
	part, err := w.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c, err := txn.Commit(ctx, nil, part)
	if err != nil {
		t.Fatal(err)
	}
	return c, counts
}

func (e *env) tree(t *testing.T, v int64, rank int32) []manifest.File {
	t.Helper()
	s, err := e.job.Open(context.Background(), v)
	if err != nil {
		t.Fatal(err)
	}
	return s.Manifest().Tree(rank)
}

// TestRoundTrip: a tree with every kind of entry comes back exactly
// (find's path, type, mode, mtime, size and target), special files are
// skipped with a warning, and a second capture of the unchanged tree
// reads no file.
func TestRoundTrip(t *testing.T) {
	src := t.TempDir()
	sampleTree(t, src)
	e := newEnv()
	var warned []string
	opts := Options{Rank: -1, Warn: func(p, reason string) { warned = append(warned, p+": "+reason) }}
	c1, n1 := e.capture(t, src, []string{"top"}, opts, nil)
	if len(warned) != 1 || !strings.Contains(warned[0], "fifo: is a FIFO") {
		t.Fatalf("warnings %q", warned)
	}
	if n1.New != 4 || n1.Dirs != 4 || n1.Symlinks != 2 || n1.Skipped != 1 {
		t.Fatalf("first capture: %+v", n1)
	}
	dst := t.TempDir()
	files := e.tree(t, c1.Version, -1)
	if err := Extract(context.Background(), e.job.NewReader(), files, dst, ExtractOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, want := listing(t, dst), listing(t, src); got != want {
		t.Fatalf("extracted tree differs:\n got\n%s\nwant\n%s", got, want)
	}
	for _, f := range []string{"top/run.sh", "top/a/secret", "top/a/b/suid"} {
		a, _ := os.ReadFile(filepath.Join(src, f))
		b, _ := os.ReadFile(filepath.Join(dst, f))
		if !bytes.Equal(a, b) {
			t.Fatalf("%s differs", f)
		}
	}

	// Unchanged: referenced without reading (the sources are pointed at
	// nothing: a read would fail).
	c2, n2 := e.capture(t, src, []string{"top"}, opts, func(s *Scan) {
		for i := range s.Items {
			if s.Items[i].Prev != nil {
				s.Items[i].src = filepath.Join(src, "does-not-exist")
			}
		}
	})
	if n2.Unchanged != 4 || n2.New+n2.Changed != 0 || n2.ReadBytes != 0 || c2.SentBytes != 0 {
		t.Fatalf("second capture: %+v, sent %d", n2, c2.SentBytes)
	}
	// ForceRead reads everything, and still sends nothing new.
	_, n3 := e.capture(t, src, []string{"top"}, Options{Rank: -1, ForceRead: true}, nil)
	if n3.Unchanged != 4 || n3.ReadBytes != 75010 {
		t.Fatalf("forced capture: %+v", n3)
	}
}

// TestGrownFileSendsNewBlocks: a file that only grew is changed, and
// only the blocks past its old end (and its old partial last block) are
// sent.
func TestGrownFileSendsNewBlocks(t *testing.T) {
	src := t.TempDir()
	p := filepath.Join(src, "log")
	writeRand(t, p, 10*4096+100, 1, 0o644)
	e := newEnv()
	e.capture(t, src, []string{"log"}, Options{Rank: -1}, nil)
	f, _ := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	f.Write(bytes.Repeat([]byte("x"), 3*4096))
	f.Close()
	c, n := e.capture(t, src, []string{"log"}, Options{Rank: -1}, nil)
	if n.Changed != 1 {
		t.Fatalf("counts %+v", n)
	}
	// blocks 10 (was partial), 11, 12, 13: 4 blocks at most
	if c.SentBytes > 4*4096 || c.SentBytes == 0 {
		t.Fatalf("sent %d bytes for a file grown by 3 blocks", c.SentBytes)
	}
}

// TestExtractRefuses: existing files are not overwritten without asking
// (and nothing is written); names leading out and symlinks on the way
// out are refused.
func TestExtractRefuses(t *testing.T) {
	src := t.TempDir()
	sampleTree(t, src)
	e := newEnv()
	c, _ := e.capture(t, src, []string{"top"}, Options{Rank: -1}, nil)
	files := e.tree(t, c.Version, -1)
	ctx := context.Background()
	r := e.job.NewReader()

	dst := t.TempDir()
	os.MkdirAll(filepath.Join(dst, "top"), 0o755)
	os.WriteFile(filepath.Join(dst, "top", "run.sh"), []byte("mine"), 0o644)
	err := Extract(ctx, r, files, dst, ExtractOptions{})
	if !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "top/run.sh") {
		t.Fatalf("extract over an existing file: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "top", "run.sh")); string(b) != "mine" {
		t.Fatal("the existing file was changed")
	}
	if _, err := os.Lstat(filepath.Join(dst, "top", "a")); err == nil {
		t.Fatal("something was written before refusing")
	}
	if err := Extract(ctx, r, files, dst, ExtractOptions{Overwrite: true}); err != nil {
		t.Fatal(err)
	}

	// A symlink already at dst leading out: nothing is written through it.
	outside := t.TempDir()
	dst2 := t.TempDir()
	os.Symlink(outside, filepath.Join(dst2, "top"))
	onlyFiles := []manifest.File{}
	for _, f := range files {
		if f.Type == manifest.TypeFile {
			onlyFiles = append(onlyFiles, f)
		}
	}
	if err := Extract(ctx, r, onlyFiles, dst2, ExtractOptions{Overwrite: true}); err == nil {
		t.Fatal("extracted through a symlink leading out")
	}
	if des, _ := os.ReadDir(outside); len(des) != 0 {
		t.Fatalf("wrote outside: %v", des)
	}
	for _, bad := range []string{"../x", "/etc/x", "a/../../x", ".", "", "a/./b", "a//b"} {
		f := manifest.File{Entry: manifest.Entry{Object: bad, Type: manifest.TypeFile}}
		if err := Extract(ctx, r, []manifest.File{f}, t.TempDir(), ExtractOptions{}); err == nil {
			t.Fatalf("extracted %q", bad)
		}
	}
}

// TestRollback: after a capture, the live tree is changed every way a
// program can (append, rewrite, new files and directories, deletions,
// mode, symlink target); Rollback brings back exactly the captured tree,
// reading only what differs, and a second Rollback does nothing.
func TestRollback(t *testing.T) {
	live := t.TempDir()
	sampleTree(t, live)
	os.Remove(filepath.Join(live, "top", "fifo"))
	want := listing(t, live)
	e := newEnv()
	c, _ := e.capture(t, live, []string{"top", "later"}, Options{Rank: 3, AllowMissing: true}, nil)
	files := e.tree(t, c.Version, 3)

	top := filepath.Join(live, "top")
	f, _ := os.OpenFile(filepath.Join(top, "a", "secret"), os.O_APPEND|os.O_WRONLY, 0)
	f.Write([]byte("appended after the checkpoint\n"))
	f.Close()
	f, _ = os.OpenFile(filepath.Join(top, "run.sh"), os.O_WRONLY, 0)
	f.WriteAt([]byte("XXXX"), 4500)
	f.Close()
	os.WriteFile(filepath.Join(top, "new.txt"), []byte("new"), 0o644)
	os.MkdirAll(filepath.Join(top, "newdir", "deep"), 0o755)
	os.Remove(filepath.Join(top, "a", "b", "zero"))
	os.Chmod(filepath.Join(top, "a", "b", "suid"), 0o644)
	os.Remove(filepath.Join(top, "link"))
	os.Symlink("elsewhere", filepath.Join(top, "link"))
	os.RemoveAll(filepath.Join(top, "empty"))
	os.WriteFile(filepath.Join(top, "empty"), nil, 0o644) // a file where a directory was
	os.WriteFile(filepath.Join(live, "later"), []byte("not there at the checkpoint"), 0o644)

	n, err := Rollback(context.Background(), e.job.NewReader(), files, live, []string{"top", "later"})
	if err != nil {
		t.Fatal(err)
	}
	if got := listing(t, live); got != want {
		t.Fatalf("rolled back tree differs:\n got\n%s\nwant\n%s", got, want)
	}
	if _, err := os.Lstat(filepath.Join(live, "later")); err == nil {
		t.Fatal("a path created after the checkpoint survived the rollback")
	}
	if n.Truncated != 1 || n.ReadBytes > 3*4096 || n.Removed < 3 {
		t.Fatalf("rollback counts %+v", n)
	}
	n2, err := Rollback(context.Background(), e.job.NewReader(), files, live, []string{"top", "later"})
	if err != nil {
		t.Fatal(err)
	}
	if n2.Removed != 0 || n2.ReadBytes != 0 || n2.Truncated != 0 {
		t.Fatalf("second rollback did something: %+v", n2)
	}
	if got := listing(t, live); got != want {
		t.Fatalf("second rollback changed the tree:\n%s", got)
	}
}

// TestFreeze: a frozen scan captures the files as they were at the scan,
// whatever happens to them before Write.
func TestFreeze(t *testing.T) {
	src := t.TempDir()
	p := filepath.Join(src, "out.log")
	os.WriteFile(p, []byte("step 1\n"), 0o644)
	e := newEnv()
	ctx := context.Background()
	txn, _ := e.job.Begin(ctx, version.Files, nil)
	s, err := ScanPaths(src, []string{"out.log"}, nil, Options{Rank: -1})
	if err != nil {
		t.Fatal(err)
	}
	copied, _, err := s.Freeze(t.TempDir())
	if err != nil || copied > 7 {
		t.Fatalf("freeze: %d bytes, %v", copied, err)
	}
	f, _ := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	f.Write([]byte("step 2\n"))
	f.Close()
	w, _ := e.job.NewWriter(ctx, nil, version.Hints{})
	if err := s.Write(ctx, w); err != nil {
		t.Fatal(err)
	}
	part, _ := w.Close(ctx)
	c, err := txn.Commit(ctx, nil, part)
	if err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	if err := Extract(ctx, e.job.NewReader(), e.tree(t, c.Version, -1), dst, ExtractOptions{}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "out.log")); string(b) != "step 1\n" {
		t.Fatalf("captured %q, want the file as of the scan", b)
	}
}

func TestDiff(t *testing.T) {
	src := t.TempDir()
	sampleTree(t, src)
	os.Remove(filepath.Join(src, "top", "fifo"))
	e := newEnv()
	c1, _ := e.capture(t, src, []string{"top"}, Options{Rank: -1}, nil)
	f, _ := os.OpenFile(filepath.Join(src, "top", "a", "secret"), os.O_WRONLY, 0)
	f.WriteAt([]byte("changed"), 8192)
	f.Close()
	os.Remove(filepath.Join(src, "top", "run.sh"))
	os.WriteFile(filepath.Join(src, "top", "added"), []byte("hello"), 0o644)
	os.Chmod(filepath.Join(src, "top", "a", "b", "suid"), 0o755)
	c2, _ := e.capture(t, src, []string{"top"}, Options{Rank: -1}, nil)
	ch := Diff(e.tree(t, c1.Version, -1), e.tree(t, c2.Version, -1))
	got := map[string]Change{}
	for _, c := range ch {
		got[c.Path] = c
	}
	if c := got["top/a/secret"]; c.Kind != "changed" || c.ChangedBytes != 4096 {
		t.Fatalf("secret: %+v", c)
	}
	if c := got["top/run.sh"]; c.Kind != "removed" || c.OldSize != 5000 {
		t.Fatalf("run.sh: %+v", c)
	}
	if c := got["top/added"]; c.Kind != "added" || c.NewSize != 5 {
		t.Fatalf("added: %+v", c)
	}
	if c := got["top/a/b/suid"]; c.Kind != "changed" || strings.Join(c.What, ",") != "mode" {
		t.Fatalf("suid: %+v", c)
	}
}

// TestBackdatedRewriteIsSeen: a file rewritten in place with its size
// kept and its mtime set back (touch -d, tar -x) is still read again: its
// ctime moved, and programs cannot set ctime.
func TestBackdatedRewriteIsSeen(t *testing.T) {
	src := t.TempDir()
	p := filepath.Join(src, "state")
	writeRand(t, p, 3*4096, 1, 0o644)
	old := time.Date(2022, 1, 2, 3, 4, 5, 6, time.UTC)
	os.Chtimes(p, old, old)
	e := newEnv()
	c1, _ := e.capture(t, src, []string{"state"}, Options{Rank: -1}, nil)
	f, _ := os.OpenFile(p, os.O_WRONLY, 0)
	f.WriteAt([]byte("new bytes"), 5000)
	f.Close()
	if err := os.Chtimes(p, old, old); err != nil {
		t.Fatal(err)
	}
	c2, n := e.capture(t, src, []string{"state"}, Options{Rank: -1}, nil)
	if n.Changed != 1 || n.Unchanged != 0 || c2.SentBytes == 0 {
		t.Fatalf("back-dated rewrite: %+v, sent %d", n, c2.SentBytes)
	}
	if ch := Diff(e.tree(t, c1.Version, -1), e.tree(t, c2.Version, -1)); len(ch) != 1 || ch[0].ChangedBytes != 4096 {
		t.Fatalf("diff %+v", ch)
	}
}

// TestExclude: an excluded directory is neither entered nor recorded.
func TestExclude(t *testing.T) {
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "top", ".ckpt", "store-0"), 0o755)
	writeRand(t, filepath.Join(src, "top", ".ckpt", "store-0", "pack"), 100, 1, 0o644)
	writeRand(t, filepath.Join(src, "top", "keep"), 100, 2, 0o644)
	var warned []string
	s, err := ScanPaths(src, []string{"top"}, nil, Options{Rank: -1, Exclude: []string{filepath.Join(src, "top", ".ckpt")},
		Warn: func(p, reason string) { warned = append(warned, p+" "+reason) }})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, it := range s.Items {
		got = append(got, it.Object)
	}
	if !slices.Equal(got, []string{"top", "top/keep"}) || len(warned) != 1 || !strings.Contains(warned[0], "excluded") {
		t.Fatalf("items %q, warnings %q", got, warned)
	}
}

// TestLayout: an MPI version is shown as regions rank-NNNNN/REGION and
// protected files under rank-NNNNN/files/, without the list of protected
// paths; a region name with a slash is refused.
func TestLayout(t *testing.T) {
	blk := func(obj string, rank int32, off, n int64) manifest.Block {
		return manifest.Block{Object: obj, Rank: rank, Offset: off, Length: n, Codec: manifest.CodecRaw, StoredLength: n}
	}
	m := &manifest.Manifest{Job: "j", Version: 2, Kind: manifest.KindMPI, Created: time.Unix(100, 0),
		Blocks:  []manifest.Block{blk("grid", 1, 10, 5), blk("grid", 1, 0, 10), blk("ckpt:files", 1, 0, 3), blk("out/log", 1, 0, 4), blk("grid", 0, 0, 7)},
		Entries: []manifest.Entry{{Object: "out/log", Rank: 1, Type: manifest.TypeFile, Mode: 0o600}}}
	shown, err := Layout(m)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range shown {
		got = append(got, fmt.Sprintf("%s %d %v %o", s.Object, s.Size, s.Region, s.Mode))
	}
	want := []string{"rank-00000/grid 7 true 644", "rank-00001/files/out/log 4 false 600", "rank-00001/grid 15 true 644"}
	if !slices.Equal(got, want) {
		t.Fatalf("layout %q, want %q", got, want)
	}
	if b := shown[2].Blocks; b[0].Offset != 0 || b[1].Offset != 10 {
		t.Fatalf("region blocks out of order: %+v", b)
	}
	m.Blocks = append(m.Blocks, blk("a/b", 0, 0, 1))
	if _, err := Layout(m); err == nil || !strings.Contains(err.Error(), "not a safe file name") {
		t.Fatalf("unsafe region: %v", err)
	}
}

// TestProgressCountsReads: Options.Progress is told of every byte Write
// reads, which is Counts.ReadBytes; an unchanged file adds nothing.
func TestProgressCountsReads(t *testing.T) {
	src := t.TempDir()
	os.Mkdir(filepath.Join(src, "d"), 0o755)
	writeRand(t, filepath.Join(src, "a"), 10*4096+7, 1, 0o644)
	writeRand(t, filepath.Join(src, "d", "b"), 5000, 2, 0o644)
	e := newEnv()
	var read atomic.Int64
	opts := Options{Rank: -1, Progress: func(n int64) { read.Add(n) }}
	_, n := e.capture(t, src, []string{"a", "d"}, opts, nil)
	if n.ReadBytes != 10*4096+7+5000 || read.Load() != n.ReadBytes {
		t.Fatalf("progress told of %d bytes, counts %+v", read.Load(), n)
	}
	read.Store(0)
	writeRand(t, filepath.Join(src, "d", "b"), 6000, 3, 0o644)
	if _, n := e.capture(t, src, []string{"a", "d"}, opts, nil); n.Unchanged != 1 || read.Load() != 6000 {
		t.Fatalf("second capture: progress told of %d bytes, counts %+v", read.Load(), n)
	}
}
