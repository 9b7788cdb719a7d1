package disk

import (
	"errors"
	"io"
	"io/fs"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// memFS is an in-memory fileSystem that remembers what has been made
// durable, modelled on pebble's strict MemFS (vfs.NewStrictMem): a file's
// contents are durable as of its last SyncData, a directory's entries (the
// creates, renames and removes in it) as of its last SyncDir. crashClone
// returns a new memFS holding only that, which is what a power cut at that
// moment would leave; the store goes on working on the original.
//
// It lives in a test file, not in an exported subpackage: only this
// package's tests need it, and fileSystem, which it implements, is
// unexported so that it can follow what the store calls (see fs.go).
//
// One mutex guards the whole tree; the store's calls are short.
type memFS struct {
	// beforeSync, when set, is called at the start of every SyncData,
	// outside the lock: a test cuts the power there, with a batch
	// written and not yet synced.
	beforeSync atomic.Pointer[func()]

	mu    sync.Mutex
	root  *memNode
	locks map[string]bool // Lock names held
}

// memNode is a file or a directory. A node is shared by every name that
// refers to it, as an inode is.
type memNode struct {
	dir bool

	// A file: its contents now, as of its last SyncData, and the writes
	// and truncations since then, in order.
	data    []byte
	synced  []byte
	pending []memOp

	// A directory: its entries now and as of its last SyncDir.
	children       map[string]*memNode
	syncedChildren map[string]*memNode
}

// memOp is a write (data at off) or, with data nil, a truncation to off.
type memOp struct {
	off  int64
	data []byte
}

func newMemFS() *memFS {
	return &memFS{root: newMemDir(), locks: make(map[string]bool)}
}

func newMemDir() *memNode {
	return &memNode{dir: true, children: map[string]*memNode{}, syncedChildren: map[string]*memNode{}}
}

// crashClone returns what a power cut now would leave of m: every file's
// contents as of its last SyncData and every directory's entries as of its
// last SyncDir, reachable from the root through durable entries only.
//
// With rng nil the clone is strict: nothing written since the last sync
// survives. With rng, each file also keeps a random prefix of its writes
// since then, the last of them possibly torn (cut at a random byte), as
// when the page cache had written some of them back: the tails a crash
// can leave. Directory entries are strict either way.
func (m *memFS) crashClone(rng *rand.Rand) *memFS {
	m.mu.Lock()
	defer m.mu.Unlock()
	copies := make(map[*memNode]*memNode)
	var clone func(n *memNode) *memNode
	clone = func(n *memNode) *memNode {
		if c, ok := copies[n]; ok {
			return c // another durable name for the same node
		}
		if n.dir {
			c := newMemDir()
			copies[n] = c
			for name, child := range n.syncedChildren {
				c.children[name] = clone(child)
				c.syncedChildren[name] = c.children[name]
			}
			return c
		}
		data := slices.Clone(n.synced)
		if rng != nil && len(n.pending) > 0 {
			keep := rng.Intn(len(n.pending) + 1)
			for i, op := range n.pending[:keep] {
				b := op.data
				if i == keep-1 && b != nil {
					b = b[:rng.Intn(len(b)+1)]
				}
				data = applyOp(data, memOp{off: op.off, data: b})
			}
		}
		c := &memNode{data: data, synced: slices.Clone(data)}
		copies[n] = c
		return c
	}
	return &memFS{root: clone(m.root), locks: make(map[string]bool)}
}

// applyOp returns data with op done to it.
func applyOp(data []byte, op memOp) []byte {
	if op.data == nil {
		if op.off <= int64(len(data)) {
			return data[:op.off]
		}
		return append(data, make([]byte, op.off-int64(len(data)))...)
	}
	if end := op.off + int64(len(op.data)); end > int64(len(data)) {
		data = append(data, make([]byte, end-int64(len(data)))...)
	}
	copy(data[op.off:], op.data)
	return data
}

// split returns the cleaned path's components below the root.
func split(name string) []string {
	name = filepath.Clean("/" + name)
	if name == "/" {
		return nil
	}
	return strings.Split(name[1:], "/")
}

// lookupLocked returns the node at name.
func (m *memFS) lookupLocked(op, name string) (*memNode, error) {
	n := m.root
	for _, c := range split(name) {
		if !n.dir {
			return nil, &fs.PathError{Op: op, Path: name, Err: syscall.ENOTDIR}
		}
		if n = n.children[c]; n == nil {
			return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
		}
	}
	return n, nil
}

// parentLocked returns the directory holding name and name's last
// component.
func (m *memFS) parentLocked(op, name string) (*memNode, string, error) {
	cs := split(name)
	if len(cs) == 0 {
		return nil, "", &fs.PathError{Op: op, Path: name, Err: syscall.EINVAL}
	}
	d, err := m.lookupLocked(op, filepath.Dir(filepath.Clean("/"+name)))
	if err != nil {
		return nil, "", err
	}
	if !d.dir {
		return nil, "", &fs.PathError{Op: op, Path: name, Err: syscall.ENOTDIR}
	}
	return d, cs[len(cs)-1], nil
}

func (m *memFS) Create(name string) (fsFile, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, base, err := m.parentLocked("open", name)
	if err != nil {
		return nil, err
	}
	if d.children[base] != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrExist}
	}
	n := &memNode{}
	d.children[base] = n
	return &memFile{fs: m, n: n, name: name, write: true}, nil
}

func (m *memFS) OpenReadWrite(name string) (fsFile, error) { return m.open(name, true) }

func (m *memFS) Open(name string) (fsFile, error) { return m.open(name, false) }

func (m *memFS) open(name string, write bool) (fsFile, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.lookupLocked("open", name)
	if err != nil {
		return nil, err
	}
	if n.dir {
		return nil, &fs.PathError{Op: "open", Path: name, Err: syscall.EISDIR}
	}
	return &memFile{fs: m, n: n, name: name, write: write}, nil
}

func (m *memFS) Rename(oldname, newname string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	od, obase, err := m.parentLocked("rename", oldname)
	if err == nil {
		var nd *memNode
		var nbase string
		if nd, nbase, err = m.parentLocked("rename", newname); err == nil {
			n := od.children[obase]
			switch {
			case n == nil:
				err = fs.ErrNotExist
			case nd.children[nbase] != nil && nd.children[nbase].dir:
				err = syscall.EISDIR
			default:
				delete(od.children, obase)
				nd.children[nbase] = n
				return nil
			}
		}
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: err}
}

func (m *memFS) Remove(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, base, err := m.parentLocked("remove", name)
	if err != nil {
		return err
	}
	n := d.children[base]
	switch {
	case n == nil:
		return &fs.PathError{Op: "remove", Path: name, Err: fs.ErrNotExist}
	case n.dir && len(n.children) > 0:
		return &fs.PathError{Op: "remove", Path: name, Err: syscall.ENOTEMPTY}
	}
	delete(d.children, base)
	return nil
}

func (m *memFS) Mkdir(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mkdirLocked(name)
}

func (m *memFS) mkdirLocked(name string) error {
	d, base, err := m.parentLocked("mkdir", name)
	if err != nil {
		return err
	}
	if d.children[base] != nil {
		return &fs.PathError{Op: "mkdir", Path: name, Err: fs.ErrExist}
	}
	d.children[base] = newMemDir()
	return nil
}

func (m *memFS) MkdirAll(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	path := ""
	for _, c := range split(name) {
		path += "/" + c
		n, err := m.lookupLocked("mkdir", path)
		if errors.Is(err, fs.ErrNotExist) {
			err = m.mkdirLocked(path)
		} else if err == nil && !n.dir {
			err = &fs.PathError{Op: "mkdir", Path: path, Err: syscall.ENOTDIR}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (m *memFS) ReadDir(name string) ([]fs.DirEntry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, err := m.lookupLocked("readdirent", name)
	if err != nil {
		return nil, err
	}
	if !d.dir {
		return nil, &fs.PathError{Op: "readdirent", Path: name, Err: syscall.ENOTDIR}
	}
	out := make([]fs.DirEntry, 0, len(d.children))
	for n, c := range d.children {
		out = append(out, fs.FileInfoToDirEntry(c.infoLocked(n)))
	}
	slices.SortFunc(out, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return out, nil
}

func (m *memFS) Stat(name string) (fs.FileInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.lookupLocked("stat", name)
	if err != nil {
		return nil, err
	}
	return n.infoLocked(filepath.Base(name)), nil
}

func (m *memFS) SyncDir(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, err := m.lookupLocked("fsync", name)
	if err != nil {
		return err
	}
	if !d.dir {
		return &fs.PathError{Op: "fsync", Path: name, Err: syscall.ENOTDIR}
	}
	d.syncedChildren = make(map[string]*memNode, len(d.children))
	for n, c := range d.children {
		d.syncedChildren[n] = c
	}
	return nil
}

func (m *memFS) Lock(name string) (io.Closer, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	key := filepath.Clean("/" + name)
	if _, err := m.lookupLocked("open", name); errors.Is(err, fs.ErrNotExist) {
		d, base, err := m.parentLocked("open", name)
		if err != nil {
			return nil, err
		}
		d.children[base] = &memNode{}
	} else if err != nil {
		return nil, err
	}
	if m.locks[key] {
		return nil, errLocked
	}
	m.locks[key] = true
	return memLock{m, key}, nil
}

type memLock struct {
	fs  *memFS
	key string
}

func (l memLock) Close() error {
	l.fs.mu.Lock()
	defer l.fs.mu.Unlock()
	delete(l.fs.locks, l.key)
	return nil
}

func (m *memFS) DiskFree(dir string) (int64, error) {
	if _, err := m.Stat(dir); err != nil {
		return 0, err
	}
	return 1 << 40, nil
}

// files returns the path of every file in m, sorted.
func (m *memFS) files() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	var walk func(dir string, n *memNode)
	walk = func(dir string, n *memNode) {
		for name, c := range n.children {
			if c.dir {
				walk(dir+"/"+name, c)
			} else {
				out = append(out, dir+"/"+name)
			}
		}
	}
	walk("", m.root)
	slices.Sort(out)
	return out
}

func (n *memNode) infoLocked(name string) fs.FileInfo {
	return memInfo{name: name, size: int64(len(n.data)), dir: n.dir}
}

type memInfo struct {
	name string
	size int64
	dir  bool
}

func (i memInfo) Name() string       { return i.name }
func (i memInfo) Size() int64        { return i.size }
func (i memInfo) ModTime() time.Time { return time.Time{} }
func (i memInfo) IsDir() bool        { return i.dir }
func (i memInfo) Sys() any           { return nil }
func (i memInfo) Mode() fs.FileMode {
	if i.dir {
		return fs.ModeDir | 0o755
	}
	return 0o644
}

// memFile is an open file of a memFS.
type memFile struct {
	fs     *memFS
	n      *memNode
	name   string
	write  bool
	off    int64 // for Read and Write
	closed bool
}

func (f *memFile) checkLocked(op string, write bool) error {
	switch {
	case f.closed:
		return &fs.PathError{Op: op, Path: f.name, Err: fs.ErrClosed}
	case write && !f.write:
		return &fs.PathError{Op: op, Path: f.name, Err: syscall.EBADF}
	}
	return nil
}

func (f *memFile) Name() string { return f.name }

func (f *memFile) Read(b []byte) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	n, err := f.readAtLocked(b, f.off)
	f.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

func (f *memFile) ReadAt(b []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	return f.readAtLocked(b, off)
}

func (f *memFile) readAtLocked(b []byte, off int64) (int, error) {
	if err := f.checkLocked("read", false); err != nil {
		return 0, err
	}
	if off >= int64(len(f.n.data)) {
		return 0, io.EOF
	}
	n := copy(b, f.n.data[off:])
	if n < len(b) {
		return n, io.EOF
	}
	return n, nil
}

func (f *memFile) Write(b []byte) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	n, err := f.writeAtLocked(b, f.off)
	f.off += int64(n)
	return n, err
}

func (f *memFile) WriteAt(b []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	return f.writeAtLocked(b, off)
}

func (f *memFile) writeAtLocked(b []byte, off int64) (int, error) {
	if err := f.checkLocked("write", true); err != nil {
		return 0, err
	}
	op := memOp{off: off, data: slices.Clone(b)}
	if op.data == nil {
		op.data = []byte{}
	}
	f.n.data = applyOp(f.n.data, op)
	f.n.pending = append(f.n.pending, op)
	return len(b), nil
}

func (f *memFile) Truncate(size int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkLocked("truncate", true); err != nil {
		return err
	}
	op := memOp{off: size}
	f.n.data = applyOp(f.n.data, op)
	f.n.pending = append(f.n.pending, op)
	return nil
}

func (f *memFile) SyncData() error {
	if hook := f.fs.beforeSync.Load(); hook != nil {
		(*hook)()
	}
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkLocked("fdatasync", false); err != nil {
		return err
	}
	f.n.synced = slices.Clone(f.n.data)
	f.n.pending = nil
	return nil
}

func (f *memFile) Stat() (fs.FileInfo, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkLocked("stat", false); err != nil {
		return nil, err
	}
	return f.n.infoLocked(filepath.Base(f.name)), nil
}

func (f *memFile) Close() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkLocked("close", false); err != nil {
		return err
	}
	f.closed = true
	return nil
}
