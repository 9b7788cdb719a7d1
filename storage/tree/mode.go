package tree

import (
	"io/fs"
	"os"
	"syscall"

	"github.com/ckptio/ckptio/storage/manifest"
)

// entryMode returns the mode bits an entry keeps of fm.
func entryMode(fm fs.FileMode) uint32 {
	m := uint32(fm.Perm())
	if fm&fs.ModeSetuid != 0 {
		m |= 0o4000
	}
	if fm&fs.ModeSetgid != 0 {
		m |= 0o2000
	}
	if fm&fs.ModeSticky != 0 {
		m |= 0o1000
	}
	return m
}

// fileMode is entryMode's inverse.
func fileMode(m uint32) fs.FileMode {
	fm := fs.FileMode(m & 0o777)
	if m&0o4000 != 0 {
		fm |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		fm |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		fm |= fs.ModeSticky
	}
	return fm
}

// stat is what a capture records of a file beside its mode.
type stat struct {
	mtime, ctime int64
	inode        uint64
}

func statOf(fi os.FileInfo) stat {
	s := stat{mtime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.ctime = st.Ctim.Nano()
		s.inode = st.Ino
	}
	return s
}

// unchanged reports whether a file with info fi is, by its stat, the
// file prev recorded: same type, size, mtime, and ctime and inode when
// both are known.
func unchanged(prev *manifest.File, fi os.FileInfo) bool {
	if prev == nil || prev.Type != manifest.TypeFile || !fi.Mode().IsRegular() {
		return false
	}
	s := statOf(fi)
	return fi.Size() == prev.Size && s.mtime == prev.MTime && prev.MTime != 0 &&
		s.ctime == prev.CTime && prev.CTime != 0 && s.inode == prev.Inode && prev.Inode != 0 &&
		entryMode(fi.Mode()) == prev.Mode
}
