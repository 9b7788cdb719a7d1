package mount

import (
	"context"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/ckptio/ckptio/storage/manifest"
)

// Reserved names at the root of the mount: the read-only versions and
// the symlink to the newest one. A tree entry with one of these names at
// its root is not shown there (it is under versions/N/).
const (
	VersionsDir = "versions"
	LatestLink  = "latest"
)

// attrs is what every node of the writable tree keeps: permission bits
// and modification time. Atomic, so that writes need no lock to bump the
// time.
type attrs struct {
	mode  atomic.Uint32
	mtime atomic.Int64 // ns since the epoch
}

func (a *attrs) set(mode uint32, mtime int64) {
	a.mode.Store(mode & manifest.MaxMode)
	a.mtime.Store(mtime)
}

func (a *attrs) fill(out *fuse.Attr, typ uint32) {
	out.Mode = typ | a.mode.Load()
	t := time.Unix(0, a.mtime.Load())
	out.SetTimes(&t, &t, &t)
	out.Owner = fuse.Owner{Uid: uint32(syscall.Getuid()), Gid: uint32(syscall.Getgid())}
	out.Nlink = 1
}

// setattr applies mode and times of in (owners are not kept: a chown
// succeeds and changes nothing, so that tar and cp -p work as root).
func (a *attrs) setattr(in *fuse.SetAttrIn) {
	if m, ok := in.GetMode(); ok {
		a.mode.Store(m & manifest.MaxMode)
	}
	if in.Valid&fuse.FATTR_MTIME_NOW != 0 {
		a.mtime.Store(time.Now().UnixNano())
	} else if t, ok := in.GetMTime(); ok {
		a.mtime.Store(t.UnixNano())
	}
}

// dirNode is a directory of the writable tree. Its children (kids) are
// the tree the commits read, guarded by FS.ns; go-fuse's own children
// mirror them.
type dirNode struct {
	fs.Inode
	f *FS
	attrs
	kids map[string]fs.InodeEmbedder // *dirNode, *fileNode, *linkNode
}

// fileNode is a regular file of the writable tree.
type fileNode struct {
	fs.Inode
	f *FS
	attrs
	c *content
	// Guarded by FS.ns: the file's data as the last version holds them
	// (committed), whether a close or fsync asked for a commit since
	// (pendGen: the request's generation; 0 = none), open handles, and
	// whether the file was removed.
	committed    []manifest.Block
	hasCommitted bool
	cmtime       int64 // the mtime the last version holds
	pendGen      int64
	open         int
	removed      bool
}

// linkNode is a symlink of the writable tree.
type linkNode struct {
	fs.Inode
	f *FS
	attrs
	target string
}

func newDir(f *FS, mode uint32, mtime int64) *dirNode {
	d := &dirNode{f: f, kids: map[string]fs.InodeEmbedder{}}
	d.set(mode, mtime)
	return d
}

func newFile(f *FS, mode uint32, mtime int64, blocks []manifest.Block) *fileNode {
	n := &fileNode{f: f, c: newContent(f, blocks)}
	n.set(mode, mtime)
	return n
}

// fill builds the tree of a version under d (the root, before mounting).
func (d *dirNode) fill(tree []manifest.File) {
	for _, e := range tree {
		dir, name := path.Split(e.Object)
		parent := d.mkdirAll(strings.TrimSuffix(dir, "/"))
		if parent == d && (name == VersionsDir || name == LatestLink) {
			d.f.log.Warn("the tree has an entry named like the mount's own at its root; it is only under versions/")
			continue
		}
		switch e.Type {
		case manifest.TypeDir:
			sub := parent.mkdirAll(name)
			sub.set(e.Mode, e.MTime)
		case manifest.TypeSymlink:
			l := &linkNode{f: d.f, target: e.Target}
			l.set(e.Mode, e.MTime)
			parent.kids[name] = l
		default:
			n := newFile(d.f, e.Mode, e.MTime, e.Blocks)
			n.committed, n.hasCommitted, n.cmtime = e.Blocks, true, e.MTime
			parent.kids[name] = n
		}
	}
}

// mkdirAll returns the directory at rel (slash-separated) under d,
// making the missing ones with mode 0755.
func (d *dirNode) mkdirAll(rel string) *dirNode {
	if rel == "" {
		return d
	}
	cur := d
	for _, name := range strings.Split(rel, "/") {
		next, ok := cur.kids[name].(*dirNode)
		if !ok {
			next = newDir(d.f, 0o755, time.Now().UnixNano())
			cur.kids[name] = next
		}
		cur = next
	}
	return cur
}

// OnAdd attaches the children of a directory built by fill to go-fuse's
// tree; at the root, also versions/ and latest.
func (d *dirNode) OnAdd(ctx context.Context) {
	for name, k := range d.kids {
		d.AddChild(name, d.NewPersistentInode(ctx, k, fs.StableAttr{Mode: modeOf(k)}), false)
	}
	if d == d.f.root {
		d.AddChild(VersionsDir, d.NewPersistentInode(ctx, d.f.vers, fs.StableAttr{Mode: syscall.S_IFDIR}), false)
		if d.f.c.latestVersion() > 0 {
			d.f.addLatest(ctx)
		}
	}
}

// addLatest adds the latest symlink to the root once there is a version.
func (f *FS) addLatest(ctx context.Context) {
	f.latestOnce.Do(func() {
		f.root.AddChild(LatestLink, f.root.NewPersistentInode(ctx, &latestNode{f: f}, fs.StableAttr{Mode: syscall.S_IFLNK}), false)
	})
}

func modeOf(n fs.InodeEmbedder) uint32 {
	switch n.(type) {
	case *dirNode:
		return syscall.S_IFDIR
	case *linkNode:
		return syscall.S_IFLNK
	}
	return syscall.S_IFREG
}

var (
	_ fs.NodeGetattrer = (*dirNode)(nil)
	_ fs.NodeSetattrer = (*dirNode)(nil)
	_ fs.NodeCreater   = (*dirNode)(nil)
	_ fs.NodeMkdirer   = (*dirNode)(nil)
	_ fs.NodeSymlinker = (*dirNode)(nil)
	_ fs.NodeUnlinker  = (*dirNode)(nil)
	_ fs.NodeRmdirer   = (*dirNode)(nil)
	_ fs.NodeRenamer   = (*dirNode)(nil)
	_ fs.NodeStatfser  = (*dirNode)(nil)
	_ fs.NodeOnAdder   = (*dirNode)(nil)
)

func (d *dirNode) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	d.fill2(&out.Attr)
	return 0
}

func (d *dirNode) fill2(out *fuse.Attr) {
	d.attrs.fill(out, syscall.S_IFDIR)
	out.Size = 4096
	out.Nlink = 2
}

func (d *dirNode) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if e := d.f.c.takeAsyncErr(); e != 0 {
		return e
	}
	d.setattr(in)
	d.f.c.touch()
	d.fill2(&out.Attr)
	return 0
}

func (d *dirNode) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	d.f.statfs(out)
	return 0
}

// checkName refuses a name the tree cannot hold: one a manifest path
// cannot carry, or a reserved name at the root.
func (d *dirNode) checkName(name string) syscall.Errno {
	if d == d.f.root && (name == VersionsDir || name == LatestLink) {
		return syscall.EEXIST
	}
	if manifest.CheckPath(name) != nil || strings.Contains(name, "/") || !utf8.ValidString(name) {
		return syscall.EINVAL
	}
	return 0
}

// bumped marks d changed: a child was added, removed or renamed.
func (d *dirNode) bumped() {
	d.mtime.Store(time.Now().UnixNano())
	d.f.c.touch()
}

func (d *dirNode) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	if e := d.checkName(name); e != 0 {
		return nil, nil, 0, e
	}
	if e := d.f.c.takeAsyncErr(); e != 0 {
		return nil, nil, 0, e
	}
	d.f.ns.Lock()
	defer d.f.ns.Unlock()
	if _, ok := d.kids[name]; ok {
		return nil, nil, 0, syscall.EEXIST
	}
	n := newFile(d.f, mode, time.Now().UnixNano(), nil)
	ino := d.NewPersistentInode(ctx, n, fs.StableAttr{Mode: syscall.S_IFREG})
	d.kids[name] = n
	n.open++
	d.bumped()
	n.fillAttr(&out.Attr)
	return ino, n.newHandle(flags), 0, 0
}

func (d *dirNode) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if e := d.checkName(name); e != 0 {
		return nil, e
	}
	if e := d.f.c.takeAsyncErr(); e != 0 {
		return nil, e
	}
	d.f.ns.Lock()
	defer d.f.ns.Unlock()
	if _, ok := d.kids[name]; ok {
		return nil, syscall.EEXIST
	}
	sub := newDir(d.f, mode, time.Now().UnixNano())
	ino := d.NewPersistentInode(ctx, sub, fs.StableAttr{Mode: syscall.S_IFDIR})
	d.kids[name] = sub
	d.bumped()
	sub.fill2(&out.Attr)
	return ino, 0
}

func (d *dirNode) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if e := d.checkName(name); e != 0 {
		return nil, e
	}
	if target == "" || !utf8.ValidString(target) || strings.ContainsRune(target, 0) {
		return nil, syscall.EINVAL
	}
	d.f.ns.Lock()
	defer d.f.ns.Unlock()
	if _, ok := d.kids[name]; ok {
		return nil, syscall.EEXIST
	}
	l := &linkNode{f: d.f, target: target}
	l.set(0o777, time.Now().UnixNano())
	ino := d.NewPersistentInode(ctx, l, fs.StableAttr{Mode: syscall.S_IFLNK})
	d.kids[name] = l
	d.bumped()
	l.fillAttr(&out.Attr)
	return ino, 0
}

func (d *dirNode) Unlink(ctx context.Context, name string) syscall.Errno {
	d.f.ns.Lock()
	defer d.f.ns.Unlock()
	k, ok := d.kids[name]
	switch {
	case !ok:
		return syscall.ENOENT
	case modeOf(k) == syscall.S_IFDIR:
		return syscall.EISDIR
	}
	delete(d.kids, name)
	removed(k)
	d.bumped()
	return 0
}

// removed lets go of a node taken out of the tree (called with FS.ns
// held): a file's content once its last handle is closed.
func removed(k fs.InodeEmbedder) {
	if n, ok := k.(*fileNode); ok {
		n.removed = true
		if n.open == 0 {
			go n.c.discard()
		}
	}
}

func (d *dirNode) Rmdir(ctx context.Context, name string) syscall.Errno {
	d.f.ns.Lock()
	defer d.f.ns.Unlock()
	k, ok := d.kids[name]
	if !ok {
		return syscall.ENOENT
	}
	sub, isDir := k.(*dirNode)
	switch {
	case !isDir:
		return syscall.ENOTDIR
	case len(sub.kids) > 0:
		return syscall.ENOTEMPTY
	}
	delete(d.kids, name)
	d.bumped()
	return 0
}

func (d *dirNode) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	to, ok := newParent.(*dirNode)
	if !ok {
		return syscall.EROFS
	}
	if e := to.checkName(newName); e != 0 {
		return e
	}
	if flags&^uint32(renameNoReplace) != 0 {
		return syscall.EINVAL // RENAME_EXCHANGE, RENAME_WHITEOUT
	}
	d.f.ns.Lock()
	defer d.f.ns.Unlock()
	k, ok := d.kids[name]
	if !ok {
		return syscall.ENOENT
	}
	if old, exists := to.kids[newName]; exists {
		if old == k {
			return 0
		}
		if flags&renameNoReplace != 0 {
			return syscall.EEXIST
		}
		oldDir, oldIsDir := old.(*dirNode)
		_, isDir := k.(*dirNode)
		switch {
		case oldIsDir && !isDir:
			return syscall.EISDIR
		case !oldIsDir && isDir:
			return syscall.ENOTDIR
		case oldIsDir && len(oldDir.kids) > 0:
			return syscall.ENOTEMPTY
		}
		removed(old)
	}
	delete(d.kids, name)
	to.kids[newName] = k
	d.bumped()
	to.bumped()
	return 0
}

var (
	_ fs.NodeGetattrer = (*fileNode)(nil)
	_ fs.NodeSetattrer = (*fileNode)(nil)
	_ fs.NodeOpener    = (*fileNode)(nil)
	_ fs.NodeReader    = (*fileNode)(nil)
	_ fs.NodeWriter    = (*fileNode)(nil)
	_ fs.NodeFlusher   = (*fileNode)(nil)
	_ fs.NodeFsyncer   = (*fileNode)(nil)
	_ fs.NodeReleaser  = (*fileNode)(nil)
)

func (n *fileNode) fillAttr(out *fuse.Attr) {
	n.attrs.fill(out, syscall.S_IFREG)
	size := n.c.Size()
	out.Size = uint64(size)
	out.Blocks = uint64(size+511) / 512
	out.Blksize = 1 << 20
}

func (n *fileNode) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.fillAttr(&out.Attr)
	return 0
}

func (n *fileNode) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if e := n.f.c.takeAsyncErr(); e != 0 {
		return e
	}
	if sz, ok := in.GetSize(); ok {
		if err := n.c.Truncate(int64(sz)); err != nil {
			return n.f.fail("truncate", err)
		}
		n.mtime.Store(time.Now().UnixNano())
	}
	n.setattr(in)
	n.f.c.touch()
	n.fillAttr(&out.Attr)
	return 0
}

// handle is an open file of the writable tree.
type handle struct {
	write, appending bool
	rd               *fetcher
	once             sync.Once
}

func (n *fileNode) newHandle(flags uint32) *handle {
	acc := flags & syscall.O_ACCMODE
	return &handle{write: acc == syscall.O_WRONLY || acc == syscall.O_RDWR, appending: flags&syscall.O_APPEND != 0,
		rd: newFetcher(n.f, "")}
}

func (n *fileNode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	h := n.newHandle(flags)
	if h.write {
		if e := n.f.c.takeAsyncErr(); e != 0 {
			return nil, 0, e
		}
		if flags&syscall.O_TRUNC != 0 {
			if err := n.c.Truncate(0); err != nil {
				return nil, 0, n.f.fail("truncate", err)
			}
			n.mtime.Store(time.Now().UnixNano())
		}
	}
	n.f.ns.Lock()
	n.open++
	n.f.ns.Unlock()
	return h, 0, 0
}

func (n *fileNode) Read(ctx context.Context, fh fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	h, ok := fh.(*handle)
	if !ok {
		return nil, syscall.EBADF
	}
	k, err := n.c.ReadAt(h.rd, dest, off)
	if err != nil {
		return nil, n.f.fail("read", err)
	}
	return fuse.ReadResultData(dest[:k]), 0
}

func (n *fileNode) Write(ctx context.Context, fh fs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	h, ok := fh.(*handle)
	if !ok || !h.write {
		return 0, syscall.EBADF
	}
	if e := n.f.c.takeAsyncErr(); e != 0 {
		return 0, e
	}
	if _, err := n.c.Write(data, off, h.appending); err != nil {
		return 0, n.f.fail("write", err)
	}
	n.mtime.Store(time.Now().UnixNano())
	return uint32(len(data)), 0
}

// Flush is close(2) of a descriptor: a file written through it (or new)
// is committed; close returns once the version is, unless asynchronous.
func (n *fileNode) Flush(ctx context.Context, fh fs.FileHandle) syscall.Errno {
	if h, ok := fh.(*handle); !ok || !h.write {
		return 0
	}
	return n.sync()
}

// Fsync commits the file as Flush does, through any descriptor.
func (n *fileNode) Fsync(ctx context.Context, fh fs.FileHandle, flags uint32) syscall.Errno {
	return n.sync()
}

// sync asks for a commit of the file if it changed since the last one
// (or never was), and waits for it unless asynchronous.
func (n *fileNode) sync() syscall.Errno {
	if err := n.c.Broken(); err != nil {
		return n.f.fail("close", err)
	}
	n.f.ns.Lock()
	changed := n.c.Changed()
	if !changed && !n.hasCommitted && n.pendGen == 0 && n.c.Size() == 0 {
		// A new empty file (touch, or a shell's redirection closing its
		// first descriptor before writing) is a change of names: it is
		// in the next version, and makes none of its own.
		n.hasCommitted = true
		n.f.c.touch()
	}
	need := changed || !n.hasCommitted || n.pendGen > 0
	removed := n.removed
	n.f.ns.Unlock()
	if !need || removed {
		return 0
	}
	done := n.f.c.request(n)
	if n.f.opts.Async {
		return 0
	}
	if err := <-done; err != nil {
		return n.f.fail("commit", err)
	}
	return 0
}

func (n *fileNode) Release(ctx context.Context, fh fs.FileHandle) syscall.Errno {
	if h, ok := fh.(*handle); ok {
		h.once.Do(h.rd.close)
	}
	n.f.ns.Lock()
	n.open--
	gone := n.removed && n.open == 0
	n.f.ns.Unlock()
	if gone {
		go n.c.discard()
	}
	return 0
}

var (
	_ fs.NodeGetattrer  = (*linkNode)(nil)
	_ fs.NodeSetattrer  = (*linkNode)(nil)
	_ fs.NodeReadlinker = (*linkNode)(nil)
)

func (l *linkNode) fillAttr(out *fuse.Attr) {
	l.attrs.fill(out, syscall.S_IFLNK)
	out.Size = uint64(len(l.target))
}

func (l *linkNode) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	l.fillAttr(&out.Attr)
	return 0
}

func (l *linkNode) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	l.setattr(in)
	l.f.c.touch()
	l.fillAttr(&out.Attr)
	return 0
}

func (l *linkNode) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	return []byte(l.target), 0
}

// allBlocks returns the stored blocks of every file under d.
func (d *dirNode) allBlocks() []manifest.Block {
	var out []manifest.Block
	for _, k := range d.kids {
		switch k := k.(type) {
		case *dirNode:
			out = append(out, k.allBlocks()...)
		case *fileNode:
			out = append(out, k.committed...)
		}
	}
	return out
}

// renameNoReplace is renameat2's RENAME_NOREPLACE.
const renameNoReplace = 0x1
