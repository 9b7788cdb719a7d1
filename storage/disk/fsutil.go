package disk

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ckptio/ckptio/storage"
)

// syncer makes files and directories durable. The store's layouts call it
// for every fsync they rely on, so tests can make a sync fail and check that
// nothing is acknowledged.
type syncer struct {
	// file flushes a file's data and the metadata needed to read it back
	// (fdatasync).
	file func(f *os.File) error
	// dir flushes a directory's entries (fsync of the directory).
	dir func(path string) error
}

func defaultSyncer() syncer {
	return syncer{file: fdatasync, dir: syncDir}
}

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

// writeFileDurable replaces path with data: write a temporary file beside it,
// fsync it, rename it over path, fsync the directory.
func writeFileDurable(sy syncer, path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	tmp := path + tmpMarker + randHex(4)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err == nil {
		err = sy.file(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	return sy.dir(dir)
}

// tmpMarker is part of the name of every temporary file the store writes;
// Open removes the files whose names contain it.
const tmpMarker = ".tmp-"

func randHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("disk: crypto/rand: %v", err))
	}
	return hex.EncodeToString(b)
}

// mapErr translates an OS error to the storage sentinels at the store's
// boundary: a full disk (or a filesystem quota) becomes storage.ErrDiskFull.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		if !errors.Is(err, storage.ErrDiskFull) {
			return fmt.Errorf("%w: %w", storage.ErrDiskFull, err)
		}
	}
	return err
}

// diskFree returns the bytes an unprivileged user may still write on the
// filesystem holding dir.
func diskFree(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("disk: statfs %s: %w", dir, err)
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// lockDir takes an exclusive, non-blocking flock on DIR/LOCK. The lock goes
// with the process: a crashed daemon does not leave the directory locked.
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, lockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("disk: lock %s: %w", dir, err)
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
			return nil, fmt.Errorf("disk: store directory %s: another ckpt-store is using it (%s is locked)", dir, path)
		}
		return nil, fmt.Errorf("disk: lock %s: %w", path, err)
	}
	return f, nil
}
