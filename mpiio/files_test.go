package mpiio_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ckptio/ckptio/collective"
	"github.com/ckptio/ckptio/mpiio"
	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/crypt"
	"github.com/ckptio/ckptio/storage/manager/managertest"
	"github.com/ckptio/ckptio/storage/manifest"
	"github.com/ckptio/ckptio/storage/memstore"
)

// Protected files (ProtectFiles), without mpirun: ranks are goroutines,
// each protecting files of its own.

// rankDirs makes one directory per rank, with its symlinks resolved.
func rankDirs(t *testing.T, n int) []string {
	t.Helper()
	dirs := make([]string, n)
	for i := range dirs {
		d, err := filepath.EvalSymlinks(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		dirs[i] = d
	}
	return dirs
}

// rel is p as a version names it: relative to "/".
func rel(p string) string { return strings.TrimPrefix(p, "/") }

// listTree describes everything under root: path, type, mode, size,
// mtime and a hash of the content.
func listTree(root string) (string, error) {
	var lines []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		sum := ""
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum = fmt.Sprintf("%x", sha256.Sum256(b))
		}
		lines = append(lines, fmt.Sprintf("%s %v %d %d %s", p, fi.Mode(), fi.Size(), fi.ModTime().UnixNano(), sum))
		return nil
	})
	return strings.Join(lines, "\n"), err
}

func appendTo(p, s string) error {
	f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(s)
	return errors.Join(err, f.Close())
}

// logLines is n numbered lines.
func logLines(from, n int) string {
	var b strings.Builder
	for i := from; i < from+n; i++ {
		fmt.Fprintf(&b, "step %d checksum %.17g\n", i, float64(i)/7)
	}
	return b.String()
}

// TestFilesInTheSameVersionAsRegions: each rank's protected files are
// entries of that rank in the version that holds its regions, a path
// that does not exist yet is recorded as protected, a grown log sends
// only its new blocks, and an unchanged tree sends nothing.
func TestFilesInTheSameVersionAsRegions(t *testing.T) {
	const ranks = 3
	cl := managertest.New(t, managertest.Options{Stores: 2})
	dirs := rankDirs(t, ranks)
	sent := make([][]int64, ranks)
	run(t, cl, ranks, mpiio.Config{Job: "files", Sync: true}, func(cp *mpiio.Checkpointer, c collective.Comm) error {
		ctx := context.Background()
		r := c.Rank()
		d := dirs[r]
		if err := os.WriteFile(filepath.Join(d, "out.log"), []byte(logLines(1, 300)), 0o644); err != nil {
			return err
		}
		if err := cp.Protect("f", field(r, 1)); err != nil {
			return err
		}
		if err := cp.ProtectFiles(d, d+".later"); err != nil {
			return err
		}
		if got := cp.ProtectedFiles(); !slices.Equal(got, []string{d, d + ".later"}) {
			return fmt.Errorf("protected %v", got)
		}
		for step := int64(1); step <= 3; step++ {
			if step == 2 {
				if err := appendTo(filepath.Join(d, "out.log"), logLines(301, 5)); err != nil {
					return err
				}
			}
			v, err := cp.Checkpoint(ctx, mpiio.Meta{Step: step})
			if err != nil || v != step {
				return fmt.Errorf("checkpoint %d: version %d, %v", step, v, err)
			}
			sent[r] = append(sent[r], cp.LastResult().SentBytes)
		}
		return nil
	})
	m, err := cl.Client.Manifest(context.Background(), "files", 1)
	if err != nil {
		t.Fatal(err)
	}
	for r := int32(0); r < ranks; r++ {
		var names []string
		for _, f := range m.Tree(r) {
			names = append(names, f.Object)
		}
		d := rel(dirs[r])
		if want := []string{d, d + "/out.log"}; !slices.Equal(names, want) {
			t.Fatalf("rank %d's tree in version 1: %v, want %v", r, names, want)
		}
		if len(m.BlocksOf("f", r)) == 0 || len(m.BlocksOf("ckpt:files", r)) != 1 {
			t.Fatalf("rank %d: region or list of protected paths missing from version 1", r)
		}
	}
	// Version 2: a 4 KiB block or two per rank and copy; version 3: none.
	for r := range sent {
		if sent[r][1] == 0 || sent[r][1] > 2*2*4096*ranks || sent[r][2] != 0 {
			t.Fatalf("rank %d saw sent bytes %v: want a few blocks for the grown log, then nothing", r, sent[r])
		}
	}
}

// TestAbortedCheckpointCommitsNeither: when one rank's files cannot be
// stored, the checkpoint fails on every rank naming it, and neither the
// regions nor the files of any rank are committed.
func TestAbortedCheckpointCommitsNeither(t *testing.T) {
	cl := managertest.New(t, managertest.Options{Stores: 2})
	dirs := rankDirs(t, 2)
	// Raw blocks, so a block's key is the hash of its bytes.
	bad := bytes.Repeat([]byte("rank 1's new state "), 150)
	run(t, cl, 2, mpiio.Config{Job: "abort", Sync: true, NoCompress: true}, func(cp *mpiio.Checkpointer, c collective.Comm) error {
		ctx := context.Background()
		r := c.Rank()
		state := filepath.Join(dirs[r], "state")
		if err := os.WriteFile(state, []byte("first"), 0o644); err != nil {
			return err
		}
		f := field(r, 1)
		cp.Protect("f", f)
		if err := cp.ProtectFiles(dirs[r]); err != nil {
			return err
		}
		if _, err := cp.Checkpoint(ctx, mpiio.Meta{Step: 1}); err != nil {
			return err
		}
		copy(f, field(r, 2))
		if r == 1 {
			if err := os.WriteFile(state, bad, 0o644); err != nil {
				return err
			}
		}
		c.Barrier()
		if r == 0 {
			for _, s := range cl.Stores {
				s.SetFaults(memstore.Faults{Put: func(h storage.Hash) error {
					if h == storage.Sum(bad) {
						return storage.ErrDiskFull
					}
					return nil
				}})
			}
		}
		c.Barrier()
		_, err := cp.Checkpoint(ctx, mpiio.Meta{Step: 2})
		if err == nil || !strings.Contains(err.Error(), "nothing committed") || !strings.Contains(err.Error(), "rank 1: protected files") ||
			strings.Contains(err.Error(), "rank 0:") {
			return fmt.Errorf("rank %d: checkpoint with rank 1's files refused: %v", r, err)
		}
		if v, _, err := cp.Latest(ctx); err != nil || v != 1 {
			return fmt.Errorf("latest after the failure: %d, %v; want 1", v, err)
		}
		c.Barrier()
		if r == 0 {
			for _, s := range cl.Stores {
				s.SetFaults(memstore.Faults{})
			}
		}
		c.Barrier()
		if v, err := cp.Checkpoint(ctx, mpiio.Meta{Step: 3}); err != nil || v != 2 {
			return fmt.Errorf("checkpoint after the stores recovered: %d, %v", v, err)
		}
		return nil
	})
	vs, err := cl.Client.Versions(context.Background(), "abort")
	if err != nil || len(vs) != 2 || vs[1].Meta[catalog.MetaStep] != "3" {
		t.Fatalf("versions %+v, %v; want steps 1 and 3", vs, err)
	}
	for v, want := range map[int64]int64{1: 5, 2: int64(len(bad))} {
		m, err := cl.Client.Manifest(context.Background(), "abort", v)
		if err != nil {
			t.Fatal(err)
		}
		if got := m.Tree(1)[1].Size; got != want {
			t.Fatalf("version %d holds rank 1's state of %d bytes, want %d", v, got, want)
		}
	}
}

// gatedCatalog holds every Begin until gate is closed: a checkpoint's
// background part waits for the test.
type gatedCatalog struct {
	mpiio.Catalog
	gate chan struct{}
}

func (g *gatedCatalog) Begin(ctx context.Context, job string) (catalog.Txn, error) {
	select {
	case <-g.gate:
	case <-ctx.Done():
		return catalog.Txn{}, ctx.Err()
	}
	return g.Catalog.Begin(ctx, job)
}

// TestAsyncCapturesFilesAsOfTheCall: an asynchronous checkpoint holds the
// files as they were when Checkpoint returned, though the program changes
// them (rewrites, a new file, a mode) before the version is begun; the
// staging copies are gone once it ends.
func TestAsyncCapturesFilesAsOfTheCall(t *testing.T) {
	const ranks = 2
	cl := managertest.New(t, managertest.Options{Stores: 2})
	dirs := rankDirs(t, ranks)
	stage := t.TempDir()
	gate := &gatedCatalog{Catalog: cl.Client, gate: make(chan struct{})}
	run(t, cl, ranks, mpiio.Config{Job: "async-files", StagingDir: stage, Catalog: gate}, func(cp *mpiio.Checkpointer, c collective.Comm) error {
		ctx := context.Background()
		r := c.Rank()
		log := filepath.Join(dirs[r], "out.log")
		if err := os.WriteFile(log, []byte(logLines(1, 100)), 0o644); err != nil {
			return err
		}
		cp.Protect("f", field(r, 1))
		if err := cp.ProtectFiles(dirs[r]); err != nil {
			return err
		}
		if v, err := cp.Checkpoint(ctx, mpiio.Meta{Step: 1}); err != nil || v != 0 {
			return fmt.Errorf("asynchronous checkpoint: %d, %v", v, err)
		}
		// The version is not begun yet: the program moves on, rewriting
		// the start of the log in place and appending to it.
		if err := appendTo(log, logLines(101, 10)); err != nil {
			return err
		}
		if err := os.WriteFile(log, []byte("REWRITTEN"), 0o644); err != nil {
			return err
		}
		if err := os.Chmod(log, 0o600); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dirs[r], "new.txt"), []byte("after"), 0o644); err != nil {
			return err
		}
		c.Barrier()
		if r == 0 {
			close(gate.gate)
		}
		if v, err := cp.Wait(ctx); err != nil || v != 1 {
			return fmt.Errorf("Wait: %d, %v", v, err)
		}
		c.Barrier()
		if des, err := os.ReadDir(stage); err != nil || len(des) != 0 {
			return fmt.Errorf("staging directory after the checkpoint: %v, %v; want empty", des, err)
		}
		rd, err := cp.OpenReader(ctx, 1, r, rel(log))
		if err != nil {
			return err
		}
		got, err := io.ReadAll(rd)
		rd.Close()
		if err != nil || string(got) != logLines(1, 100) {
			return fmt.Errorf("rank %d: version 1 holds %d bytes of the log (%v), want the %d of the call", r, len(got), err, len(logLines(1, 100)))
		}
		return nil
	})
	m, err := cl.Client.Manifest(context.Background(), "async-files", 1)
	if err != nil {
		t.Fatal(err)
	}
	for r := int32(0); r < ranks; r++ {
		tr := m.Tree(r)
		if len(tr) != 2 || tr[1].Object != rel(dirs[r])+"/out.log" || tr[1].Mode != 0o644 {
			t.Fatalf("rank %d's tree in version 1: %+v; want the directory and the log of mode 0644, not new.txt", r, tr)
		}
	}
}

// TestResumeRollsBackFiles: a relaunched job's Resume rolls every rank's
// protected files back to the version: a new file, directory and a path
// that did not exist then are removed, appended output is truncated,
// changed contents and modes come back; the next checkpoint then sends
// nothing. Resuming a version that did not protect the files is refused
// on every rank with nothing touched.
func TestResumeRollsBackFiles(t *testing.T) {
	const ranks = 2
	cl := managertest.New(t, managertest.Options{Stores: 2})
	dirs := rankDirs(t, ranks)
	want := make([]string, ranks)
	cfg := mpiio.Config{Job: "rollback", Sync: true}
	protect := func(cp *mpiio.Checkpointer, r int) ([]float64, error) {
		f := make([]float64, len(field(r, 0)))
		cp.Protect("f", f)
		return f, cp.ProtectFiles(dirs[r], dirs[r]+".later")
	}
	run(t, cl, ranks, cfg, func(cp *mpiio.Checkpointer, c collective.Comm) error {
		r := c.Rank()
		d := dirs[r]
		if err := os.MkdirAll(filepath.Join(d, "sub"), 0o755); err != nil {
			return err
		}
		for name, data := range map[string]string{"out.log": logLines(1, 400), "conf": "alpha", "sub/x": "x"} {
			if err := os.WriteFile(filepath.Join(d, name), []byte(data), 0o644); err != nil {
				return err
			}
		}
		f, err := protect(cp, r)
		if err != nil {
			return err
		}
		copy(f, field(r, 1))
		if _, err := cp.Checkpoint(context.Background(), mpiio.Meta{Step: 1}); err != nil {
			return err
		}
		if want[r], err = listTree(d); err != nil {
			return err
		}
		// The run goes on, then fails.
		copy(f, field(r, 2))
		if err := appendTo(filepath.Join(d, "out.log"), logLines(401, 30)); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(d, "conf"), []byte("beta, longer"), 0o644); err != nil {
			return err
		}
		for _, err := range []error{
			os.Chmod(filepath.Join(d, "conf"), 0o600),
			os.WriteFile(filepath.Join(d, "new.txt"), []byte("new"), 0o644),
			os.MkdirAll(filepath.Join(d, "newdir", "deep"), 0o755),
			os.WriteFile(d+".later", []byte("not there at the checkpoint"), 0o644),
		} {
			if err != nil {
				return err
			}
		}
		return nil
	})
	run(t, cl, ranks, cfg, func(cp *mpiio.Checkpointer, c collective.Comm) error {
		ctx := context.Background()
		r := c.Rank()
		f, err := protect(cp, r)
		if err != nil {
			return err
		}
		if v, ok, err := cp.Resume(ctx); err != nil || !ok || v != 1 {
			return fmt.Errorf("resume: %d, %v, %v", v, ok, err)
		}
		if !slices.Equal(f, field(r, 1)) {
			return fmt.Errorf("rank %d: regions not restored", r)
		}
		got, err := listTree(dirs[r])
		if err != nil {
			return err
		}
		if got != want[r] {
			return fmt.Errorf("rank %d: rolled back tree\n%s\nwant\n%s", r, got, want[r])
		}
		if _, err := os.Lstat(dirs[r] + ".later"); !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("rank %d: a protected path made after the version survived the rollback: %v", r, err)
		}
		if _, err := cp.Checkpoint(ctx, mpiio.Meta{Step: 2}); err != nil {
			return err
		}
		if res := cp.LastResult(); res.SentBytes != 0 {
			return fmt.Errorf("rank %d: the checkpoint after the rollback sent %d bytes; want none (all referenced)", r, res.SentBytes)
		}
		return nil
	})

	// A version written without protected files cannot say what they held.
	cfg.Job = "nofiles"
	run(t, cl, ranks, cfg, func(cp *mpiio.Checkpointer, c collective.Comm) error {
		cp.Protect("f", field(c.Rank(), 1))
		_, err := cp.Checkpoint(context.Background(), mpiio.Meta{Step: 1})
		return err
	})
	run(t, cl, ranks, cfg, func(cp *mpiio.Checkpointer, c collective.Comm) error {
		r := c.Rank()
		f, err := protect(cp, r)
		if err != nil {
			return err
		}
		before, _ := listTree(dirs[r])
		_, _, err = cp.Resume(context.Background())
		if err == nil || !strings.Contains(err.Error(), "refused, nothing touched") || !strings.Contains(err.Error(), "holds no protected files of rank") {
			return fmt.Errorf("rank %d: resume of a version without files: %v", r, err)
		}
		if after, _ := listTree(dirs[r]); after != before || slices.ContainsFunc(f, func(x float64) bool { return x != 0 }) {
			return fmt.Errorf("rank %d: a refused restore touched the files or regions", r)
		}
		return nil
	})
}

// TestTwoRanksProtectingOnePathAreRefused: the one-owner rule is checked
// before a version begins.
func TestTwoRanksProtectingOnePathAreRefused(t *testing.T) {
	cl := managertest.New(t, managertest.Options{})
	shared := rankDirs(t, 1)[0]
	run(t, cl, 2, mpiio.Config{Job: "owners", Sync: true}, func(cp *mpiio.Checkpointer, c collective.Comm) error {
		p := shared
		if c.Rank() == 1 {
			p = filepath.Join(shared, "rank-1.log")
		}
		if err := cp.ProtectFiles(p); err != nil {
			return err
		}
		_, err := cp.Checkpoint(context.Background(), mpiio.Meta{Step: 1})
		if err == nil || !strings.Contains(err.Error(), "protected by one rank only") || !strings.Contains(err.Error(), "rank 1 protects "+p) {
			return fmt.Errorf("rank %d: two ranks protecting one directory: %v", c.Rank(), err)
		}
		return nil
	})
	if vs, err := cl.Client.Versions(context.Background(), "owners"); len(vs) != 0 {
		t.Fatalf("versions %+v, %v; want none", vs, err)
	}
}

// TestStagingFailureCheckpointsSynchronously: when the changed files
// cannot be copied for an asynchronous checkpoint (here the staging
// directory is a file), the rank checkpoints synchronously instead of
// failing, and the version holds the files.
func TestStagingFailureCheckpointsSynchronously(t *testing.T) {
	cl := managertest.New(t, managertest.Options{Stores: 2})
	dirs := rankDirs(t, 2)
	notDir := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(notDir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, cl, 2, mpiio.Config{Job: "nostage", StagingDir: notDir}, func(cp *mpiio.Checkpointer, c collective.Comm) error {
		ctx := context.Background()
		r := c.Rank()
		if err := os.WriteFile(filepath.Join(dirs[r], "out"), []byte(logLines(1, 10)), 0o644); err != nil {
			return err
		}
		cp.Protect("f", field(r, 1))
		if err := cp.ProtectFiles(dirs[r]); err != nil {
			return err
		}
		if v, err := cp.Checkpoint(ctx, mpiio.Meta{Step: 1}); err != nil || v != 1 {
			return fmt.Errorf("rank %d: checkpoint without a usable staging directory: %d, %v; want version 1 at once", r, v, err)
		}
		rd, err := cp.OpenReader(ctx, 1, r, rel(filepath.Join(dirs[r], "out")))
		if err != nil {
			return err
		}
		defer rd.Close()
		if got, err := io.ReadAll(rd); err != nil || string(got) != logLines(1, 10) {
			return fmt.Errorf("rank %d: version 1 holds %q, %v", r, got, err)
		}
		return nil
	})
}

// TestEncryptedFiles: with a key, the blocks of protected files are
// sealed like the regions', a rollback reads them back, and the restored
// tree's blocks are reused by the next checkpoint (same key).
func TestEncryptedFiles(t *testing.T) {
	cl := managertest.New(t, managertest.Options{Stores: 2})
	dirs := rankDirs(t, 2)
	keyFile := filepath.Join(t.TempDir(), "job.key")
	if _, err := crypt.NewKeyFile(keyFile); err != nil {
		t.Fatal(err)
	}
	cfg := mpiio.Config{Job: "enc-files", Sync: true, EncryptKeyFile: keyFile}
	run(t, cl, 2, cfg, func(cp *mpiio.Checkpointer, c collective.Comm) error {
		r := c.Rank()
		p := filepath.Join(dirs[r], "out.log")
		if err := os.WriteFile(p, []byte(logLines(1, 200)), 0o644); err != nil {
			return err
		}
		cp.Protect("f", field(r, 1))
		if err := cp.ProtectFiles(dirs[r]); err != nil {
			return err
		}
		if _, err := cp.Checkpoint(context.Background(), mpiio.Meta{Step: 1}); err != nil {
			return err
		}
		return appendTo(p, logLines(201, 50))
	})
	m, err := cl.Client.Manifest(context.Background(), "enc-files", 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range m.Blocks {
		if b.Length > 0 && b.Codec != manifest.CodecAESGCM && b.Codec != manifest.CodecLZ4AESGCM {
			t.Fatalf("rank %d object %q offset %d stored %q", b.Rank, b.Object, b.Offset, b.Codec)
		}
	}
	run(t, cl, 2, cfg, func(cp *mpiio.Checkpointer, c collective.Comm) error {
		ctx := context.Background()
		r := c.Rank()
		cp.Protect("f", make([]float64, len(field(r, 1))))
		if err := cp.ProtectFiles(dirs[r]); err != nil {
			return err
		}
		if _, _, err := cp.Resume(ctx); err != nil {
			return err
		}
		if b, err := os.ReadFile(filepath.Join(dirs[r], "out.log")); err != nil || string(b) != logLines(1, 200) {
			return fmt.Errorf("rank %d: rolled back log of %d bytes, %v", r, len(b), err)
		}
		if _, err := cp.Checkpoint(ctx, mpiio.Meta{Step: 2}); err != nil {
			return err
		}
		if sent := cp.LastResult().SentBytes; sent != 0 {
			return fmt.Errorf("rank %d: the checkpoint after the rollback sent %d bytes, want none", r, sent)
		}
		return nil
	})
}
