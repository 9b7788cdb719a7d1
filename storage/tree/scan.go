package tree

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ckptio/ckptio/storage/manifest"
)

// Options control a capture.
type Options struct {
	Rank int32 // the entries' rank: -1 for 'ckpt put', the owner's for an MPI job
	// ForceRead reads every file, even those whose stat matches the
	// previous version.
	ForceRead bool
	// AllowMissing lets a path given to ScanPaths not exist: the version
	// then holds nothing for it (and a rollback to it removes it).
	AllowMissing bool
	// Exclude lists directories (absolute, clean) the walk does not
	// enter nor record, with a warning: the local cluster's own data
	// under a tree being put, say.
	Exclude []string
	// Warn is told of what the capture skips (special files, files that
	// vanished while it walked); nil = silent.
	Warn func(path, reason string)
	// Progress, if set, is told of the bytes Write reads from files as it
	// reads them (Counts.ReadBytes in all, plus blocks re-read), from
	// Write's goroutine; nil = not told.
	Progress func(n int64)
}

// Item is one file, directory or symlink a Scan found.
type Item struct {
	manifest.Entry
	Size int64
	// Prev is the previous version's file when this one is unchanged:
	// Write references its blocks instead of reading.
	Prev *manifest.File
	src  string // where Write reads the data: the file, or its frozen copy
	// same: the stat matches the previous version's (Prev is nil only
	// under ForceRead); known: the previous version holds a file here.
	same, known bool
}

// Scan is a tree as found on disk, ready to be written into a version.
type Scan struct {
	Items    []Item
	Skipped  int    // special files and files that vanished
	root     string // directory the names are relative to
	frozen   string // Freeze's directory; "" = none
	progress func(n int64)
}

// Counts tallies a scan: regular files by what changed since the
// previous version (by their stat: under ForceRead an unchanged file is
// counted unchanged although it is read), and the other entries.
type Counts struct {
	New, Changed, Unchanged int
	Dirs, Symlinks, Skipped int
	Bytes                   int64 // logical bytes of the files
	ReadBytes               int64 // bytes of the files Write reads (new and changed)
}

func (c Counts) String() string {
	return fmt.Sprintf("%s (%d new, %d changed, %d unchanged), %s, %s",
		plural(c.New+c.Changed+c.Unchanged, "file"), c.New, c.Changed, c.Unchanged, plural(c.Dirs, "directory"), plural(c.Symlinks, "symlink"))
}

func plural(n int, what string) string {
	switch {
	case n == 1:
		return "1 " + what
	case strings.HasSuffix(what, "y"):
		return fmt.Sprintf("%d %sies", n, what[:len(what)-1])
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// ScanPaths walks paths (clean, slash-separated, relative to root; a
// directory is walked recursively) without following symlinks and
// compares every regular file with prev, the previous version's tree for
// opts.Rank (manifest.Tree). A path that does not exist is an error;
// a file that vanishes during the walk is skipped with a warning.
func ScanPaths(root string, paths []string, prev []manifest.File, opts Options) (*Scan, error) {
	s := &Scan{root: root, progress: opts.Progress}
	byPath := make(map[string]*manifest.File, len(prev))
	for i := range prev {
		byPath[prev[i].Object] = &prev[i]
	}
	seen := map[string]bool{}
	warn := func(p, reason string) {
		s.Skipped++
		if opts.Warn != nil {
			opts.Warn(p, reason)
		}
	}
	// gone reports whether err says the file at disk vanished during the
	// walk, which skips it with a warning.
	gone := func(disk string, err error) bool {
		if errors.Is(err, fs.ErrNotExist) {
			warn(disk, "vanished while scanned")
			return true
		}
		return false
	}
	var walk func(name string, fi os.FileInfo) error
	walk = func(name string, fi os.FileInfo) error {
		if seen[name] {
			return nil
		}
		seen[name] = true
		disk := filepath.Join(root, filepath.FromSlash(name))
		st := statOf(fi)
		e := manifest.Entry{Object: name, Rank: opts.Rank, Mode: entryMode(fi.Mode()), MTime: st.mtime, CTime: st.ctime, Inode: st.inode}
		switch {
		case fi.Mode().IsRegular():
			e.Type = manifest.TypeFile
			p := byPath[name]
			it := Item{Entry: e, Size: fi.Size(), src: disk, same: unchanged(p, fi), known: p != nil && p.Type == manifest.TypeFile}
			if it.same && !opts.ForceRead {
				it.Prev = p
			}
			s.Items = append(s.Items, it)
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(disk)
			if gone(disk, err) {
				return nil
			} else if err != nil {
				return err
			}
			if target == "" {
				warn(disk, "symlink with an empty target")
				return nil
			}
			e.Type, e.Target = manifest.TypeSymlink, target
			s.Items = append(s.Items, Item{Entry: e})
		case fi.IsDir() && excluded(disk, opts.Exclude):
			warn(disk, "is excluded (the local cluster's data): skipped")
		case fi.IsDir():
			e.Type = manifest.TypeDir
			s.Items = append(s.Items, Item{Entry: e})
			des, err := os.ReadDir(disk)
			if gone(disk, err) {
				return nil
			} else if err != nil {
				return err
			}
			for _, de := range des {
				child := path.Join(name, de.Name())
				if err := manifest.CheckPath(child); err != nil {
					warn(filepath.Join(disk, de.Name()), err.Error())
					continue
				}
				cfi, err := de.Info()
				if gone(filepath.Join(disk, de.Name()), err) {
					continue
				} else if err != nil {
					return err
				}
				if err := walk(child, cfi); err != nil {
					return err
				}
			}
		default:
			warn(disk, fmt.Sprintf("is a %s, not a file, directory or symlink: skipped", kindOf(fi.Mode())))
		}
		return nil
	}
	for _, p := range paths {
		if err := manifest.CheckPath(p); err != nil {
			return nil, err
		}
		disk := filepath.Join(root, filepath.FromSlash(p))
		fi, err := os.Lstat(disk)
		if opts.AllowMissing && errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if err := walk(p, fi); err != nil {
			return nil, err
		}
	}
	// Parents first: Extract and Rollback rely on it.
	slices.SortFunc(s.Items, func(a, b Item) int { return comparePaths(a.Object, b.Object) })
	return s, nil
}

// excluded reports whether the directory at disk is one of dirs.
func excluded(disk string, dirs []string) bool {
	if len(dirs) == 0 {
		return false
	}
	abs, err := filepath.Abs(disk)
	if err != nil {
		return false
	}
	return slices.Contains(dirs, abs)
}

// comparePaths orders paths so that a directory comes right before what
// it holds.
func comparePaths(a, b string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		ca, cb := a[i], b[i]
		if ca == cb {
			continue
		}
		if ca == '/' {
			return -1
		}
		if cb == '/' {
			return 1
		}
		if ca < cb {
			return -1
		}
		return 1
	}
	return len(a) - len(b)
}

func kindOf(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "FIFO"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "device"
	}
	return "special file"
}

// Counts tallies the scan.
func (s *Scan) Counts() Counts {
	c := Counts{Skipped: s.Skipped}
	for _, it := range s.Items {
		switch it.Type {
		case manifest.TypeDir:
			c.Dirs++
		case manifest.TypeSymlink:
			c.Symlinks++
		case manifest.TypeFile:
			c.Bytes += it.Size
			if it.Prev == nil {
				c.ReadBytes += it.Size
			}
			switch {
			case it.same:
				c.Unchanged++
			case it.known:
				c.Changed++
			default:
				c.New++
			}
		}
	}
	return c
}
