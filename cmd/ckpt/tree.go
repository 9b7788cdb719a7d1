package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/ckptio/ckptio/storage/manifest"
)

// treeEntries returns the directory and symlink entries of a files
// version (format 2, e.g. written through 'ckpt mount'), by path: their
// rows hold no data and are not written as files.
func treeEntries(m *manifest.Manifest) map[string]manifest.Entry {
	out := map[string]manifest.Entry{}
	if m.Kind != manifest.KindFiles {
		return out
	}
	for _, e := range m.Entries {
		if e.Rank == -1 && e.Type != manifest.TypeFile {
			out[e.Object] = e
		}
	}
	return out
}

// writeTree makes the directories and symlinks of a files version under
// to, after its files are written, and gives files and directories the
// modes and times their entries hold (directories last, deepest first,
// so that writing into them came before).
func writeTree(to string, m *manifest.Manifest) error {
	if m.Kind != manifest.KindFiles || len(m.Entries) == 0 {
		return nil
	}
	var dirs []manifest.Entry
	for _, e := range m.Entries {
		if e.Rank != -1 {
			continue
		}
		p := filepath.Join(to, filepath.FromSlash(e.Object))
		switch e.Type {
		case manifest.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
			dirs = append(dirs, e)
		case manifest.TypeSymlink:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			if err := os.Symlink(e.Target, p); err != nil {
				return err
			}
		case manifest.TypeFile:
			if err := setEntry(p, e); err != nil {
				return err
			}
		}
	}
	sort.Slice(dirs, func(i, j int) bool { return dirs[i].Object > dirs[j].Object })
	for _, e := range dirs {
		if err := setEntry(filepath.Join(to, filepath.FromSlash(e.Object)), e); err != nil {
			return err
		}
	}
	return nil
}

// setEntry gives path the mode and modification time of e (a time of 0
// is unknown and left alone).
func setEntry(path string, e manifest.Entry) error {
	if err := os.Chmod(path, fs.FileMode(e.Mode&0o777)|modeBits(e.Mode)); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if e.MTime != 0 {
		t := time.Unix(0, e.MTime)
		if err := os.Chtimes(path, t, t); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	return nil
}

// modeBits turns setuid, setgid and sticky of a manifest mode into Go's.
func modeBits(m uint32) fs.FileMode {
	var out fs.FileMode
	if m&0o4000 != 0 {
		out |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		out |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		out |= fs.ModeSticky
	}
	return out
}
