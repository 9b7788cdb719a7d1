package disk

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"syscall"

	"github.com/ckptio/ckptio/storage"
)

// writeFileDurable replaces path with data: write a temporary file beside it,
// fdatasync it, rename it over path, fsync the directory.
func writeFileDurable(fsys fileSystem, path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	tmp := path + tmpMarker + randHex(4)
	f, err := fsys.Create(tmp)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			fsys.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err == nil {
		err = f.SyncData()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err = fsys.Rename(tmp, path); err != nil {
		return err
	}
	return fsys.SyncDir(dir)
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

// errLocked: the lock file is held by another holder (fileSystem.Lock).
var errLocked = errors.New("locked")

// lockDir takes an exclusive, non-blocking lock on DIR/LOCK. On the
// operating system's file system it is an flock, which goes with the
// process: a crashed daemon does not leave the directory locked.
func lockDir(fsys fileSystem, dir string) (io.Closer, error) {
	path := filepath.Join(dir, lockName)
	lk, err := fsys.Lock(path)
	if errors.Is(err, errLocked) {
		return nil, fmt.Errorf("disk: store directory %s: another ckpt-store is using it (%s is locked)", dir, path)
	}
	if err != nil {
		return nil, fmt.Errorf("disk: lock %s: %w", path, err)
	}
	return lk, nil
}
