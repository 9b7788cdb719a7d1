package disk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/storetest"
)

var layouts = []Layout{LayoutPack, LayoutFiles}

func openT(t *testing.T, dir string, opts Options) *Store {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = zaptest.NewLogger(t)
	}
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func put(t *testing.T, s *Store, seed int64, n int) ([]byte, storage.Hash) {
	t.Helper()
	data, h := storetest.Block(seed, n)
	if _, err := s.Put(context.Background(), h, data); err != nil {
		t.Fatalf("put %s: %v", h.Short(), err)
	}
	return data, h
}

func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"pack", Options{Layout: LayoutPack}},
		// Small packs: the suite also exercises rolling and compaction.
		{"pack-small", Options{Layout: LayoutPack, PackSize: 128 << 10}},
		{"files", Options{Layout: LayoutFiles}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			storetest.RunWithClock(t, func(t *testing.T, quota int64, now func() time.Time) storage.BlockStore {
				opts := tc.opts
				opts.Quota, opts.Now = quota, now
				return openT(t, t.TempDir(), opts)
			})
		})
	}
}

func TestDefaultLayout(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, Options{})
	if s.Layout() != DefaultLayout {
		t.Fatalf("layout = %q, want %q", s.Layout(), DefaultLayout)
	}
	s.Close()
	if _, err := Open(dir, Options{Layout: LayoutFiles}); err == nil {
		t.Fatal("opening a pack store as files succeeded")
	}
}

func TestReopenKeepsIdentityAndUsage(t *testing.T) {
	ctx := context.Background()
	for _, layout := range layouts {
		t.Run(string(layout), func(t *testing.T) {
			dir := t.TempDir()
			s := openT(t, dir, Options{Layout: layout, PackSize: 256 << 10})
			blocks := map[storage.Hash][]byte{}
			for i := 0; i < 40; i++ {
				d, h := put(t, s, int64(i), 1000*i)
				blocks[h] = d
			}
			var gone []storage.Hash
			for h := range blocks {
				if len(gone) < 15 {
					gone = append(gone, h)
				}
			}
			if _, err := s.Delete(ctx, gone, time.Time{}); err != nil {
				t.Fatal(err)
			}
			for _, h := range gone {
				delete(blocks, h)
			}
			before, _ := s.Stat(ctx)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}

			s = openT(t, dir, Options{})
			defer s.Close()
			after, _ := s.Stat(ctx)
			if after.ID != before.ID || after.Used != before.Used || after.Blocks != before.Blocks {
				t.Fatalf("reopen: %+v, was %+v", after, before)
			}
			if !strings.HasPrefix(after.ID, "st-") || len(after.ID) != 15 {
				t.Fatalf("store ID %q, want st- and 12 hex digits", after.ID)
			}
			if after.DiskFree <= 0 {
				t.Fatalf("DiskFree = %d", after.DiskFree)
			}
			for h, d := range blocks {
				got, err := s.Get(ctx, h)
				if err != nil || !bytes.Equal(got, d) {
					t.Fatalf("get %s after reopen: %v", h.Short(), err)
				}
			}
			for _, h := range gone {
				if _, err := s.Get(ctx, h); !errors.Is(err, storage.ErrNotFound) {
					t.Fatalf("deleted block %s is back: %v", h.Short(), err)
				}
			}
		})
	}
}

// corrupt flips a byte of h's stored bytes behind the store's back.
func corrupt(t *testing.T, s *Store, h storage.Hash) {
	t.Helper()
	var path string
	var off int64
	switch impl := s.impl.(type) {
	case *files:
		_, path = impl.path(h)
	case *pack:
		impl.mu.Lock()
		l := impl.mu.index[h]
		path, off = impl.mu.packs[l.pack].path, l.off+recHeaderSize+l.n/2
		impl.mu.Unlock()
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x55
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptionDetected(t *testing.T) {
	ctx := context.Background()
	for _, layout := range layouts {
		t.Run(string(layout), func(t *testing.T) {
			s := openT(t, t.TempDir(), Options{Layout: layout})
			defer s.Close()
			_, h := put(t, s, 1, 10000)
			d2, h2 := put(t, s, 2, 10000)
			corrupt(t, s, h)
			got, err := s.Get(ctx, h)
			if !errors.Is(err, storage.ErrHashMismatch) || got != nil {
				t.Fatalf("get of a corrupted block: %d bytes, err=%v; want ErrHashMismatch", len(got), err)
			}
			if !strings.Contains(err.Error(), h.String()) {
				t.Fatalf("error %q does not name the hash", err)
			}
			if got, err := s.Get(ctx, h2); err != nil || !bytes.Equal(got, d2) {
				t.Fatalf("neighbouring block: %v", err)
			}
		})
	}
}

func TestLockRefusesSecondOpen(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, Options{})
	_, err := Open(dir, Options{})
	if err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "another ckpt-store") {
		t.Fatalf("second open: err=%v, want one naming %s and another ckpt-store", err, dir)
	}
	s.Close()
	s2 := openT(t, dir, Options{})
	s2.Close()
}

func TestQuotaConcurrentPutsNeverOvershoot(t *testing.T) {
	ctx := context.Background()
	for _, layout := range layouts {
		t.Run(string(layout), func(t *testing.T) {
			const quota, size = 1 << 20, 48 << 10
			s := openT(t, t.TempDir(), Options{Layout: layout, Quota: quota})
			defer s.Close()
			var ok atomic.Int64
			var maxUsed atomic.Int64
			var wg sync.WaitGroup
			errs := make(chan error, 64)
			for g := 0; g < 32; g++ {
				wg.Add(1)
				go func(g int) {
					defer wg.Done()
					for i := 0; i < 4; i++ {
						data, h := storetest.Block(int64(g*100+i), size)
						_, err := s.Put(ctx, h, data)
						if err == nil {
							ok.Add(1)
						} else if !errors.Is(err, storage.ErrQuotaExceeded) {
							errs <- err
							return
						}
						st, _ := s.Stat(ctx)
						if st.Used > maxUsed.Load() {
							maxUsed.Store(st.Used)
						}
					}
				}(g)
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			st, _ := s.Stat(ctx)
			if st.Used > quota || maxUsed.Load() > quota {
				t.Fatalf("used %d (max seen %d) beyond quota %d", st.Used, maxUsed.Load(), quota)
			}
			if st.Used != ok.Load()*size || st.Used < quota-size {
				t.Fatalf("used %d after %d successful puts of %d; quota %d", st.Used, ok.Load(), size, quota)
			}
		})
	}
}

// tmpFiles lists the temporary files under dir.
func tmpFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), tmpMarker) {
			out = append(out, path)
		}
		return nil
	})
	return out
}

// faultyFS wraps a file system and, while on, fails its file syncs (or
// its directory syncs) with err. It counts the syncs either way.
type faultyFS struct {
	fileSystem
	on        atomic.Bool
	dirs      bool // fail directory syncs instead of file syncs
	err       error
	fileSyncs atomic.Int64
	dirSyncs  atomic.Int64
}

func newFaultyFS(dirs bool, err error) *faultyFS {
	return &faultyFS{fileSystem: osFS{}, dirs: dirs, err: err}
}

func (f *faultyFS) Create(name string) (fsFile, error) {
	return f.wrap(f.fileSystem.Create(name))
}

func (f *faultyFS) OpenReadWrite(name string) (fsFile, error) {
	return f.wrap(f.fileSystem.OpenReadWrite(name))
}

func (f *faultyFS) wrap(fl fsFile, err error) (fsFile, error) {
	if err != nil {
		return nil, err
	}
	return faultyFile{fl, f}, nil
}

func (f *faultyFS) SyncDir(name string) error {
	f.dirSyncs.Add(1)
	if f.on.Load() && f.dirs {
		return &os.PathError{Op: "fsync", Path: name, Err: f.err}
	}
	return f.fileSystem.SyncDir(name)
}

type faultyFile struct {
	fsFile
	fs *faultyFS
}

func (f faultyFile) SyncData() error {
	f.fs.fileSyncs.Add(1)
	if f.fs.on.Load() && !f.fs.dirs {
		return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: f.fs.err}
	}
	return f.fsFile.SyncData()
}

func TestFailedSyncIsNotAcknowledged(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		layout Layout
		dirs   bool
		err    error
		want   error
	}{
		{LayoutPack, false, syscall.EIO, nil},
		{LayoutPack, false, syscall.ENOSPC, storage.ErrDiskFull},
		{LayoutFiles, false, syscall.EIO, nil},
		{LayoutFiles, false, syscall.ENOSPC, storage.ErrDiskFull},
		{LayoutFiles, true, syscall.EIO, nil},
	} {
		name := fmt.Sprintf("%s/dirs=%v/%v", tc.layout, tc.dirs, tc.err)
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			ffs := newFaultyFS(tc.dirs, tc.err)
			s := openT(t, dir, Options{Layout: tc.layout, Quota: 10 << 20, fs: ffs})
			kept, hk := put(t, s, 1, 5000)
			before, _ := s.Stat(ctx)

			ffs.on.Store(true)
			var wg sync.WaitGroup
			var failed []storage.Hash
			var mu sync.Mutex
			for i := 0; i < 8; i++ {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					data, h := storetest.Block(int64(100+i), 20000)
					_, err := s.Put(ctx, h, data)
					if err == nil {
						t.Errorf("put %d acknowledged although its sync failed", i)
						return
					}
					if tc.want != nil && !errors.Is(err, tc.want) {
						t.Errorf("put %d: err=%v, want %v", i, err, tc.want)
					}
					mu.Lock()
					failed = append(failed, h)
					mu.Unlock()
				}(i)
			}
			wg.Wait()
			ffs.on.Store(false)

			after, _ := s.Stat(ctx)
			if after.Used != before.Used || after.Blocks != before.Blocks {
				t.Fatalf("failed puts changed usage: %+v -> %+v", before, after)
			}
			if tmp := tmpFiles(t, dir); len(tmp) > 0 {
				t.Fatalf("failed puts left %v", tmp)
			}
			// The store keeps working once the fault is gone.
			_, h2 := put(t, s, 2, 7000)
			s.Close()

			s = openT(t, dir, Options{})
			defer s.Close()
			st, _ := s.Stat(ctx)
			if st.Used != before.Used+7000 || st.Blocks != 2 {
				t.Fatalf("after reopen: %+v, want the 2 acknowledged blocks", st)
			}
			for _, h := range failed {
				if _, err := s.Get(ctx, h); !errors.Is(err, storage.ErrNotFound) {
					t.Fatalf("unacknowledged block %s present after reopen: %v", h.Short(), err)
				}
			}
			if got, err := s.Get(ctx, hk); err != nil || !bytes.Equal(got, kept) {
				t.Fatalf("acknowledged block lost: %v", err)
			}
			if _, err := s.Get(ctx, h2); err != nil {
				t.Fatalf("acknowledged block lost: %v", err)
			}
		})
	}
}

// TestPutsShareSyncs checks the group commit: puts in flight together share
// fsyncs.
func TestPutsShareSyncs(t *testing.T) {
	ctx := context.Background()
	for _, layout := range layouts {
		t.Run(string(layout), func(t *testing.T) {
			ffs := newFaultyFS(false, nil)
			s := openT(t, t.TempDir(), Options{Layout: layout, fs: ffs})
			defer s.Close()
			f0, d0 := ffs.fileSyncs.Load(), ffs.dirSyncs.Load()
			batches := func() int64 {
				switch impl := s.impl.(type) {
				case *pack:
					return impl.c.batches.Load()
				case *files:
					return impl.c.batches.Load()
				}
				return 0
			}
			b0 := batches()
			const n = 256
			var wg sync.WaitGroup
			for g := 0; g < 32; g++ {
				wg.Add(1)
				go func(g int) {
					defer wg.Done()
					for i := 0; i < n/32; i++ {
						data, h := storetest.Block(int64(g*1000+i), 4096)
						if _, err := s.Put(ctx, h, data); err != nil {
							t.Error(err)
						}
					}
				}(g)
			}
			wg.Wait()
			files, dirs, nb := ffs.fileSyncs.Load()-f0, ffs.dirSyncs.Load()-d0, batches()-b0
			t.Logf("%d puts: %d batches, %d file syncs, %d directory syncs", n, nb, files, dirs)
			if nb >= n/2 {
				t.Fatalf("%d puts took %d batches: little group commit", n, nb)
			}
			if layout == LayoutPack && files != nb {
				t.Fatalf("%d batches paid %d file syncs, want one each", nb, files)
			}
		})
	}
}

func TestLeftoverTmpRemovedOnOpen(t *testing.T) {
	for _, layout := range layouts {
		t.Run(string(layout), func(t *testing.T) {
			dir := t.TempDir()
			s := openT(t, dir, Options{Layout: layout})
			_, h := put(t, s, 1, 100)
			s.Close()
			leftovers := []string{filepath.Join(dir, metaName+tmpMarker+"12345678")}
			if layout == LayoutFiles {
				_, final := (&files{root: filepath.Join(dir, "blocks")}).path(h)
				leftovers = append(leftovers, final+tmpMarker+"0badf00d")
			}
			for _, p := range leftovers {
				if err := os.WriteFile(p, []byte("half"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			s = openT(t, dir, Options{})
			defer s.Close()
			if tmp := tmpFiles(t, dir); len(tmp) > 0 {
				t.Fatalf("open left %v", tmp)
			}
			if st, _ := s.Stat(context.Background()); st.Blocks != 1 || st.Used != 100 {
				t.Fatalf("stat = %+v", st)
			}
		})
	}
}

func packBytes(t *testing.T, dir string) (total int64, n int) {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, "packs"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		info, err := e.Info()
		if err != nil {
			continue // removed by a compaction since ReadDir
		}
		total += info.Size()
		n++
	}
	return total, n
}

func TestCompactionReclaimsSpace(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openT(t, dir, Options{Layout: LayoutPack, PackSize: 256 << 10})
	var all []storage.Hash
	keep := map[storage.Hash][]byte{}
	for i := 0; i < 128; i++ {
		d, h := put(t, s, int64(i), 16<<10)
		all = append(all, h)
		if i%8 == 0 {
			keep[h] = d
		}
	}
	full, packs := packBytes(t, dir)
	var gone []storage.Hash
	for _, h := range all {
		if _, ok := keep[h]; !ok {
			gone = append(gone, h)
		}
	}
	freed, err := s.Delete(ctx, gone, time.Time{})
	if err != nil || freed != int64(len(gone))*(16<<10) {
		t.Fatalf("delete: freed %d, %v", freed, err)
	}
	if st, _ := s.Stat(ctx); st.Used != int64(len(keep))*(16<<10) {
		t.Fatalf("used after delete = %d", st.Used)
	}
	// Compaction runs in the background; have it run now, and wait for it.
	s.impl.(*pack).compactPass()
	now, _ := packBytes(t, dir)
	t.Logf("packs: %d bytes in %d files before delete, %d after", full, packs, now)
	if now >= full/3 {
		t.Fatalf("compaction left %d of %d bytes", now, full)
	}
	s.Close()

	s = openT(t, dir, Options{})
	defer s.Close()
	st, _ := s.Stat(ctx)
	if st.Blocks != int64(len(keep)) || st.Used != int64(len(keep))*(16<<10) {
		t.Fatalf("after reopen: %+v", st)
	}
	for h, d := range keep {
		if got, err := s.Get(ctx, h); err != nil || !bytes.Equal(got, d) {
			t.Fatalf("kept block %s: %v", h.Short(), err)
		}
	}
	for _, h := range gone {
		if _, err := s.Get(ctx, h); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("deleted block %s back after compaction and reopen: %v", h.Short(), err)
		}
	}
}

// TestPackTornTailCut appends what a crash in the middle of a batch can
// leave (a whole header with half its data, then zeros) to the active pack
// and checks that Open cuts it off and keeps every acknowledged block.
func TestPackTornTailCut(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openT(t, dir, Options{Layout: LayoutPack})
	keep := map[storage.Hash][]byte{}
	for i := 0; i < 5; i++ {
		d, h := put(t, s, int64(i), 3000)
		keep[h] = d
	}
	s.Close()
	good, _ := packBytes(t, dir)

	data, h := storetest.Block(99, 5000)
	hdr := make([]byte, recHeaderSize)
	(&recHeader{kind: recPut, length: uint32(len(data)), hash: h, dcrc: crc32c(data)}).marshal(hdr)
	torn := append(append(hdr, data[:2000]...), make([]byte, 3000+4096)...)
	f, err := os.OpenFile(filepath.Join(dir, "packs", packName(1)), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(torn)
	f.Close()

	s = openT(t, dir, Options{})
	defer s.Close()
	if now, _ := packBytes(t, dir); now != good {
		t.Fatalf("active pack is %d bytes after open, want %d", now, good)
	}
	if _, err := s.Get(ctx, h); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("torn block readable: %v", err)
	}
	for h, d := range keep {
		if got, err := s.Get(ctx, h); err != nil || !bytes.Equal(got, d) {
			t.Fatalf("block %s: %v", h.Short(), err)
		}
	}
	// New puts go after the cut.
	d, h2 := put(t, s, 100, 4000)
	if got, err := s.Get(ctx, h2); err != nil || !bytes.Equal(got, d) {
		t.Fatalf("put after cut: %v", err)
	}
}

// Touch times live in memory only: after a restart every block counts as
// touched at Open, so a collection that began before the restart removes
// none of them.
func TestOpenTouchesEveryBlock(t *testing.T) {
	ctx := context.Background()
	for _, layout := range layouts {
		t.Run(string(layout), func(t *testing.T) {
			dir := t.TempDir()
			clk := storetest.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
			s := openT(t, dir, Options{Layout: layout, Now: clk.Now})
			_, ha := put(t, s, 1, 1000)
			_, hb := put(t, s, 2, 2000)
			clk.Advance(time.Millisecond)
			t0 := clk.Now()
			clk.Advance(time.Millisecond)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = openT(t, dir, Options{Now: clk.Now})
			defer s.Close()
			if freed, err := s.Delete(ctx, []storage.Hash{ha, hb}, t0); err != nil || freed != 0 {
				t.Fatalf("delete not since before the reopen: freed=%d err=%v, want 0", freed, err)
			}
			hs, err := s.List(ctx, storage.Hash{}, 10)
			if err != nil || len(hs) != 2 {
				t.Fatalf("list after reopen = %d hashes, %v; want 2", len(hs), err)
			}
			clk.Advance(time.Millisecond)
			if freed, err := s.Delete(ctx, []storage.Hash{ha, hb}, clk.Now()); err != nil || freed != 3000 {
				t.Fatalf("delete not since after the reopen: freed=%d err=%v, want 3000", freed, err)
			}
		})
	}
}

// TestPauseCompaction: a paused store compacts nothing, and compacts what
// it deferred once resumed.
func TestPauseCompaction(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openT(t, dir, Options{Layout: LayoutPack, PackSize: 256 << 10})
	defer s.Close()
	s.PauseCompaction(true)
	var gone []storage.Hash
	for i := 0; i < 64; i++ {
		_, h := put(t, s, int64(i), 16<<10)
		if i%8 != 0 {
			gone = append(gone, h)
		}
	}
	if _, err := s.Delete(ctx, gone, time.Time{}); err != nil {
		t.Fatal(err)
	}
	full, _ := packBytes(t, dir)
	s.impl.(*pack).compactPass()
	if now, _ := packBytes(t, dir); now != full {
		t.Fatalf("a paused store compacted: %d bytes of packs, %d before", now, full)
	}
	s.PauseCompaction(false)
	s.impl.(*pack).compactPass()
	if now, _ := packBytes(t, dir); now >= full/3 {
		t.Fatalf("resumed compaction left %d of %d bytes", now, full)
	}
}

// TestDeadActivePackReclaimed (finding F6): blocks deleted from the
// active pack (the one still appended to, never compacted) free their
// disk space: the pack is sealed once mostly dead and compacted, at the
// delete and, for a store stopped before it could, at the next open.
func TestDeadActivePackReclaimed(t *testing.T) {
	ctx := context.Background()
	for _, reopen := range []bool{false, true} {
		dir := t.TempDir()
		s := openT(t, dir, Options{Layout: LayoutPack}) // 64 MiB packs: all of it stays in the active one
		var hs []storage.Hash
		for i := range 64 {
			_, h := put(t, s, int64(i), 64<<10)
			hs = append(hs, h)
		}
		full, _ := packBytes(t, dir)
		if reopen {
			s.PauseCompaction(true) // the store stops before compacting
		}
		if _, err := s.Delete(ctx, hs[1:], time.Time{}); err != nil {
			t.Fatal(err)
		}
		if reopen {
			s.Close()
			s = openT(t, dir, Options{Layout: LayoutPack})
		}
		s.impl.(*pack).compactPass()
		if now, _ := packBytes(t, dir); now > full/8 {
			t.Fatalf("reopen %v: %d bytes of packs after deleting 63 of 64 blocks, %d before", reopen, now, full)
		}
		if _, err := s.Get(ctx, hs[0]); err != nil {
			t.Fatalf("reopen %v: the kept block: %v", reopen, err)
		}
		s.Close()
	}
}

// TestCorruptBlockDroppedAndScrubbed (finding F4): a block found corrupt,
// by a Get or by Scrub, is dropped: Has says it is not held (so repair
// replaces the copy) and a put stores it afresh.
func TestCorruptBlockDroppedAndScrubbed(t *testing.T) {
	ctx := context.Background()
	for _, layout := range layouts {
		t.Run(string(layout), func(t *testing.T) {
			s := openT(t, t.TempDir(), Options{Layout: layout})
			defer s.Close()
			d1, h1 := put(t, s, 1, 10000)
			_, h2 := put(t, s, 2, 10000)
			_, h3 := put(t, s, 3, 10000)
			corrupt(t, s, h1)
			if _, err := s.Get(ctx, h1); !errors.Is(err, storage.ErrHashMismatch) {
				t.Fatalf("get of a corrupted block: %v", err)
			}
			if has, _ := s.Has(ctx, []storage.Hash{h1}); has[0] {
				t.Fatal("a block found corrupt is still held")
			}
			if created, err := s.Put(ctx, h1, d1); err != nil || !created {
				t.Fatalf("put again of a dropped block: created %v, %v; want it stored afresh", created, err)
			}
			if got, err := s.Get(ctx, h1); err != nil || !bytes.Equal(got, d1) {
				t.Fatalf("get after the put again: %v", err)
			}
			// Scrub finds what nobody read.
			corrupt(t, s, h3)
			rep, err := s.Scrub(ctx, 0, nil)
			if err != nil || rep.Checked != 3 || rep.Corrupt != 1 || rep.Bytes != 20000 {
				t.Fatalf("scrub: %+v %v; want 3 checked, 1 corrupt", rep, err)
			}
			if has, _ := s.Has(ctx, []storage.Hash{h2, h3}); !has[0] || has[1] {
				t.Fatalf("after scrub: held %v, want the good block only", has)
			}
			if s.Corrupt() != 2 {
				t.Fatalf("corrupt count %d, want 2", s.Corrupt())
			}
		})
	}
}
