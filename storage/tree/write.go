package tree

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/manifest"
	"github.com/ckptio/ckptio/storage/version"
)

// Write records every item of the scan in w: entries, the previous
// version's blocks of unchanged files (confirmed in one batched round;
// only blocks the stores lost are read again), and the data of the
// others. It may be called once per scan.
func (s *Scan) Write(ctx context.Context, w *version.Writer) error {
	var refs []version.Ref
	var owner []int // item of each ref
	for i := range s.Items {
		it := &s.Items[i]
		if err := w.AddEntry(it.Entry); err != nil {
			return err
		}
		if it.Prev == nil {
			continue
		}
		if it.Size == 0 {
			// An empty file is one empty row: nothing to confirm.
			if _, err := w.WriteObject(ctx, it.Object, it.Rank, strings.NewReader("")); err != nil {
				return err
			}
			continue
		}
		for _, b := range it.Prev.Blocks {
			refs = append(refs, version.Ref{Object: it.Object, Rank: it.Rank, Offset: b.Offset, Length: b.Length, Hash: b.Hash})
			owner = append(owner, i)
		}
	}
	if len(refs) > 0 {
		need, err := w.Plan(ctx, refs)
		if err != nil {
			return err
		}
		for k, r := range refs {
			if need[k] {
				if err := s.reread(ctx, w, &s.Items[owner[k]], r); err != nil {
					return err
				}
			}
		}
	}
	for i := range s.Items {
		it := &s.Items[i]
		if it.Type != manifest.TypeFile || it.Prev != nil {
			continue
		}
		if err := s.writeFile(ctx, w, it); err != nil {
			return err
		}
	}
	return nil
}

func (s *Scan) writeFile(ctx context.Context, w *version.Writer, it *Item) error {
	f, err := os.Open(it.src)
	if err != nil {
		return fmt.Errorf("capture %s: %w", it.src, err)
	}
	defer f.Close()
	// What is read is what is recorded: a file that grows or shrinks
	// while read gets the size read, and the next capture reads it
	// again (its stat will differ).
	var r io.Reader = io.LimitReader(f, it.Size)
	if s.progress != nil {
		r = &counting{r: r, add: s.progress}
	}
	n, err := w.WriteObject(ctx, it.Object, it.Rank, r)
	if err != nil {
		return fmt.Errorf("capture %s: %w", it.src, err)
	}
	if n != it.Size {
		return fmt.Errorf("capture %s: read %d bytes of %d: the file shrank while it was read; checkpoint again", it.src, n, it.Size)
	}
	return nil
}

// reread reads one block of an unchanged file whose stored copies are
// gone, and checks that it is still the block its stat promised.
func (s *Scan) reread(ctx context.Context, w *version.Writer, it *Item, r version.Ref) error {
	src := it.src // never frozen: unchanged files are read where they are
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("capture %s: %w", src, err)
	}
	defer f.Close()
	buf := make([]byte, r.Length)
	if _, err := f.ReadAt(buf, r.Offset); err != nil {
		return fmt.Errorf("capture %s: re-reading the block at %d (its stored copies are gone): %w", src, r.Offset, err)
	}
	if storage.Sum(buf) != r.Hash {
		return fmt.Errorf("capture %s: the block at %d differs from the previous version although size, mtime, ctime and inode match; capture again with ForceRead (ckpt put --force-read)", src, r.Offset)
	}
	if s.progress != nil {
		s.progress(int64(len(buf)))
	}
	return w.Put(ctx, r, buf, nil)
}

// counting tells add of the bytes read through it.
type counting struct {
	r   io.Reader
	add func(n int64)
}

func (c *counting) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.add(int64(n))
	}
	return n, err
}

// Freeze copies the files Write would read into dir (a reflink where the
// file system can, else a copy), so that later changes to them do not
// reach the version. It returns the bytes copied and how many files were
// reflinked. Unchanged files are not copied: Write references them.
func (s *Scan) Freeze(dir string) (copied int64, reflinked int, err error) {
	if s.frozen != "" {
		return 0, 0, errors.New("tree: scan frozen twice")
	}
	for i := range s.Items {
		it := &s.Items[i]
		if it.Type != manifest.TypeFile || it.Prev != nil {
			continue
		}
		dst := filepath.Join(dir, strconv.Itoa(i))
		n, cloned, err := cloneFile(it.src, dst, it.Size)
		if err != nil {
			return copied, reflinked, fmt.Errorf("tree: freezing %s: %w", it.src, err)
		}
		it.src = dst
		copied += n
		if cloned {
			reflinked++
		}
	}
	s.frozen = dir
	return copied, reflinked, nil
}

// cloneFile makes dst a copy of the first size bytes of src: a reflink
// (FICLONE) when the file system shares extents, else a copy (which the
// kernel may still do without moving the bytes through user space).
func cloneFile(src, dst string, size int64) (int64, bool, error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, false, err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, false, err
	}
	defer out.Close()
	if unix.IoctlFileClone(int(out.Fd()), int(in.Fd())) == nil {
		if err := out.Truncate(size); err != nil {
			return 0, false, err
		}
		return 0, true, nil
	}
	n, err := io.Copy(out, io.LimitReader(in, size))
	return n, false, err
}
