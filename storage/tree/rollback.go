package tree

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/manifest"
)

// RollbackCounts tallies what a rollback did.
type RollbackCounts struct {
	Removed   int   // paths the version does not hold, removed
	Restored  int   // files, symlinks and directories written or fixed
	Unchanged int   // files whose stat matched
	Truncated int   // files cut back to the version's size
	ReadBytes int64 // bytes read from the stores
}

func (c RollbackCounts) String() string {
	return fmt.Sprintf("%d removed, %d restored (%d truncated, %s read), %d unchanged",
		c.Removed, c.Restored, c.Truncated, storage.FormatSize(c.ReadBytes), c.Unchanged)
}

// Rollback makes the live paths under root (the paths a capture was
// given, relative to root) hold exactly files, a version's tree: it
// removes what the version does not hold under them, restores what
// differs, and truncates what grew (package doc). A path in paths that
// the version does not hold at all is removed.
func Rollback(ctx context.Context, r Reader, files []manifest.File, root string, paths []string) (RollbackCounts, error) {
	var c RollbackCounts
	for _, p := range paths {
		if err := manifest.CheckPath(p); err != nil {
			return c, err
		}
	}
	want := make(map[string]*manifest.File, len(files))
	for i := range files {
		f := &files[i]
		if err := manifest.CheckPath(f.Object); err != nil {
			return c, fmt.Errorf("tree: refusing to roll back %q: %w", f.Object, err)
		}
		if !under(f.Object, paths) {
			return c, fmt.Errorf("tree: the version holds %q, which is under none of the paths rolled back (%s)", f.Object, strings.Join(paths, ", "))
		}
		want[f.Object] = f
	}
	rt, err := os.OpenRoot(root)
	if err != nil {
		return c, err
	}
	defer rt.Close()
	x := &extractor{root: rt, base: root, r: r}

	// What is there and should not be.
	var extra []string
	for _, p := range paths {
		err := walkLive(rt, p, func(name string, fi fs.FileInfo) bool {
			f := want[name]
			if f == nil || !sameType(f, fi) {
				extra = append(extra, name)
				return false // RemoveAll takes what it holds
			}
			return true
		})
		if err != nil {
			return c, err
		}
	}
	for i := len(extra) - 1; i >= 0; i-- {
		if err := rt.RemoveAll(extra[i]); err != nil {
			return c, fmt.Errorf("tree: rollback: removing %s: %w", extra[i], err)
		}
		c.Removed++
	}

	ordered := slices.Clone(files)
	slices.SortFunc(ordered, func(a, b manifest.File) int { return comparePaths(a.Object, b.Object) })
	for _, f := range ordered {
		if err := ctx.Err(); err != nil {
			return c, err
		}
		var err error
		switch f.Type {
		case manifest.TypeDir:
			_, statErr := rt.Lstat(f.Object)
			err = x.dir(f)
			if statErr != nil {
				c.Restored++
			}
		case manifest.TypeFile:
			err = x.rollFile(ctx, f, &c)
		}
		if err != nil {
			return c, fmt.Errorf("tree: rollback of %s: %w", f.Object, err)
		}
	}
	for _, f := range ordered {
		if f.Type != manifest.TypeSymlink {
			continue
		}
		if t, err := rt.Readlink(f.Object); err == nil && t == f.Target {
			continue
		}
		if err := x.symlink(f); err != nil {
			return c, fmt.Errorf("tree: rollback of %s: %w", f.Object, err)
		}
		c.Restored++
	}
	return c, x.finishDirs(ordered)
}

// under reports whether name is one of paths or inside one.
func under(name string, paths []string) bool {
	for _, p := range paths {
		if name == p || strings.HasPrefix(name, p+"/") {
			return true
		}
	}
	return false
}

func sameType(f *manifest.File, fi fs.FileInfo) bool {
	switch f.Type {
	case manifest.TypeDir:
		return fi.IsDir()
	case manifest.TypeFile:
		return fi.Mode().IsRegular()
	case manifest.TypeSymlink:
		return fi.Mode()&fs.ModeSymlink != 0
	}
	return false
}

// walkLive calls fn for name and, while fn returns true for a directory,
// for what it holds, parents first, without following symlinks. A name
// that does not exist is skipped.
func walkLive(rt *os.Root, name string, fn func(string, fs.FileInfo) bool) error {
	fi, err := rt.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !fn(name, fi) || !fi.IsDir() {
		return nil
	}
	d, err := rt.Open(name)
	if err != nil {
		return err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return err
	}
	slices.Sort(names)
	for _, n := range names {
		if err := walkLive(rt, path.Join(name, n), fn); err != nil {
			return err
		}
	}
	return nil
}

// rollFile makes the regular file at f's path hold f: in place, reading
// from the stores only the blocks whose bytes differ.
func (x *extractor) rollFile(ctx context.Context, f manifest.File, c *RollbackCounts) error {
	fi, err := x.root.Lstat(f.Object)
	if errors.Is(err, fs.ErrNotExist) {
		c.Restored++
		c.ReadBytes += f.Size
		return x.file(ctx, f)
	}
	if err != nil {
		return err
	}
	if unchanged(&f, fi) {
		c.Unchanged++
		return nil
	}
	fh, err := x.root.OpenFile(f.Object, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer fh.Close()
	size := fi.Size()
	var buf []byte
	for _, b := range f.Blocks {
		if b.Length == 0 {
			continue
		}
		if int64(cap(buf)) < b.Length {
			buf = make([]byte, b.Length)
		}
		cur := buf[:b.Length]
		if b.Offset+b.Length <= size {
			if _, err := fh.ReadAt(cur, b.Offset); err != nil && err != io.EOF {
				return err
			}
			if storage.Sum(cur) == b.Hash {
				continue
			}
		}
		if err := x.r.ReadBlockInto(ctx, b, cur); err != nil {
			return err
		}
		c.ReadBytes += b.Length
		if _, err := fh.WriteAt(cur, b.Offset); err != nil {
			return err
		}
	}
	if size > f.Size {
		c.Truncated++
	}
	if err := fh.Truncate(f.Size); err != nil {
		return err
	}
	if err := finish(fh, f.Mode); err != nil {
		return err
	}
	c.Restored++
	return setTimes(x.root, x.base, f)
}
