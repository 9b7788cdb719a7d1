package disk

import (
	"io"
	"io/fs"
)

// fileSystem is what a Store asks of the file system that holds its
// directory: only the calls the store makes. Every fsync the store relies
// on goes through it (fsFile.SyncData, SyncDir), which is the point: osFS,
// the default, is the operating system's; memFS (memfs_test.go) keeps
// files in memory, remembers what each sync made durable and can make a
// copy of itself holding only that, which is what a power cut would leave;
// faultyFS (disk_test.go) wraps another one and fails its syncs.
//
// The seam is unexported and its fakes live in test files: nothing outside
// this package needs another file system, and the interface can follow
// what the store calls. Options.fs picks one.
//
// Names are paths as the store builds them (filepath.Join of the store's
// directory). Errors are the os package's (*fs.PathError, *os.LinkError),
// so that errors.Is(err, fs.ErrNotExist), fs.ErrExist and the syscall
// errors (ENOSPC) work on every implementation. All methods are safe for
// concurrent use; so are an fsFile's, except that Read and Write, which
// use the file offset, are only called by one goroutine at a time.
type fileSystem interface {
	// Create creates the file name, which must not exist (O_EXCL), open
	// for reading and writing.
	Create(name string) (fsFile, error)
	// OpenReadWrite opens the existing file name for reading and writing.
	OpenReadWrite(name string) (fsFile, error)
	// Open opens the existing file name for reading.
	Open(name string) (fsFile, error)
	// Rename renames oldname to newname, replacing newname if it exists.
	// Like Create and Remove, it is durable only once SyncDir of the
	// directories involved returns.
	Rename(oldname, newname string) error
	// Remove removes the file or empty directory name.
	Remove(name string) error
	// Mkdir creates the directory name; it fails with fs.ErrExist if name
	// exists.
	Mkdir(name string) error
	// MkdirAll creates the directory name and the missing ones above it.
	MkdirAll(name string) error
	// ReadDir lists the directory name, sorted by file name.
	ReadDir(name string) ([]fs.DirEntry, error)
	// Stat describes the file or directory name.
	Stat(name string) (fs.FileInfo, error)
	// SyncDir makes the entries of the directory name durable: the
	// creates, renames and removes done in it before the call survive a
	// crash of the machine.
	SyncDir(name string) error
	// Lock takes an exclusive lock on the file name (created if needed)
	// for as long as the returned Closer is open, and fails at once if
	// another holder has it.
	Lock(name string) (io.Closer, error)
	// DiskFree returns the bytes an unprivileged user may still write on
	// the file system holding dir.
	DiskFree(dir string) (int64, error)
}

// fsFile is an open file of a fileSystem.
type fsFile interface {
	io.Reader
	io.Writer
	io.ReaderAt
	io.WriterAt
	io.Closer
	// Name returns the name the file was opened with.
	Name() string
	// SyncData makes the file's data and size durable (fdatasync): the
	// writes and truncations done before the call survive a crash of the
	// machine. Its directory entry needs SyncDir.
	SyncData() error
	// Truncate changes the file's size.
	Truncate(size int64) error
	// Stat describes the file.
	Stat() (fs.FileInfo, error)
}

// readFile returns the contents of the file name.
func readFile(fsys fileSystem, name string) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}
