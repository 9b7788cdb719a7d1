package mount

import (
	"context"
	"fmt"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/ckptio/ckptio/storage/manifest"
	"github.com/ckptio/ckptio/storage/tree"
)

// listEvery is how old the list of versions may get before versions/ or
// latest asks the manager again (versions committed through the mount
// are known at once).
const listEvery = time.Second

// versionsNode is versions/: a directory per committed version of the
// job, read-only.
type versionsNode struct {
	fs.Inode
	fs *FS

	mu     sync.Mutex
	list   []int64 // ascending
	listed time.Time
	// opening serializes the first lookups of versions, so that each is
	// opened once.
	opening sync.Mutex
}

// versions returns the job's version numbers, asking the manager when
// the list is older than maxAge.
func (v *versionsNode) versions(maxAge time.Duration) ([]int64, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if time.Since(v.listed) < maxAge {
		return v.list, nil
	}
	ctx, cancel := v.fs.ctx()
	defer cancel()
	infos, err := v.fs.list.Versions(ctx, v.fs.job.Name)
	if err != nil && !isNoJob(err) {
		return v.list, err
	}
	list := make([]int64, 0, len(infos))
	for _, vi := range infos {
		list = append(list, vi.Version)
	}
	sort.Slice(list, func(i, j int) bool { return list[i] < list[j] })
	v.list, v.listed = list, time.Now()
	if n := len(list); n > 0 {
		v.fs.c.sawLatest(list[n-1])
	}
	return list, nil
}

// added records a version committed through the mount.
func (v *versionsNode) added(n int64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if i, found := slices.BinarySearch(v.list, n); !found {
		v.list = slices.Insert(v.list, i, n)
	}
}

var (
	_ fs.NodeReaddirer = (*versionsNode)(nil)
	_ fs.NodeLookuper  = (*versionsNode)(nil)
	_ fs.NodeGetattrer = (*versionsNode)(nil)
)

func (v *versionsNode) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFDIR | 0o555
	out.Nlink = 2
	t := v.fs.started
	out.SetTimes(&t, &t, &t)
	out.Owner = fuse.Owner{Uid: uint32(syscall.Getuid()), Gid: uint32(syscall.Getgid())}
	return 0
}

func (v *versionsNode) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	list, err := v.versions(0)
	if err != nil {
		return nil, v.fs.fail("listing versions", err)
	}
	out := make([]fuse.DirEntry, len(list))
	for i, n := range list {
		out[i] = fuse.DirEntry{Name: strconv.FormatInt(n, 10), Mode: syscall.S_IFDIR}
	}
	return fs.NewListDirStream(out), 0
}

func (v *versionsNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	n, err := strconv.ParseInt(name, 10, 64)
	if err != nil || n <= 0 || strconv.FormatInt(n, 10) != name {
		return nil, syscall.ENOENT
	}
	v.opening.Lock()
	defer v.opening.Unlock()
	if ch := v.GetChild(name); ch != nil {
		ch.Operations().(*snapDir).fillAttr(&out.Attr)
		return ch, 0
	}
	list, _ := v.versions(listEvery)
	if _, found := slices.BinarySearch(list, n); !found {
		var err error
		if list, err = v.versions(0); err != nil {
			return nil, v.fs.fail("listing versions", err)
		}
		if _, found := slices.BinarySearch(list, n); !found {
			return nil, syscall.ENOENT
		}
	}
	octx, cancel := v.fs.ctx()
	defer cancel()
	s, err := v.fs.job.Open(octx, n)
	if err != nil {
		if isNoJob(err) {
			return nil, syscall.ENOENT
		}
		return nil, v.fs.fail(fmt.Sprintf("opening version %d", n), err)
	}
	root, err := snapTree(v.fs, s.Manifest())
	if err != nil {
		return nil, v.fs.fail(fmt.Sprintf("opening version %d", n), err)
	}
	root.fillAttr(&out.Attr)
	return v.NewPersistentInode(ctx, root, fs.StableAttr{Mode: syscall.S_IFDIR}), 0
}

// Writes under versions/ are refused: it is read-only.
func (v *versionsNode) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}
func (v *versionsNode) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	return nil, nil, 0, syscall.EROFS
}
func (v *versionsNode) Rmdir(ctx context.Context, name string) syscall.Errno  { return syscall.EROFS }
func (v *versionsNode) Unlink(ctx context.Context, name string) syscall.Errno { return syscall.EROFS }
func (v *versionsNode) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return syscall.EROFS
}

// latestNode is the latest symlink: versions/ followed by the newest
// version's number.
type latestNode struct {
	fs.Inode
	f *FS
}

var _ fs.NodeReadlinker = (*latestNode)(nil)

func (l *latestNode) target() string {
	l.f.vers.versions(listEvery) // an error keeps the newest known
	return VersionsDir + "/" + strconv.FormatInt(l.f.c.latestVersion(), 10)
}

func (l *latestNode) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	return []byte(l.target()), 0
}

func (l *latestNode) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFLNK | 0o777
	out.Size = uint64(len(l.target()))
	t := l.f.started
	out.SetTimes(&t, &t, &t)
	out.Owner = fuse.Owner{Uid: uint32(syscall.Getuid()), Gid: uint32(syscall.Getgid())}
	return 0
}

// snapDir is a directory of a committed version.
type snapDir struct {
	fs.Inode
	f    *FS
	e    manifest.Entry
	kids map[string]fs.InodeEmbedder
}

// snapFile is a regular file of a committed version.
type snapFile struct {
	fs.Inode
	f    *FS
	file manifest.File
}

// snapLink is a symlink of a committed version.
type snapLink struct {
	fs.Inode
	e manifest.Entry
}

// snapTree builds the tree of a version as 'ckpt restore' writes it
// (tree.Layout): its files tree, and for an MPI checkpoint each rank's
// regions (read-only, mode 0444) and protected files under rank-NNNNN/.
func snapTree(f *FS, m *manifest.Manifest) (*snapDir, error) {
	shown, err := tree.Layout(m)
	if err != nil {
		return nil, err
	}
	root := &snapDir{f: f, e: manifest.Entry{Mode: 0o555, MTime: m.Created.UnixNano()}, kids: map[string]fs.InodeEmbedder{}}
	for _, sh := range shown {
		file := sh.File
		if sh.Region {
			file.Mode = 0o444
		}
		dir, name := path.Split(file.Object)
		parent := root.mkdirAll(strings.TrimSuffix(dir, "/"), m.Created.UnixNano())
		switch file.Type {
		case manifest.TypeDir:
			d := parent.mkdirAll(name, file.MTime)
			d.e = file.Entry
		case manifest.TypeSymlink:
			parent.kids[name] = &snapLink{e: file.Entry}
		default:
			parent.kids[name] = &snapFile{f: f, file: file}
		}
	}
	return root, nil
}

func (d *snapDir) mkdirAll(rel string, mtime int64) *snapDir {
	cur := d
	if rel == "" {
		return d
	}
	for _, name := range strings.Split(rel, "/") {
		next, ok := cur.kids[name].(*snapDir)
		if !ok {
			next = &snapDir{f: d.f, e: manifest.Entry{Mode: 0o755, MTime: mtime}, kids: map[string]fs.InodeEmbedder{}}
			cur.kids[name] = next
		}
		cur = next
	}
	return cur
}

func (d *snapDir) OnAdd(ctx context.Context) {
	for name, k := range d.kids {
		mode := uint32(syscall.S_IFREG)
		switch k.(type) {
		case *snapDir:
			mode = syscall.S_IFDIR
		case *snapLink:
			mode = syscall.S_IFLNK
		}
		d.AddChild(name, d.NewPersistentInode(ctx, k, fs.StableAttr{Mode: mode}), false)
	}
}

func entryAttr(e manifest.Entry, typ uint32, out *fuse.Attr) {
	out.Mode = typ | e.Mode
	t := time.Unix(0, e.MTime)
	out.SetTimes(&t, &t, &t)
	out.Owner = fuse.Owner{Uid: uint32(syscall.Getuid()), Gid: uint32(syscall.Getgid())}
	out.Nlink = 1
}

func (d *snapDir) fillAttr(out *fuse.Attr) {
	entryAttr(d.e, syscall.S_IFDIR, out)
	out.Nlink = 2
	out.Size = 4096
}

func (d *snapDir) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	d.fillAttr(&out.Attr)
	return 0
}

// Writes in a version are refused: versions are read-only.
func (d *snapDir) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}
func (d *snapDir) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	return nil, nil, 0, syscall.EROFS
}
func (d *snapDir) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}
func (d *snapDir) Rmdir(ctx context.Context, name string) syscall.Errno  { return syscall.EROFS }
func (d *snapDir) Unlink(ctx context.Context, name string) syscall.Errno { return syscall.EROFS }
func (d *snapDir) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	return syscall.EROFS
}
func (d *snapDir) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return syscall.EROFS
}

func (d *snapDir) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	d.f.statfs(out)
	return 0
}

func (l *snapLink) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	entryAttr(l.e, syscall.S_IFLNK, &out.Attr)
	out.Size = uint64(len(l.e.Target))
	return 0
}

func (l *snapLink) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	return []byte(l.e.Target), 0
}

func (l *snapLink) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return syscall.EROFS
}

// blocks lists a version file's blocks for a fetcher.
type blocks []manifest.Block

func (b blocks) Len() int                 { return len(b) }
func (b blocks) At(i int) *manifest.Block { return &b[i] }

func (s *snapFile) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	entryAttr(s.file.Entry, syscall.S_IFREG, &out.Attr)
	out.Size = uint64(s.file.Size)
	out.Blocks = uint64(s.file.Size+511) / 512
	out.Blksize = 1 << 20
	return 0
}

func (s *snapFile) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return syscall.EROFS
}

func (s *snapFile) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if flags&syscall.O_ACCMODE != syscall.O_RDONLY || flags&syscall.O_TRUNC != 0 {
		return nil, 0, syscall.EROFS
	}
	return newFetcher(s.f, s.file.Object), fuse.FOPEN_KEEP_CACHE, 0
}

func (s *snapFile) Read(ctx context.Context, fh fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	h, ok := fh.(*fetcher)
	if !ok {
		return nil, syscall.EBADF
	}
	bl := blocks(s.file.Blocks)
	i := sort.Search(len(bl), func(i int) bool { return bl[i].Offset+bl[i].Length > off })
	n := 0
	for ; i < len(bl) && n < len(dest); i++ {
		b := &bl[i]
		if b.Length == 0 {
			continue
		}
		data, err := h.block(bl, i)
		if err != nil {
			return nil, s.f.fail("read "+s.file.Object, err)
		}
		n += copy(dest[n:], data[off+int64(n)-b.Offset:])
	}
	return fuse.ReadResultData(dest[:n]), 0
}

func (s *snapFile) Write(ctx context.Context, fh fs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	return 0, syscall.EROFS
}

func (s *snapFile) Release(ctx context.Context, fh fs.FileHandle) syscall.Errno {
	if h, ok := fh.(*fetcher); ok {
		h.close()
	}
	return 0
}
