package disk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/ckptio/ckptio/storage"
)

// Layout names how a Store keeps its blocks in its directory.
type Layout string

const (
	// LayoutPack appends blocks to pack files under DIR/packs, one fsync per
	// batch of puts, and compacts packs that deletes have mostly emptied.
	// The default: it puts 64 KiB blocks several times faster than
	// LayoutFiles (docs/store-layout.md).
	LayoutPack Layout = "pack"
	// LayoutFiles keeps each block in its own file DIR/blocks/XX/HASH, where
	// XX is the first two hex digits of the hash.
	LayoutFiles Layout = "files"
)

// DefaultLayout is the layout of a new store whose Options leave Layout
// empty.
const DefaultLayout = LayoutPack

const (
	metaName  = "STORE"
	lockName  = "LOCK"
	metaMagic = "ckpt-store 1"

	defaultPackSize = 64 << 20
	defaultMaxBatch = 64
)

// Options configure Open. The zero value is a usable configuration.
type Options struct {
	// Quota is the most bytes of blocks the store holds; puts beyond it
	// fail with storage.ErrQuotaExceeded. 0 means unlimited (the disk's free
	// space is then the only limit).
	Quota int64
	// Logger receives the store's notices (leftovers removed at Open, a
	// damaged pack tail cut off, compactions). nil means zap.NewNop().
	Logger *zap.Logger
	// Layout is the on-disk layout. Empty means the layout the directory
	// already has, or DefaultLayout for a new directory. A layout that
	// differs from the directory's fails Open.
	Layout Layout
	// PackSize is the size at which LayoutPack starts a new pack file, which
	// is also the unit of compaction. 0 means 64 MiB.
	PackSize int64
	// MaxBatch is the most puts (or deletes) that share one group commit.
	// 0 means 64.
	MaxBatch int
	// Now is the store's clock: touch times, the time of Open (which
	// touches every block held) and Stat.Now are read from it. nil means
	// time.Now. Tests give a fake clock so that touches differ without
	// waiting for the real one to move.
	Now func() time.Time
	// Observer, when not nil, is told of every sync the store makes
	// (fdatasync of its files, fsync of its directories); nil observes
	// nothing.
	Observer Observer

	// fs replaces the operating system's file system, for the crash and
	// fault-injection tests (fs.go). nil means osFS.
	fs fileSystem
}

// layoutImpl is what Store asks of a layout. Store serializes the operations
// on one hash: a layout never sees a put and a delete, or two puts, of the
// same hash at once, and never deletes a block it does not hold.
type layoutImpl interface {
	// put stores data under h and returns once it is durable. On error
	// nothing of the block remains.
	put(h storage.Hash, data []byte) error
	// get reads the stored bytes of h (size bytes), and says where they were
	// read from, for messages. A missing block is an fs.ErrNotExist.
	get(h storage.Hash, size int64) (data []byte, where string, err error)
	// del removes the blocks hs durably. It returns how many of hs, from the
	// first, are removed; on error the others are still held.
	del(hs []storage.Hash) (int, error)
	// close stops the layout's goroutines and closes its files.
	close() error
}

// Store is an on-disk storage.BlockStore. It is safe for concurrent use.
type Store struct {
	dir    string
	id     string
	quota  int64
	layout Layout
	log    *zap.Logger
	fsys   fileSystem
	lock   io.Closer
	impl   layoutImpl
	now    func() time.Time // Options.Now

	ops     sync.WaitGroup // operations inside impl; Close waits for them
	corrupt atomic.Int64   // blocks dropped as corrupt (Corrupt)

	mu struct {
		sync.Mutex
		blocks   map[storage.Hash]block // held blocks
		order    order                  // the keys of blocks, sorted, for List
		used     int64                  // sum of the blocks' sizes
		reserved int64                  // bytes of puts in progress
		// busy holds the hashes a put or a delete is working on; the
		// channel is closed when it is done.
		busy   map[storage.Hash]chan struct{}
		closed bool
	}
}

// block is what Store keeps in memory of a held block.
type block struct {
	size int64
	// touched is when Put or Has last touched the block, in Unix
	// nanoseconds of the store's clock; the time of Open for blocks held
	// since then. Kept in memory only.
	touched int64
}

var _ storage.BlockStore = (*Store)(nil)

// Open opens the store in dir, creating dir and a new store identity if
// needed. It locks dir against other processes, removes temporary files left
// by a crash and rebuilds the usage from what the directory holds.
func Open(dir string, opts Options) (*Store, error) {
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	fsys := opts.fs
	if fsys == nil {
		fsys = osFS{}
	}
	if opts.Observer != nil {
		fsys = observedFS{fsys, opts.Observer}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.PackSize <= 0 {
		opts.PackSize = defaultPackSize
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = defaultMaxBatch
	}
	switch opts.Layout {
	case "", LayoutPack, LayoutFiles:
	default:
		return nil, fmt.Errorf("disk: unknown layout %q", opts.Layout)
	}
	dir = filepath.Clean(dir)
	if _, err := fsys.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := fsys.MkdirAll(dir); err != nil {
			return nil, fmt.Errorf("disk: create store directory: %w", err)
		}
		if err := fsys.SyncDir(filepath.Dir(dir)); err != nil {
			return nil, fmt.Errorf("disk: create store directory: %w", err)
		}
	}
	lk, err := lockDir(fsys, dir)
	if err != nil {
		return nil, err
	}
	s := &Store{dir: dir, quota: opts.Quota, log: log.With(zap.String("dir", dir)), fsys: fsys, lock: lk, now: opts.Now}
	s.mu.blocks = make(map[storage.Hash]block)
	s.mu.busy = make(map[storage.Hash]chan struct{})
	if err := s.openMeta(opts.Layout); err != nil {
		lk.Close()
		return nil, err
	}
	// Every block held counts as touched now: touches are not kept on
	// disk, and a block a writer relied on before a restart must stay.
	opened := s.now().UnixNano()
	add := func(h storage.Hash, size int64) {
		s.mu.blocks[h] = block{size: size, touched: opened}
		s.mu.used += size
	}
	switch s.layout {
	case LayoutFiles:
		s.impl, err = openFiles(fsys, dir, opts.MaxBatch, s.log, add)
	default:
		s.impl, err = openPack(fsys, dir, opts, s.log, add)
	}
	if err != nil {
		lk.Close()
		return nil, err
	}
	hs := make([]storage.Hash, 0, len(s.mu.blocks))
	for h := range s.mu.blocks {
		hs = append(hs, h)
	}
	s.mu.order.reset(hs)
	s.log.Info("store opened", zap.String("id", s.id), zap.String("layout", string(s.layout)),
		zap.Int("blocks", len(s.mu.blocks)), zap.Int64("used", s.mu.used))
	return s, nil
}

// openMeta reads DIR/STORE, or writes it durably for a new store.
func (s *Store) openMeta(want Layout) error {
	path := filepath.Join(s.dir, metaName)
	removeTmp(s.fsys, s.log, s.dir, metaName+tmpMarker)
	b, err := readFile(s.fsys, path)
	if errors.Is(err, fs.ErrNotExist) {
		s.id = "st-" + randHex(6)
		s.layout = want
		if s.layout == "" {
			s.layout = DefaultLayout
		}
		meta := fmt.Sprintf("%s\nid %s\nlayout %s\n", metaMagic, s.id, s.layout)
		if err := writeFileDurable(s.fsys, path, []byte(meta)); err != nil {
			return fmt.Errorf("disk: write %s: %w", path, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("disk: read %s: %w", path, err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) != 3 || lines[0] != metaMagic ||
		!strings.HasPrefix(lines[1], "id st-") || !strings.HasPrefix(lines[2], "layout ") {
		return fmt.Errorf("disk: %s: not a ckpt-store metadata file", path)
	}
	s.id = strings.TrimPrefix(lines[1], "id ")
	s.layout = Layout(strings.TrimPrefix(lines[2], "layout "))
	if s.layout != LayoutPack && s.layout != LayoutFiles {
		return fmt.Errorf("disk: %s: unknown layout %q", path, s.layout)
	}
	if want != "" && want != s.layout {
		return fmt.Errorf("disk: store %s has layout %q, not %q", s.dir, s.layout, want)
	}
	return nil
}

// removeTmp removes the files of dir whose names start with prefix and
// contain tmpMarker: temporary files a crash left behind.
func removeTmp(fsys fileSystem, log *zap.Logger, dir, prefix string) {
	ents, _ := fsys.ReadDir(dir)
	for _, e := range ents {
		if n := e.Name(); strings.HasPrefix(n, prefix) && strings.Contains(n, tmpMarker) {
			if err := fsys.Remove(filepath.Join(dir, n)); err == nil {
				log.Info("removed leftover temporary file", zap.String("file", n))
			}
		}
	}
}

// ID returns the store's identity, kept in DIR/STORE.
func (s *Store) ID() string { return s.id }

// Layout returns the store's on-disk layout.
func (s *Store) Layout() Layout { return s.layout }

// Dir returns the store's directory.
func (s *Store) Dir() string { return s.dir }

// Put implements storage.BlockStore. It returns nil once the block is
// durable (see the package documentation for the sequence). A put of a
// block held touches it and returns at once.
func (s *Store) Put(ctx context.Context, h storage.Hash, data []byte) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if len(data) > storage.MaxBlockSize {
		return false, fmt.Errorf("disk: put %s: %d bytes: %w", h.Short(), len(data), storage.ErrTooLarge)
	}
	if storage.Sum(data) != h {
		return false, fmt.Errorf("disk: put %s: %w", h.Short(), storage.ErrHashMismatch)
	}
	n := int64(len(data))
	var done chan struct{}
	for done == nil {
		s.mu.Lock()
		if s.mu.closed {
			s.mu.Unlock()
			return false, fmt.Errorf("disk: put %s: %w", h.Short(), storage.ErrClosed)
		}
		if b, ok := s.mu.blocks[h]; ok {
			b.touched = s.now().UnixNano()
			s.mu.blocks[h] = b
			s.mu.Unlock()
			return false, nil
		}
		if busy := s.mu.busy[h]; busy != nil {
			s.mu.Unlock()
			select {
			case <-busy:
				continue
			case <-ctx.Done():
				return false, ctx.Err()
			}
		}
		if s.quota > 0 && s.mu.used+s.mu.reserved+n > s.quota {
			used, reserved := s.mu.used, s.mu.reserved
			s.mu.Unlock()
			return false, fmt.Errorf("disk: put %s (%d bytes, %d of %d used, %d reserved): %w",
				h.Short(), n, used, s.quota, reserved, storage.ErrQuotaExceeded)
		}
		s.mu.reserved += n
		done = make(chan struct{})
		s.mu.busy[h] = done
		s.ops.Add(1)
		s.mu.Unlock()
	}

	err := s.impl.put(h, data)

	s.mu.Lock()
	s.mu.reserved -= n
	delete(s.mu.busy, h)
	if err == nil {
		s.addLocked(h, block{size: n, touched: s.now().UnixNano()})
	}
	s.mu.Unlock()
	close(done)
	s.ops.Done()
	if err != nil {
		return false, fmt.Errorf("disk: put %s: %w", h.Short(), mapErr(err))
	}
	return true, nil
}

// Get implements storage.BlockStore. It re-hashes what it read and reports
// bytes that do not match as storage.ErrHashMismatch, naming the hash and
// the file they were read from.
func (s *Store) Get(ctx context.Context, h storage.Hash) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		return nil, fmt.Errorf("disk: get %s: %w", h.Short(), storage.ErrClosed)
	}
	b, ok := s.mu.blocks[h]
	if !ok {
		s.mu.Unlock()
		return nil, fmt.Errorf("disk: get %s: %w", h.Short(), storage.ErrNotFound)
	}
	s.ops.Add(1)
	s.mu.Unlock()
	defer s.ops.Done()

	data, where, err := s.impl.get(h, b.size)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("disk: get %s: %w", h.Short(), storage.ErrNotFound)
	}
	if err == nil && storage.Sum(data) != h {
		err = fmt.Errorf("%s: %w", where, storage.ErrHashMismatch)
	}
	if errors.Is(err, storage.ErrHashMismatch) {
		s.quarantine(h, err)
		return nil, fmt.Errorf("disk: get %s: %w (the copy is dropped; repair copies the block from another store)", h, err)
	}
	if err != nil {
		return nil, fmt.Errorf("disk: get %s: %w", h, err)
	}
	return data, nil
}

// quarantine drops a block whose stored bytes do not hash to its name:
// the store no longer says it holds it (Has), so the manager's repair
// sees the copy missing and makes a good one elsewhere, and a writer that
// puts the block again stores it afresh instead of counting the bad copy.
func (s *Store) quarantine(h storage.Hash, why error) {
	n, err := s.Delete(context.Background(), []storage.Hash{h}, time.Time{})
	s.log.Warn("corrupt block dropped: its bytes do not match its hash; the manager's repair copies it from another store",
		zap.String("block", h.String()), zap.NamedError("why", why), zap.Int64("freed", n), zap.Error(err))
	s.corrupt.Add(1)
}

// Corrupt counts the blocks dropped since Open because their bytes did
// not match their hash (by Get or Scrub).
func (s *Store) Corrupt() int64 { return s.corrupt.Load() }

// ScrubReport is what one Scrub pass found.
type ScrubReport struct {
	Checked int64 // blocks read and hashed
	Bytes   int64 // their bytes
	Corrupt int64 // dropped: their bytes did not match their hash
}

// Scrub reads every block the store holds, in hash order, and checks it
// against its hash, as Get does: a corrupt one is dropped (see
// quarantine), so that repair replaces it before a reader needs it. It
// reads at most bytesPerSecond (0: as fast as the disk goes) and stops
// when ctx ends, returning what it found so far. wait, if not nil, is
// called before each block and may block (the owner's desktop is busy);
// it returns ctx's error to stop.
func (s *Store) Scrub(ctx context.Context, bytesPerSecond int64, wait func(context.Context) error) (ScrubReport, error) {
	var rep ScrubReport
	start := time.Now()
	var after storage.Hash
	for {
		page, err := s.List(ctx, after, 1024)
		if err != nil {
			return rep, err
		}
		if len(page) == 0 {
			return rep, nil
		}
		after = page[len(page)-1]
		for _, h := range page {
			if wait != nil {
				if err := wait(ctx); err != nil {
					return rep, err
				}
			}
			data, err := s.Get(ctx, h)
			switch {
			case errors.Is(err, storage.ErrHashMismatch):
				rep.Corrupt++
			case errors.Is(err, storage.ErrNotFound):
				continue // deleted meanwhile
			case err != nil:
				return rep, err
			}
			rep.Checked++
			rep.Bytes += int64(len(data))
			if bytesPerSecond > 0 {
				// Throttle: the pass may not be ahead of its rate.
				ahead := time.Duration(float64(rep.Bytes)/float64(bytesPerSecond)*float64(time.Second)) - time.Since(start)
				if ahead > 0 {
					t := time.NewTimer(ahead)
					select {
					case <-t.C:
					case <-ctx.Done():
						t.Stop()
						return rep, ctx.Err()
					}
				}
			}
		}
	}
}

// Has implements storage.BlockStore. It touches the blocks it finds.
func (s *Store) Has(ctx context.Context, hs []storage.Hash) ([]bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return nil, fmt.Errorf("disk: has: %w", storage.ErrClosed)
	}
	now := s.now().UnixNano()
	out := make([]bool, len(hs))
	for i, h := range hs {
		if b, ok := s.mu.blocks[h]; ok {
			b.touched = now
			s.mu.blocks[h] = b
			out[i] = true
		}
	}
	return out, nil
}

// Delete implements storage.BlockStore. The freed bytes leave Stat.Used at
// once; the deletion is durable when Delete returns nil. The blocks are
// checked against notSince and taken out of the index in one hold of the
// store's lock, so a Has or Put of them sees them either held and touched
// (and then kept) or gone.
func (s *Store) Delete(ctx context.Context, hs []storage.Hash, notSince time.Time) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		return 0, fmt.Errorf("disk: delete: %w", storage.ErrClosed)
	}
	since := unixNanos(notSince)
	var (
		del   []storage.Hash
		infos []block
		freed int64
		done  = make(chan struct{})
	)
	for _, h := range hs {
		b, ok := s.mu.blocks[h]
		if !ok || s.mu.busy[h] != nil {
			continue // not held, or already being deleted
		}
		if !notSince.IsZero() && b.touched >= since {
			continue // touched since: a writer relies on it
		}
		s.removeLocked(h)
		s.mu.busy[h] = done
		freed += b.size
		del = append(del, h)
		infos = append(infos, b)
	}
	if len(del) == 0 {
		s.mu.Unlock()
		return 0, nil
	}
	s.ops.Add(1)
	s.mu.Unlock()

	n, err := s.impl.del(del)

	s.mu.Lock()
	for i, h := range del {
		delete(s.mu.busy, h)
		if i >= n {
			// Not removed: held again, with the touch it had.
			s.addLocked(h, infos[i])
			freed -= infos[i].size
		}
	}
	s.mu.Unlock()
	close(done)
	s.ops.Done()
	if err != nil {
		return freed, fmt.Errorf("disk: delete %d of %d blocks: %w", len(del)-n, len(del), mapErr(err))
	}
	return freed, nil
}

// List implements storage.BlockStore. It reads the store's sorted index of
// hashes: O(log n + max) for n blocks held (see order).
func (s *Store) List(ctx context.Context, after storage.Hash, max int) ([]storage.Hash, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return nil, fmt.Errorf("disk: list: %w", storage.ErrClosed)
	}
	if max <= 0 {
		return nil, nil
	}
	return s.mu.order.list(after, max), nil
}

// unixNanos returns t in Unix nanoseconds, clamped to the int64 range.
func unixNanos(t time.Time) int64 {
	switch {
	case t.Before(time.Unix(0, math.MinInt64)):
		return math.MinInt64
	case t.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// addLocked makes h held.
func (s *Store) addLocked(h storage.Hash, b block) {
	s.mu.blocks[h] = b
	s.mu.used += b.size
	s.mu.order.add(h)
}

// removeLocked makes h, held, no longer held.
func (s *Store) removeLocked(h storage.Hash) {
	s.mu.used -= s.mu.blocks[h].size
	delete(s.mu.blocks, h)
	s.mu.order.remove(h)
}

// Stat implements storage.BlockStore.
func (s *Store) Stat(ctx context.Context) (storage.Stat, error) {
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		return storage.Stat{}, fmt.Errorf("disk: stat: %w", storage.ErrClosed)
	}
	st := storage.Stat{ID: s.id, Usage: storage.Usage{Used: s.mu.used, Quota: s.quota, Blocks: int64(len(s.mu.blocks))}, Now: s.now()}
	s.mu.Unlock()
	free, err := s.fsys.DiskFree(s.dir)
	if err != nil {
		return storage.Stat{}, fmt.Errorf("disk: %w", err)
	}
	st.DiskFree = free
	return st, nil
}

// Close waits for the operations in progress, stops the store's goroutines,
// closes its files and releases the directory lock. Operations after Close
// fail with storage.ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		return nil
	}
	s.mu.closed = true
	s.mu.Unlock()
	s.ops.Wait()
	err := s.impl.close()
	if cerr := s.lock.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("disk: close %s: %w", s.dir, err)
	}
	return nil
}

// hexName reports whether name is the 64-digit lowercase hex form of a hash
// and returns it: the only names the store gives its block files.
func hexName(name string) (storage.Hash, bool) {
	h, err := storage.ParseHash(name)
	return h, err == nil && h.String() == name
}
