package disk

import (
	"io"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// osFS is the operating system's file system.
type osFS struct{}

// osFile is an *os.File as an fsFile. A struct of one pointer is stored in
// an interface as the pointer itself: wrapping costs no allocation, and
// the calls are the *os.File's.
type osFile struct{ *os.File }

func (f osFile) SyncData() error { return fdatasync(f.File) }

func (osFS) Create(name string) (fsFile, error) {
	return osOpen(name, os.O_RDWR|os.O_CREATE|os.O_EXCL)
}

func (osFS) OpenReadWrite(name string) (fsFile, error) { return osOpen(name, os.O_RDWR) }

func (osFS) Open(name string) (fsFile, error) { return osOpen(name, os.O_RDONLY) }

func osOpen(name string, flag int) (fsFile, error) {
	f, err := os.OpenFile(name, flag, 0o644)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (osFS) Rename(oldname, newname string) error       { return os.Rename(oldname, newname) }
func (osFS) Remove(name string) error                   { return os.Remove(name) }
func (osFS) Mkdir(name string) error                    { return os.Mkdir(name, 0o755) }
func (osFS) MkdirAll(name string) error                 { return os.MkdirAll(name, 0o755) }
func (osFS) ReadDir(name string) ([]fs.DirEntry, error) { return os.ReadDir(name) }
func (osFS) Stat(name string) (fs.FileInfo, error)      { return os.Stat(name) }
func (osFS) SyncDir(name string) error                  { return syncDir(name) }
func (osFS) Lock(name string) (io.Closer, error) {
	f, err := lockFile(name)
	if err != nil {
		return nil, err // not a nil *os.File in a non-nil Closer
	}
	return f, nil
}
func (osFS) DiskFree(dir string) (int64, error) { return diskFree(dir) }

// fdatasync flushes f's data and size to stable storage.
func fdatasync(f *os.File) error {
	for {
		err := unix.Fdatasync(int(f.Fd()))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
		}
		return nil
	}
}

// syncDir makes the entries of the directory at path durable: the creates,
// renames and unlinks done in it before the call survive a crash.
func syncDir(path string) error {
	d, err := os.Open(path)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// diskFree returns the bytes an unprivileged user may still write on the
// filesystem holding dir.
func diskFree(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, &os.PathError{Op: "statfs", Path: dir, Err: err}
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// lockFile flocks the file path, created if needed, exclusively and
// without waiting; an flock held elsewhere is errLocked.
func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		if err == unix.EWOULDBLOCK {
			return nil, errLocked
		}
		return nil, &os.PathError{Op: "flock", Path: path, Err: err}
	}
	return f, nil
}
