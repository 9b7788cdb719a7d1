package manifest

import (
	"cmp"
	"fmt"
	"path"
	"slices"
	"strings"
)

// MaxMode is the largest Entry.Mode: permission bits with setuid, setgid
// and sticky.
const MaxMode = 0o7777

// File is an entry of a tree with its size and blocks.
type File struct {
	Entry
	Size   int64
	Blocks []Block // ordered by offset; one empty row for a directory or symlink
}

// Tree returns the files, directories and symlinks a version holds for
// rank (-1 for 'ckpt put'), sorted by path. In a files version written in
// format 1, which has no entries, every object is a regular file of mode
// 0644 with an unknown mtime (0). Objects without an entry in an MPI
// version are regions and are not part of the tree.
func (m *Manifest) Tree(rank int32) []File {
	return m.trees(func(r int32) bool { return r == rank })[rank]
}

// Trees returns Tree(r) of every rank r that has one, in one pass over
// the blocks.
func (m *Manifest) Trees() map[int32][]File {
	return m.trees(func(int32) bool { return true })
}

func (m *Manifest) trees(want func(int32) bool) map[int32][]File {
	type key struct {
		name string
		rank int32
	}
	idx := map[key]int{}
	var all []File
	for _, e := range m.Entries {
		if want(e.Rank) {
			idx[key{e.Object, e.Rank}] = len(all)
			all = append(all, File{Entry: e})
		}
	}
	legacy := m.Kind == KindFiles && len(m.Entries) == 0
	for _, b := range m.Blocks {
		if !want(b.Rank) {
			continue
		}
		k := key{b.Object, b.Rank}
		i, ok := idx[k]
		if !ok {
			if !legacy {
				continue
			}
			i = len(all)
			idx[k] = i
			all = append(all, File{Entry: Entry{Object: b.Object, Rank: b.Rank, Type: TypeFile, Mode: 0o644}})
		}
		all[i].Size += b.Length
		all[i].Blocks = append(all[i].Blocks, b)
	}
	out := map[int32][]File{}
	for _, f := range all {
		slices.SortFunc(f.Blocks, func(a, b Block) int { return cmp.Compare(a.Offset, b.Offset) })
		out[f.Rank] = append(out[f.Rank], f)
	}
	for _, files := range out {
		slices.SortFunc(files, func(a, b File) int { return cmp.Compare(a.Object, b.Object) })
	}
	return out
}

// CheckPath reports whether p is a path an entry may have: relative,
// slash-separated, clean (no "." or ".." element, no empty element, no
// trailing slash), so that joined to any root it stays inside it.
func CheckPath(p string) error {
	switch {
	case p == "":
		return fmt.Errorf("empty path")
	case strings.HasPrefix(p, "/"):
		return fmt.Errorf("path %q is absolute", p)
	case strings.ContainsRune(p, 0):
		return fmt.Errorf("path %q holds a NUL byte", p)
	case strings.Contains(p, `\`):
		return fmt.Errorf("path %q holds a backslash", p)
	case path.Clean(p) != p:
		return fmt.Errorf("path %q is not clean (want %q)", p, path.Clean(p))
	case p == ".." || strings.HasPrefix(p, "../"):
		return fmt.Errorf("path %q leads out of its root", p)
	case p == ".":
		return fmt.Errorf("path %q names the root itself", p)
	}
	return nil
}

// validateEntries checks the entry rules (Validate).
func (m *Manifest) validateEntries() error {
	if len(m.Entries) == 0 {
		return nil
	}
	type info struct {
		rows int
		size int64
	}
	objs := map[objectKey]*info{}
	for i := range m.Blocks {
		b := &m.Blocks[i]
		k := objectKey{b.Object, b.Rank}
		o := objs[k]
		if o == nil {
			o = &info{}
			objs[k] = o
		}
		o.rows++
		o.size += b.Length
	}
	types := map[objectKey]EntryType{}
	for i := range m.Entries {
		e := &m.Entries[i]
		k := objectKey{e.Object, e.Rank}
		if _, dup := types[k]; dup {
			return invalidf("two entries for %q rank %d", e.Object, e.Rank)
		}
		types[k] = e.Type
		if err := CheckPath(e.Object); err != nil {
			return invalidf("entry %d: %v", i, err)
		}
		o := objs[k]
		if o == nil {
			return invalidf("entry %q rank %d has no blocks", e.Object, e.Rank)
		}
		if e.Mode > MaxMode {
			return invalidf("entry %q: mode %#o has bits beyond %#o", e.Object, e.Mode, MaxMode)
		}
		switch e.Type {
		case TypeFile:
			if e.Target != "" {
				return invalidf("entry %q: a regular file with a symlink target", e.Object)
			}
		case TypeDir, TypeSymlink:
			if o.rows != 1 || o.size != 0 {
				return invalidf("entry %q: a %s with %d bytes in %d blocks", e.Object, e.Type, o.size, o.rows)
			}
			if e.Type == TypeDir && e.Target != "" {
				return invalidf("entry %q: a directory with a symlink target", e.Object)
			}
			if e.Type == TypeSymlink && (e.Target == "" || !validUTF8(e.Target) || strings.ContainsRune(e.Target, 0)) {
				return invalidf("entry %q: symlink target %q is empty, not UTF-8 or holds a NUL", e.Object, e.Target)
			}
		default:
			return invalidf("entry %q: unknown type %q", e.Object, e.Type)
		}
	}
	// Whatever holds an entry must be a directory of the tree, or not in
	// it: a file "a" and a file "a/b" cannot both be extracted.
	for k := range types {
		for dir := path.Dir(k.name); dir != "."; dir = path.Dir(dir) {
			if t, ok := types[objectKey{dir, k.rank}]; ok && t != TypeDir {
				return invalidf("entry %q rank %d is inside %q, a %s", k.name, k.rank, dir, t)
			}
		}
	}
	return nil
}
