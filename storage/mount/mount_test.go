package mount_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/client"
	"github.com/ckptio/ckptio/storage/manager/managertest"
	"github.com/ckptio/ckptio/storage/manifest"
	"github.com/ckptio/ckptio/storage/mount"
	"github.com/ckptio/ckptio/storage/version"
)

// requireFUSE skips a test where this machine cannot mount: no
// /dev/fuse, or neither root nor fusermount.
func requireFUSE(t *testing.T) {
	t.Helper()
	if err := mount.Supported(); err != nil {
		t.Skip(err)
	}
}

const bs = 16 << 10 // small blocks: many of them in small files

type env struct {
	t   *testing.T
	cl  *managertest.Cluster
	cat *switchCatalog
	job *version.Job
}

// switchCatalog is the cluster's catalog, which a test can make
// unreachable.
type switchCatalog struct {
	*catalog.Client
	mu   sync.Mutex
	down bool
}

func (s *switchCatalog) setDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

func (s *switchCatalog) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return &catalog.UnreachableError{Addr: "test", Err: syscall.ECONNREFUSED}
	}
	return nil
}

func (s *switchCatalog) Begin(ctx context.Context, job string) (catalog.Txn, error) {
	if err := s.err(); err != nil {
		return catalog.Txn{}, err
	}
	return s.Client.Begin(ctx, job)
}

func (s *switchCatalog) Commit(ctx context.Context, id string, m []byte) (int64, error) {
	if err := s.err(); err != nil {
		return 0, err
	}
	return s.Client.Commit(ctx, id, m)
}

func newEnv(t *testing.T, o managertest.Options, w client.WriterOptions) *env {
	t.Helper()
	requireFUSE(t)
	cl := managertest.New(t, o)
	cat := &switchCatalog{Client: cl.Client}
	if w.BlockSize == 0 {
		w.BlockSize = bs
	}
	job := &version.Job{Name: "mnt", Catalog: cat, Pool: client.NewPool(cl.Client, cl.Dial, nil), Writer: w,
		Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))}
	return &env{t: t, cl: cl, cat: cat, job: job}
}

// mount mounts the job on a new directory; it is unmounted when the test
// ends.
func (e *env) mount(o mount.Options) (*mount.FS, string) {
	e.t.Helper()
	dir := e.t.TempDir()
	o.Job = e.job
	o.Lister = e.cat
	if o.Spool == "" {
		o.Spool = e.t.TempDir()
	}
	if o.Timeout == 0 {
		o.Timeout = 20 * time.Second
	}
	fsys, err := mount.New(context.Background(), dir, o)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		select {
		case <-fsys.Served():
		default:
			if err := fsys.Unmount(false); err != nil {
				e.t.Errorf("unmount: %v", err)
				mount.Detach(dir)
			}
		}
		fsys.Wait()
	})
	return fsys, dir
}

func randBytes(seed int64, n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

func writeFile(t *testing.T, path string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
}

func mustEqualFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes differ from the %d written (first difference at %d)", path, len(got), len(want), firstDiff(got, want))
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// manifestOf returns version v of the job (0: latest).
func (e *env) manifestOf(v int64) *manifest.Manifest {
	e.t.Helper()
	m, err := e.cl.Client.Manifest(context.Background(), e.job.Name, v)
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

// TestWriteCloseCommitsTree: files written with plain writes are a new
// version at each close, holding the whole tree (directories, symlinks,
// modes, times); versions/N and latest show it read-only; a remount
// starts from it.
func TestWriteCloseCommitsTree(t *testing.T) {
	e := newEnv(t, managertest.Options{}, client.WriterOptions{Replicas: 2})
	fsys, dir := e.mount(mount.Options{})
	big := randBytes(1, 20*bs+123)
	small := []byte("hello\n")
	if err := os.MkdirAll(filepath.Join(dir, "a", "b"), 0o750); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "a", "b", "big.bin"), big, 0o600)
	if v := fsys.Latest(); v != 1 {
		t.Fatalf("after the first close, latest is %d, want 1", v)
	}
	writeFile(t, filepath.Join(dir, "small.txt"), small, 0o644)
	writeFile(t, filepath.Join(dir, "empty"), nil, 0o644)
	if err := os.Symlink("a/b/big.bin", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	mtime := time.Date(2020, 1, 2, 3, 4, 5, 600, time.UTC)
	if err := os.Chtimes(filepath.Join(dir, "small.txt"), mtime, mtime); err != nil {
		t.Fatal(err)
	}
	if v := fsys.Latest(); v != 2 {
		t.Fatalf("after two files written and an empty one, latest is %d, want 2 (an empty file is a change of names)", v)
	}
	// Read back through the tree and through versions/.
	mustEqualFile(t, filepath.Join(dir, "a", "b", "big.bin"), big)
	mustEqualFile(t, filepath.Join(dir, "versions", "1", "a", "b", "big.bin"), big)
	mustEqualFile(t, filepath.Join(dir, "versions", "2", "a", "b", "big.bin"), big)
	mustEqualFile(t, filepath.Join(dir, "latest", "small.txt"), small)
	mustEqualFile(t, filepath.Join(dir, "empty"), nil)
	if _, err := os.Stat(filepath.Join(dir, "versions", "1", "small.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("version 1 holds small.txt, closed after it: %v", err)
	}
	if target, err := os.Readlink(filepath.Join(dir, "latest")); err != nil || target != "versions/2" {
		t.Fatalf("latest -> %q (%v), want versions/2", target, err)
	}
	st, err := os.Stat(filepath.Join(dir, "versions", "2", "a", "b", "big.bin"))
	if err != nil || st.Mode().Perm() != 0o600 || st.Size() != int64(len(big)) {
		t.Fatalf("big.bin in version 2: %v %v", st, err)
	}
	if st, err := os.Stat(filepath.Join(dir, "versions", "2", "a")); err != nil || !st.IsDir() || st.Mode().Perm() != 0o750 {
		t.Fatalf("a in version 2: %v %v", st, err)
	}
	names, err := os.ReadDir(filepath.Join(dir, "versions"))
	if err != nil || len(names) != 2 {
		t.Fatalf("versions/ lists %v (%v)", names, err)
	}

	// Unmount: the last version holds the empty file, the symlink and
	// small.txt's time.
	if err := fsys.Unmount(false); err != nil {
		t.Fatal(err)
	}
	if err := fsys.Wait(); err != nil {
		t.Fatal(err)
	}
	m := e.manifestOf(0)
	if m.Version != 3 {
		t.Fatalf("after unmount the latest version is %d, want 3 (the empty file, the symlink and the times)", m.Version)
	}
	tree := map[string]manifest.File{}
	for _, f := range m.Tree(-1) {
		tree[f.Object] = f
	}
	if e := tree["empty"]; e.Type != manifest.TypeFile || e.Size != 0 {
		t.Fatalf("empty: %+v", e)
	}
	if l := tree["link"]; l.Type != manifest.TypeSymlink || l.Target != "a/b/big.bin" {
		t.Fatalf("link: %+v", l)
	}
	if s := tree["small.txt"]; s.MTime != mtime.UnixNano() || s.Mode != 0o644 || s.Size != int64(len(small)) {
		t.Fatalf("small.txt: %+v", s)
	}
	if m.NewBytes != 0 {
		t.Fatalf("the last version stored %d new bytes; it changed only metadata", m.NewBytes)
	}

	// A new mount starts from the latest version.
	_, dir2 := e.mount(mount.Options{})
	mustEqualFile(t, filepath.Join(dir2, "a", "b", "big.bin"), big)
	if target, err := os.Readlink(filepath.Join(dir2, "link")); err != nil || target != "a/b/big.bin" {
		t.Fatalf("link after remount -> %q (%v)", target, err)
	}
	if st, err := os.Stat(filepath.Join(dir2, "small.txt")); err != nil || !st.ModTime().Equal(mtime) {
		t.Fatalf("small.txt after remount: %v %v", st, err)
	}
}

// TestOutOfOrderWrites: a header patched after the body streamed,
// pwrites anywhere, truncates and appends give the bytes a plain file
// would hold, in the tree and in the version; the streamed body is not
// sent twice.
func TestOutOfOrderWrites(t *testing.T) {
	e := newEnv(t, managertest.Options{}, client.WriterOptions{Replicas: 1})
	fsys, dir := e.mount(mount.Options{})

	// A body streamed in odd-sized writes, then its header patched.
	body := randBytes(2, 40*bs+777)
	f, err := os.Create(filepath.Join(dir, "ckpt.dat"))
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(body); off += 3000 {
		if _, err := f.Write(body[off:min(off+3000, len(body))]); err != nil {
			t.Fatal(err)
		}
	}
	header := []byte("HEADER: 40 blocks, all good")
	if _, err := f.WriteAt(header, 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	want := append([]byte(nil), body...)
	copy(want, header)
	mustEqualFile(t, filepath.Join(dir, "ckpt.dat"), want)
	mustEqualFile(t, filepath.Join(dir, "latest", "ckpt.dat"), want)
	if m := e.manifestOf(0); m.NewBytes > int64(len(body))+bs {
		t.Fatalf("the version stored %d new bytes for a %d-byte file: the streamed body was sent again", m.NewBytes, len(body))
	}

	// Random pwrites, truncates, appends and fsyncs against a model.
	rng := rand.New(rand.NewSource(3))
	path := filepath.Join(dir, "model.bin")
	f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	app, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	var model []byte
	for op := 0; op < 150; op++ {
		size := len(model)
		switch r := rng.Intn(10); {
		case r < 4: // pwrite anywhere, past the end too
			off := rng.Intn(size + 2*bs + 1)
			data := randBytes(int64(op), 1+rng.Intn(3*bs))
			if _, err := f.WriteAt(data, int64(off)); err != nil {
				t.Fatalf("op %d: pwrite at %d: %v", op, off, err)
			}
			if end := off + len(data); end > len(model) {
				model = append(model, make([]byte, end-len(model))...)
			}
			copy(model[off:], data)
		case r < 6: // append
			data := randBytes(int64(op), 1+rng.Intn(4*bs))
			if _, err := app.Write(data); err != nil {
				t.Fatalf("op %d: append: %v", op, err)
			}
			model = append(model, data...)
		case r < 7: // truncate down or up
			n := rng.Intn(size + bs + 1)
			if err := f.Truncate(int64(n)); err != nil {
				t.Fatalf("op %d: truncate to %d: %v", op, n, err)
			}
			if n <= len(model) {
				model = model[:n]
			} else {
				model = append(model, make([]byte, n-len(model))...)
			}
		case r < 8: // fsync: a version of the file as it is
			if err := f.Sync(); err != nil {
				t.Fatalf("op %d: fsync: %v", op, err)
			}
			v := fsys.Latest()
			mustEqualFile(t, filepath.Join(dir, "versions", strconv.FormatInt(v, 10), "model.bin"), model)
		default: // read a range back
			off := rng.Intn(size + 1)
			got := make([]byte, rng.Intn(3*bs)+1)
			n, err := f.ReadAt(got, int64(off))
			if err != nil && err != io.EOF {
				t.Fatalf("op %d: read at %d: %v", op, off, err)
			}
			if w := model[off:min(len(model), off+len(got))]; !bytes.Equal(got[:n], w) {
				t.Fatalf("op %d: read at %d: %d bytes differ from the model's %d", op, off, n, len(w))
			}
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	mustEqualFile(t, path, model)
	mustEqualFile(t, filepath.Join(dir, "latest", "model.bin"), model)
	mustEqualFile(t, filepath.Join(dir, "latest", "ckpt.dat"), want)
}

// TestRewriteStoresOnlyChanges: rewriting a file with a tenth of its
// blocks changed, whole (O_TRUNC) or in place, stores about a tenth.
func TestRewriteStoresOnlyChanges(t *testing.T) {
	e := newEnv(t, managertest.Options{}, client.WriterOptions{Replicas: 1})
	_, dir := e.mount(mount.Options{})
	data := randBytes(4, 100*bs)
	path := filepath.Join(dir, "state")
	writeFile(t, path, data, 0o644)
	changed := append([]byte(nil), data...)
	for i := 0; i < 10; i++ {
		copy(changed[(i*10+3)*bs:], randBytes(int64(10+i), bs))
	}
	writeFile(t, path, changed, 0o644)
	if m := e.manifestOf(0); m.NewBytes > 11*bs || m.NewBytes < 10*bs {
		t.Fatalf("whole rewrite with 10 of 100 blocks changed stored %d new bytes, want about %d", m.NewBytes, 10*bs)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	patch := randBytes(30, 100)
	for i := 0; i < 5; i++ {
		if _, err := f.WriteAt(patch, int64((i*20+7)*bs+500)); err != nil {
			t.Fatal(err)
		}
		copy(changed[(i*20+7)*bs+500:], patch)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if m := e.manifestOf(0); m.NewBytes > 5*bs {
		t.Fatalf("5 patches in place stored %d new bytes, want at most 5 blocks (%d)", m.NewBytes, 5*bs)
	}
	mustEqualFile(t, filepath.Join(dir, "latest", "state"), changed)
}

// TestNamespace: renames, removals and directories reach the version.
func TestNamespace(t *testing.T) {
	e := newEnv(t, managertest.Options{}, client.WriterOptions{Replicas: 1})
	fsys, dir := e.mount(mount.Options{})
	j := func(p ...string) string { return filepath.Join(append([]string{dir}, p...)...) }
	for _, d := range []string{"d1/sub", "d2", "gone"} {
		if err := os.MkdirAll(j(d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, j("d1", "sub", "f"), []byte("f"), 0o644)
	writeFile(t, j("g"), []byte("g"), 0o644)
	writeFile(t, j("h"), []byte("h"), 0o644)
	for _, mv := range [][2]string{{"d1/sub", "d2/sub"}, {"g", "d2/g"}, {"h", "d2/g"}} {
		if err := os.Rename(j(mv[0]), j(mv[1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(j("gone")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(j("d2"), j("versions")); !errors.Is(err, syscall.EEXIST) {
		t.Fatalf("rename onto versions: %v, want EEXIST", err)
	}
	if err := os.Mkdir(j("latest"), 0o755); !errors.Is(err, syscall.EEXIST) {
		t.Fatalf("mkdir latest: %v, want EEXIST", err)
	}
	if err := fsys.Unmount(false); err != nil {
		t.Fatal(err)
	}
	if err := fsys.Wait(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range e.manifestOf(0).Tree(-1) {
		got = append(got, string(f.Type)+" "+f.Object)
	}
	want := []string{"dir d1", "dir d2", "file d2/g", "dir d2/sub", "file d2/sub/f"}
	if !slices.Equal(got, want) {
		t.Fatalf("tree %q, want %q", got, want)
	}
}

// TestErrors: writes under versions/ are EROFS, a block no store holds
// is EIO, a full cluster is ENOSPC, an unreachable manager is EIO after
// the timeout, and a file whose commit failed is in the next version.
func TestErrors(t *testing.T) {
	e := newEnv(t, managertest.Options{Stores: 2}, client.WriterOptions{Replicas: 2})
	_, dir := e.mount(mount.Options{Timeout: time.Second})
	data := randBytes(5, 4*bs)
	writeFile(t, filepath.Join(dir, "f"), data, 0o644)
	v1 := filepath.Join(dir, "versions", "1")
	for what, err := range map[string]error{
		"create":  os.WriteFile(filepath.Join(v1, "new"), nil, 0o644),
		"mkdir":   os.Mkdir(filepath.Join(v1, "d"), 0o755),
		"remove":  os.Remove(filepath.Join(v1, "f")),
		"rename":  os.Rename(filepath.Join(dir, "f"), filepath.Join(v1, "g")),
		"chmod":   os.Chmod(filepath.Join(v1, "f"), 0o600),
		"open rw": openErr(filepath.Join(v1, "f"), os.O_RDWR),
		"mkdir v": os.Mkdir(filepath.Join(dir, "versions", "9"), 0o755),
	} {
		if !errors.Is(err, syscall.EROFS) {
			t.Errorf("%s under versions/: %v, want EROFS", what, err)
		}
	}

	// Lose one block everywhere: reading it is EIO.
	m := e.manifestOf(1)
	var lost storage.Hash
	for _, b := range m.Blocks {
		if b.Object == "f" && b.Offset == 2*bs {
			lost = b.Key
		}
	}
	for _, s := range e.cl.Stores {
		s.Delete(context.Background(), []storage.Hash{lost}, time.Time{})
	}
	if _, err := os.ReadFile(filepath.Join(v1, "f")); !errors.Is(err, syscall.EIO) {
		t.Fatalf("reading a lost block: %v, want EIO", err)
	}

	// The manager goes away: close fails with EIO after the timeout;
	// once it is back, the next version holds that file too.
	e.cat.setDown(true)
	start := time.Now()
	err := os.WriteFile(filepath.Join(dir, "while-down"), []byte("x"), 0o644)
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("close with the manager down: %v, want EIO", err)
	}
	if took := time.Since(start); took < time.Second || took > 15*time.Second {
		t.Fatalf("close with the manager down failed after %s; the timeout is 1s", took)
	}
	e.cat.setDown(false)
	writeFile(t, filepath.Join(dir, "after"), []byte("y"), 0o644)
	names := map[string]bool{}
	for _, f := range e.manifestOf(0).Tree(-1) {
		names[f.Object] = true
	}
	if !names["while-down"] || !names["after"] || names["f"] {
		t.Fatalf("after the manager came back the version holds %v; want while-down and after, not f (a block lost)", names)
	}
}

func openErr(path string, flag int) error {
	f, err := os.OpenFile(path, flag, 0)
	if err == nil {
		f.Close()
	}
	return err
}

// TestFullClusterIsENOSPC: a write the stores have no room for fails
// with ENOSPC, at the write or at the close.
func TestFullClusterIsENOSPC(t *testing.T) {
	e := newEnv(t, managertest.Options{Stores: 2, Quota: 4 * bs}, client.WriterOptions{Replicas: 1})
	_, dir := e.mount(mount.Options{})
	f, err := os.Create(filepath.Join(dir, "big"))
	if err != nil {
		t.Fatal(err)
	}
	data := randBytes(6, 64*bs)
	_, werr := f.Write(data)
	cerr := f.Close()
	if !errors.Is(werr, syscall.ENOSPC) && !errors.Is(cerr, syscall.ENOSPC) {
		t.Fatalf("writing 64 blocks to stores with room for 8: write %v, close %v; want ENOSPC", werr, cerr)
	}
}

// TestAsync: with Async a close returns before the commit; the version
// follows; a background failure is reported by the next operation and
// by the unmount.
func TestAsync(t *testing.T) {
	e := newEnv(t, managertest.Options{}, client.WriterOptions{Replicas: 1})
	fsys, dir := e.mount(mount.Options{Async: true, Timeout: time.Second})
	data := randBytes(7, 10*bs+1)
	writeFile(t, filepath.Join(dir, "a"), data, 0o644)
	waitFor(t, func() bool { return fsys.Latest() == 1 })
	mustEqualFile(t, filepath.Join(dir, "versions", "1", "a"), data)

	e.cat.setDown(true)
	writeFile(t, filepath.Join(dir, "b"), data[:bs/2], 0o644) // returns at once: no block to stream
	waitFor(t, func() bool {
		err := os.Mkdir(filepath.Join(dir, "probe"), 0o755)
		if err == nil {
			os.Remove(filepath.Join(dir, "probe"))
		}
		return errors.Is(err, syscall.EIO)
	})
	if err := fsys.Unmount(false); err != nil {
		t.Fatal(err)
	}
	if err := fsys.Wait(); err == nil {
		t.Fatal("unmount with the manager down and b not committed returned no error")
	}
}

// waitFor polls cond until it holds, failing the test after 20 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatal("condition not met within 20s")
		case <-tick.C:
		}
	}
}

// TestMPIVersionLayout: an MPI version shows under versions/N as 'ckpt
// restore' writes it: each rank's regions as rank-NNNNN/REGION, its
// protected files under rank-NNNNN/files/, and not the list of protected
// paths.
func TestMPIVersionLayout(t *testing.T) {
	e := newEnv(t, managertest.Options{}, client.WriterOptions{Replicas: 1})
	ctx := context.Background()
	region := randBytes(1, 3*bs+7)
	log := []byte("step 1\nstep 2\n")
	c, err := e.job.Write(ctx, version.MPI, nil, func(w *version.Writer) error {
		if _, err := w.WriteObject(ctx, "temperature", 0, bytes.NewReader(region)); err != nil {
			return err
		}
		if _, err := w.WriteObject(ctx, catalog.FilesListObject, 0, strings.NewReader(`{"paths":["run/out"]}`)); err != nil {
			return err
		}
		for _, en := range []manifest.Entry{
			{Object: "run/out", Rank: 0, Type: manifest.TypeDir, Mode: 0o755, MTime: 1},
			{Object: "run/out/heat-rank-0.log", Rank: 0, Type: manifest.TypeFile, Mode: 0o640, MTime: 2},
		} {
			if err := w.AddEntry(en); err != nil {
				return err
			}
		}
		_, err := w.WriteObject(ctx, "run/out/heat-rank-0.log", 0, bytes.NewReader(log))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	_, dir := e.mount(mount.Options{})
	v := filepath.Join(dir, "versions", fmt.Sprint(c.Version), "rank-00000")
	mustEqualFile(t, filepath.Join(v, "temperature"), region)
	mustEqualFile(t, filepath.Join(v, "files", "run", "out", "heat-rank-0.log"), log)
	if fi, err := os.Stat(filepath.Join(v, "files", "run", "out", "heat-rank-0.log")); err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("protected file: %v %v", fi, err)
	}
	des, err := os.ReadDir(v)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range des {
		names = append(names, d.Name())
	}
	if !slices.Equal(names, []string{"files", "temperature"}) {
		t.Fatalf("rank-00000 holds %q, want files and temperature", names)
	}
}
