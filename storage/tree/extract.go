package tree

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/ckptio/ckptio/storage/manifest"
)

// Reader reads a version's blocks, verifying each; *version.Reader and
// *client.Reader are ones.
type Reader interface {
	ReadBlockInto(ctx context.Context, b manifest.Block, dst []byte) error
	ReadObject(ctx context.Context, blocks []manifest.Block, w io.WriterAt) error
}

// ExtractOptions control Extract.
type ExtractOptions struct {
	// Overwrite replaces what already exists at an entry's path (a file,
	// a symlink, or a directory when the entry is not one). Without it,
	// Extract refuses before it writes anything.
	Overwrite bool
	// Progress, if set, is told of every file written and its size.
	Progress func(path string, size int64)
}

// ErrExists is wrapped by Extract's error when paths exist and
// ExtractOptions.Overwrite is not set.
var ErrExists = errors.New("exist already")

// Extract writes files (manifest.Tree) under dir, which it creates if
// needed. No name leads outside dir (package doc). On an error, files
// already written stay, each complete; none is left half-written under
// its name.
func Extract(ctx context.Context, r Reader, files []manifest.File, dir string, opts ExtractOptions) error {
	for _, f := range files {
		if err := manifest.CheckPath(f.Object); err != nil {
			return fmt.Errorf("tree: refusing to extract %q: %w", f.Object, err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	if !opts.Overwrite {
		var exist []string
		for _, f := range files {
			fi, err := root.Lstat(f.Object)
			if err == nil && !(f.Type == manifest.TypeDir && fi.IsDir()) {
				exist = append(exist, f.Object)
			}
		}
		if len(exist) > 0 {
			more := ""
			if len(exist) > 5 {
				more = fmt.Sprintf(" and %d more", len(exist)-5)
				exist = exist[:5]
			}
			return fmt.Errorf("%s%s %w under %s; nothing was written", strings.Join(exist, ", "), more, ErrExists, dir)
		}
	}
	x := &extractor{root: root, base: dir, r: r}
	ordered := slices.Clone(files)
	slices.SortFunc(ordered, func(a, b manifest.File) int { return comparePaths(a.Object, b.Object) })
	// Directories first, then files (several at once: each is fsynced),
	// symlinks last, so that no symlink the tree holds is ever on the way
	// to something written.
	for _, f := range ordered {
		if f.Type == manifest.TypeDir {
			if err := x.dir(f); err != nil {
				return fmt.Errorf("tree: extracting %s: %w", f.Object, err)
			}
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(extractParallel)
	var progress sync.Mutex
	for _, f := range ordered {
		switch f.Type {
		case manifest.TypeDir, manifest.TypeSymlink:
			continue
		case manifest.TypeFile:
		default:
			return fmt.Errorf("tree: extracting %s: unknown type %q", f.Object, f.Type)
		}
		g.Go(func() error {
			if err := x.file(gctx, f); err != nil {
				return fmt.Errorf("tree: extracting %s: %w", f.Object, err)
			}
			if opts.Progress != nil {
				progress.Lock()
				opts.Progress(f.Object, f.Size)
				progress.Unlock()
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for _, f := range ordered {
		if f.Type == manifest.TypeSymlink {
			if err := x.symlink(f); err != nil {
				return fmt.Errorf("tree: extracting %s: %w", f.Object, err)
			}
		}
	}
	return x.finishDirs(ordered)
}

// extractParallel is how many files Extract writes at once: each waits
// for its fsync, and for its blocks (themselves read ReadParallel at a
// time).
const extractParallel = 8

type extractor struct {
	root   *os.Root
	base   string // root's name, for lutimes
	r      Reader
	mkdirs sync.Mutex // parents made for files, which are written in parallel
}

// clear removes what is at name unless it is already what keep accepts.
func (x *extractor) clear(name string, keep func(fs.FileInfo) bool) error {
	fi, err := x.root.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if keep != nil && keep(fi) {
		return nil
	}
	return x.root.RemoveAll(name)
}

func (x *extractor) parents(name string) error {
	if d := path.Dir(name); d != "." {
		x.mkdirs.Lock()
		defer x.mkdirs.Unlock()
		return x.root.MkdirAll(d, 0o755)
	}
	return nil
}

func (x *extractor) dir(f manifest.File) error {
	if err := x.parents(f.Object); err != nil {
		return err
	}
	if err := x.clear(f.Object, fs.FileInfo.IsDir); err != nil {
		return err
	}
	// Owner-writable until finishDirs sets the stored mode, so that
	// what the directory holds can be written into it.
	err := x.root.Mkdir(f.Object, 0o700)
	if errors.Is(err, fs.ErrExist) {
		err = x.root.Chmod(f.Object, 0o700|fileMode(f.Mode))
	}
	return err
}

func (x *extractor) file(ctx context.Context, f manifest.File) error {
	if err := x.parents(f.Object); err != nil {
		return err
	}
	tmpName := path.Join(path.Dir(f.Object), fmt.Sprintf(".%s.ckpt-%d", path.Base(f.Object), time.Now().UnixNano()))
	tmp, err := x.root.OpenFile(tmpName, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			x.root.Remove(tmpName)
		}
	}()
	if err := tmp.Truncate(f.Size); err != nil {
		return err
	}
	if err := x.r.ReadObject(ctx, f.Blocks, tmp); err != nil {
		return err
	}
	if err := finish(tmp, f.Mode); err != nil {
		return err
	}
	if err := x.clear(f.Object, func(fi fs.FileInfo) bool { return !fi.IsDir() }); err != nil {
		return err
	}
	if err := x.root.Rename(tmpName, f.Object); err != nil {
		return err
	}
	ok = true
	return setTimes(x.root, x.base, f)
}

// finish gives a written file its mode, makes it durable and closes it.
func finish(fh *os.File, mode uint32) error {
	if err := fh.Chmod(fileMode(mode)); err != nil {
		return err
	}
	if err := fh.Sync(); err != nil {
		return err
	}
	return fh.Close()
}

func (x *extractor) symlink(f manifest.File) error {
	if err := x.parents(f.Object); err != nil {
		return err
	}
	if err := x.clear(f.Object, nil); err != nil {
		return err
	}
	if err := x.root.Symlink(f.Target, f.Object); err != nil {
		return err
	}
	return setTimes(x.root, x.base, f)
}

// finishDirs sets the directories' modes and mtimes, deepest first, after
// everything inside them is written.
func (x *extractor) finishDirs(ordered []manifest.File) error {
	for i := len(ordered) - 1; i >= 0; i-- {
		f := ordered[i]
		if f.Type != manifest.TypeDir {
			continue
		}
		if err := x.root.Chmod(f.Object, fileMode(f.Mode)); err != nil {
			return fmt.Errorf("tree: extracting %s: %w", f.Object, err)
		}
		if err := setTimes(x.root, x.base, f); err != nil {
			return fmt.Errorf("tree: extracting %s: %w", f.Object, err)
		}
	}
	return nil
}

// setTimes sets f's mtime (and atime to it) on what is at its path,
// without following a symlink. An unknown mtime (0) is left as it is.
func setTimes(root *os.Root, dir string, f manifest.File) error {
	if f.MTime == 0 {
		return nil
	}
	if f.Type != manifest.TypeSymlink {
		t := time.Unix(0, f.MTime)
		return root.Chtimes(f.Object, t, t)
	}
	// os.Root has no lutimes. The symlink was just made under parents
	// made or checked through root; its path is resolved again here but
	// the last element is not followed.
	if fi, err := root.Lstat(f.Object); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		return fmt.Errorf("symlink vanished before its mtime was set")
	}
	ts := unix.NsecToTimespec(f.MTime)
	return unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(dir, filepath.FromSlash(f.Object)), []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
}
