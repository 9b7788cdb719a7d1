package disk

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strings"
	"sync"

	"go.uber.org/zap"

	"github.com/ckptio/ckptio/storage"
)

// files is LayoutFiles: one file per block, DIR/blocks/XX/HASH.
//
// A put writes DIR/blocks/XX/HASH.tmp-R in the caller's goroutine and
// fdatasyncs it (concurrent fdatasyncs share the filesystem's journal
// commits), then hands the rename to the committer, which renames every
// file of its batch and fsyncs each fan-out directory it touched once.
type files struct {
	root string // DIR/blocks
	fsys fileSystem
	log  *zap.Logger
	c    *committer[*fileReq]
}

type fileReq struct {
	tmp, final, dir string
	done            chan error
}

func openFiles(fsys fileSystem, dir string, maxBatch int, log *zap.Logger, add func(storage.Hash, int64)) (*files, error) {
	l := &files{root: filepath.Join(dir, "blocks"), fsys: fsys, log: log}
	if err := l.mkdirs(); err != nil {
		return nil, err
	}
	if err := l.scan(add); err != nil {
		return nil, err
	}
	l.c = newCommitter(maxBatch, l.commit, func(r *fileReq, err error) { r.done <- err })
	return l, nil
}

// mkdirs creates DIR/blocks and its 256 fan-out directories, durably.
func (l *files) mkdirs() error {
	created := false
	if err := l.fsys.Mkdir(l.root); err == nil {
		created = true
	} else if !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("disk: %w", err)
	}
	for i := 0; i < 256; i++ {
		err := l.fsys.Mkdir(filepath.Join(l.root, fmt.Sprintf("%02x", i)))
		if err == nil {
			created = true
		} else if !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("disk: %w", err)
		}
	}
	if created {
		if err := l.fsys.SyncDir(l.root); err != nil {
			return fmt.Errorf("disk: %w", err)
		}
		if err := l.fsys.SyncDir(filepath.Dir(l.root)); err != nil {
			return fmt.Errorf("disk: %w", err)
		}
	}
	return nil
}

// scan reports every block file to add and removes temporary files. It
// reads the 256 fan-out directories and stats each block file: one
// getdents pass and one fstatat per block.
func (l *files) scan(add func(storage.Hash, int64)) error {
	for i := 0; i < 256; i++ {
		sub := filepath.Join(l.root, fmt.Sprintf("%02x", i))
		ents, err := l.fsys.ReadDir(sub)
		if err != nil {
			return fmt.Errorf("disk: scan: %w", err)
		}
		for _, e := range ents {
			name := e.Name()
			if strings.Contains(name, tmpMarker) {
				if err := l.fsys.Remove(filepath.Join(sub, name)); err != nil {
					return fmt.Errorf("disk: remove leftover: %w", err)
				}
				l.log.Info("removed leftover temporary file", zap.String("file", name))
				continue
			}
			h, ok := hexName(name)
			if !ok || name[:2] != sub[len(sub)-2:] || !e.Type().IsRegular() {
				l.log.Warn("ignoring unexpected file in block directory", zap.String("file", filepath.Join(sub, name)))
				continue
			}
			info, err := e.Info()
			if err != nil {
				return fmt.Errorf("disk: scan: %w", err)
			}
			add(h, info.Size())
		}
	}
	return nil
}

func (l *files) path(h storage.Hash) (dir, file string) {
	name := h.String()
	dir = filepath.Join(l.root, name[:2])
	return dir, filepath.Join(dir, name)
}

func (l *files) put(h storage.Hash, data []byte) error {
	dir, final := l.path(h)
	tmp := final + tmpMarker + randHex(4)
	f, err := l.fsys.Create(tmp)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.SyncData()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		l.fsys.Remove(tmp)
		return err
	}
	r := &fileReq{tmp: tmp, final: final, dir: dir, done: make(chan error, 1)}
	if err := l.c.submit(r); err != nil {
		l.fsys.Remove(tmp)
		return err
	}
	return l.c.wait(r.done)
}

// commit renames the batch's files into place, fsyncs each directory it
// touched once (in parallel, at most 16 at a time), then answers. A put whose rename or directory fsync failed
// is undone (its file removed) before it is answered.
func (l *files) commit(batch []*fileReq) {
	dirs := make(map[string]error)
	errs := make([]error, len(batch))
	for i, r := range batch {
		if errs[i] = l.fsys.Rename(r.tmp, r.final); errs[i] != nil {
			l.fsys.Remove(r.tmp)
			continue
		}
		dirs[r.dir] = nil
	}
	// The directories are fsynced in parallel, so the filesystem can cover
	// them with one journal commit rather than one each.
	names := make([]string, 0, len(dirs))
	for d := range dirs {
		names = append(names, d)
	}
	derrs := make([]error, len(names))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i, d := range names {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			derrs[i] = l.fsys.SyncDir(d)
			<-sem
		}()
	}
	wg.Wait()
	for i, d := range names {
		dirs[d] = derrs[i]
	}
	for i, r := range batch {
		if errs[i] == nil {
			if errs[i] = dirs[r.dir]; errs[i] != nil {
				l.fsys.Remove(r.final)
			}
		}
		r.done <- errs[i]
	}
}

func (l *files) get(h storage.Hash, size int64) ([]byte, string, error) {
	_, path := l.path(h)
	f, err := l.fsys.Open(path)
	if err != nil {
		return nil, path, err
	}
	defer f.Close()
	// Read one byte more than expected so a grown file is noticed too.
	buf := make([]byte, size+1)
	n, err := io.ReadFull(f, buf)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return nil, path, fmt.Errorf("read %s: %w", path, err)
	}
	return buf[:n], path, nil
}

// del unlinks the files, then fsyncs each directory it touched once.
func (l *files) del(hs []storage.Hash) (int, error) {
	dirs := make(map[string]bool)
	var err error
	n := 0
	for _, h := range hs {
		dir, path := l.path(h)
		if err = l.fsys.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			break
		}
		err = nil
		dirs[dir] = true
		n++
	}
	for d := range dirs {
		if serr := l.fsys.SyncDir(d); serr != nil {
			// The unlinks happened; only their durability is in doubt. A
			// crash may bring the blocks back, and a later delete removes
			// them again.
			return n, serr
		}
	}
	return n, err
}

func (l *files) close() error {
	l.c.close()
	return nil
}
