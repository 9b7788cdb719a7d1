package mount

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"go.uber.org/zap"
	"golang.org/x/sync/semaphore"
	"golang.org/x/sys/unix"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/client"
	"github.com/ckptio/ckptio/storage/manifest"
	"github.com/ckptio/ckptio/storage/version"
)

// FSType is the file system type of a mount in /proc/self/mountinfo:
// "fuse." + the name go-fuse mounts with.
const FSType = "fuse.ckpt"

// Defaults of Options.
const (
	DefaultTimeout     = 2 * time.Minute
	DefaultMaxBuffered = 64 << 20
	DefaultReadAhead   = 16 << 20
)

// Lister is what the mount needs of the manager beside version.Catalog:
// the job's versions (for versions/) and the stores' space (for statfs).
// *catalog.Client implements it.
type Lister interface {
	Versions(ctx context.Context, job string) ([]catalog.VersionInfo, error)
	Stores(ctx context.Context) ([]catalog.StoreInfo, error)
}

// Options configure a mount. Job is required; the zero value of every
// other field picks its default.
type Options struct {
	// Job names the job and its cluster (catalog, pool) and holds the
	// options of its writers (block size, replicas, write mode,
	// compression, sealing) and readers (Decode).
	Job *version.Job
	// Lister lists versions and stores; nil = Job.Catalog, which must
	// then implement it.
	Lister Lister
	// Meta is the meta of every version the mount commits (the
	// encryption key's fields, crypt.Key.AddMeta); the job's latest
	// version must have been written with the same key to be mounted.
	Meta map[string]string
	// Spool is the directory of spool files (doc.go); "" = os.TempDir().
	Spool string
	// Async: close and fsync return at once and the commit runs in the
	// background (doc.go); otherwise they return once the version is
	// committed.
	Async bool
	// Timeout bounds each commit, each read of a block, and the wait for
	// a manager that cannot be reached; past it the operation fails with
	// EIO. 0 = DefaultTimeout.
	Timeout time.Duration
	// MaxBuffered bounds the bytes of written blocks held in memory until
	// the stores have them, over every file; 0 = DefaultMaxBuffered.
	MaxBuffered int64
	// ReadAhead is the bytes read ahead of a sequential reader, per open
	// file (in blocks: 4 to 64); 0 = DefaultReadAhead.
	ReadAhead int64
	// AllowOther lets other users than the one mounting use the mount
	// (fuse's allow_other; needs user_allow_other in /etc/fuse.conf
	// unless root), held to the files' modes (default_permissions).
	AllowOther bool
	// Debug logs every FUSE request.
	Debug bool
}

// FS is a mounted job. Its methods are safe for concurrent use.
type FS struct {
	dir  string
	opts Options
	job  *version.Job
	list Lister
	log  *zap.Logger
	bs   int
	rd   *client.Reader
	srv  *fuse.Server
	root *dirNode
	vers *versionsNode
	// buffered bounds the bytes of blocks handed to stream writers and
	// not yet stored; ahead bounds readahead over every open file.
	buffered *semaphore.Weighted
	ahead    *semaphore.Weighted
	bufs     sync.Pool // *[]byte of bs bytes

	// ns guards the tree: every directory's children, names and the
	// nodes' metadata. Commits read it, namespace operations change it.
	ns sync.RWMutex

	c committer

	served chan struct{} // closed when the server stops serving
	done   chan struct{} // closed when Wait's final commit ended
	final  error

	started    time.Time
	stopOnce   sync.Once
	latestOnce sync.Once

	statMu   sync.Mutex
	statAt   time.Time
	statFree int64
	statAll  int64
}

// New mounts job on dir (an existing directory) and serves it until it
// is unmounted (Unmount, or 'ckpt umount', or fusermount -u). The tree
// starts as the job's latest version holds it, if that is a files
// version; versions/ lists every version.
func New(ctx context.Context, dir string, o Options) (*FS, error) {
	if o.Job == nil {
		return nil, errors.New("mount: no job")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("mount: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("mount: %s is not a directory", abs)
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxBuffered <= 0 {
		o.MaxBuffered = DefaultMaxBuffered
	}
	if o.ReadAhead <= 0 {
		o.ReadAhead = DefaultReadAhead
	}
	if o.Spool == "" {
		o.Spool = os.TempDir()
	}
	if err := os.MkdirAll(o.Spool, 0o700); err != nil {
		return nil, fmt.Errorf("mount: spool directory: %w", err)
	}
	if o.Lister == nil {
		l, ok := o.Job.Catalog.(Lister)
		if !ok {
			return nil, errors.New("mount: the job's catalog cannot list versions; set Options.Lister")
		}
		o.Lister = l
	}
	log := o.Job.Logger
	if log == nil {
		log = zap.NewNop()
	}
	log = log.With(zap.String("job", o.Job.Name), zap.String("mount", abs))
	bs := o.Job.Writer.BlockSize
	if bs <= 0 {
		bs = client.DefaultBlockSize
	}
	if bs > storage.MaxBlockSize {
		return nil, fmt.Errorf("mount: block size %d above the limit %d", bs, storage.MaxBlockSize)
	}
	ro := o.Job.Reader
	if ro.Logger == nil {
		ro.Logger = log
	}
	f := &FS{dir: abs, opts: o, job: o.Job, list: o.Lister, log: log, bs: bs,
		rd:       client.NewReader(o.Job.Pool.Resolve, ro),
		buffered: semaphore.NewWeighted(max(o.MaxBuffered, int64(bs))),
		ahead:    semaphore.NewWeighted(max(o.ReadAhead*4, int64(bs))),
		served:   make(chan struct{}), done: make(chan struct{}), started: time.Now()}
	f.bufs.New = func() any { b := make([]byte, bs); return &b }
	f.c.init(f)
	f.root = newDir(f, 0o755, time.Now().UnixNano())
	f.vers = &versionsNode{fs: f}

	lctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	latest, err := f.load(lctx)
	if err != nil {
		return nil, err
	}
	f.c.setLatest(latest)
	f.c.setKnown(version.Known(f.root.allBlocks()))

	sec := time.Second
	fo := &fs.Options{
		EntryTimeout: &sec,
		AttrTimeout:  &sec,
		UID:          uint32(os.Getuid()),
		GID:          uint32(os.Getgid()),
		MountOptions: fuse.MountOptions{
			FsName:        "ckpt:" + o.Job.Name,
			Name:          "ckpt",
			DirectMount:   true,
			MaxWrite:      1 << 20,
			MaxReadAhead:  1 << 20,
			MaxBackground: 64,
			AllowOther:    o.AllowOther,
			DisableXAttrs: true,
			Debug:         o.Debug,
		},
	}
	if o.AllowOther {
		// Other users are held to the modes the tree shows.
		fo.MountOptions.Options = append(fo.MountOptions.Options, "default_permissions")
	}
	srv, err := fs.Mount(abs, f.root, fo)
	if err != nil {
		return nil, mountError(abs, err)
	}
	f.srv = srv
	f.raiseReadAhead(abs)
	go func() {
		srv.Wait()
		close(f.served)
	}()
	go f.c.loop()
	return f, nil
}

// kernelReadAhead is how far the kernel reads ahead of a sequential
// reader of the mount; its default for a FUSE mount is 128 KiB. 1 MiB
// keeps 16 reads of 64 KiB blocks in flight; beyond it the reads the
// kernel sends at once arrive too far out of order (measured with
// bench/mountbench: docs/benchmarks.md).
const kernelReadAhead = 1 << 20

// raiseReadAhead sets the kernel's readahead of the mount's backing
// device (/sys/class/bdi), which only root may; without it reads are
// slower, not wrong, so a failure is logged and ignored.
func (f *FS) raiseReadAhead(dir string) {
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return
	}
	p := fmt.Sprintf("/sys/class/bdi/%d:%d/read_ahead_kb", unix.Major(st.Dev), unix.Minor(st.Dev))
	if err := os.WriteFile(p, []byte(strconv.Itoa(kernelReadAhead>>10)), 0o644); err != nil {
		f.log.Debug("kernel readahead of the mount left at its default", zap.String("file", p), zap.Error(err))
	}
}

// Supported says why this machine cannot mount, nil if it can: it needs
// /dev/fuse, and root (which mounts directly) or fusermount3/fusermount.
func Supported() error {
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return fmt.Errorf("no /dev/fuse (%v): FUSE mounts are not possible here", err)
	}
	if os.Geteuid() != 0 {
		_, err3 := exec.LookPath("fusermount3")
		_, err := exec.LookPath("fusermount")
		if err3 != nil && err != nil {
			return errors.New("not root and no fusermount3 or fusermount: FUSE mounts are not possible here (install fuse3)")
		}
	}
	return nil
}

// mountError explains a failed mount.
func mountError(dir string, err error) error {
	switch {
	case errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES):
		return fmt.Errorf("mount: %s: %w (mounting needs root, or fusermount3/fusermount from the fuse3 package)", dir, err)
	case errors.Is(err, syscall.ENOENT) || errors.Is(err, exec.ErrNotFound):
		return fmt.Errorf("mount: %s: %w (is /dev/fuse there? without root, fusermount3 from the fuse3 package is needed)", dir, err)
	}
	return fmt.Errorf("mount: %s: %w", dir, err)
}

// load reads the job's latest version into the tree, if it holds files
// written with the mount's key (or none), and returns its number (0:
// none).
func (f *FS) load(ctx context.Context) (int64, error) {
	s, err := f.job.Open(ctx, 0)
	switch {
	case errors.Is(err, catalog.ErrNoVersions) || errors.Is(err, catalog.ErrUnknownJob):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("mount: reading the latest version of %s: %w", f.job.Name, err)
	}
	m := s.Manifest()
	if m.Kind != manifest.KindFiles {
		f.log.Info("the latest version is not a files version; the tree starts empty",
			zap.Int64("version", s.Version()), zap.String("kind", string(m.Kind)))
		return s.Version(), nil
	}
	for _, k := range []string{catalog.MetaEncrypted, catalog.MetaFingerprint} {
		if m.Meta[k] != f.opts.Meta[k] {
			return 0, fmt.Errorf("mount: %s version %d was written with another encryption key (%s %q, this mount %q): mount with the key it was written with",
				f.job.Name, s.Version(), k, m.Meta[k], f.opts.Meta[k])
		}
	}
	f.root.fill(m.Tree(-1))
	return s.Version(), nil
}

// Dir is the mount point.
func (f *FS) Dir() string { return f.dir }

// Served is closed once the kernel stopped sending requests: the file
// system was unmounted.
func (f *FS) Served() <-chan struct{} { return f.served }

// Unmount asks the kernel to unmount the file system. When files are
// still open it fails with EBUSY unless lazy, which detaches the mount
// point at once and lets the open files finish (their closes still
// commit). Wait then returns once everything is committed.
func (f *FS) Unmount(lazy bool) error {
	return Unmount(f.dir, lazy)
}

// Detach unmounts dir lazily: the mount point is free at once, files
// still open keep working until closed. It works on the mount of a
// process that died, too.
func Detach(dir string) error { return Unmount(dir, true) }

// Unmount unmounts the ckpt mount on dir, served by this process or
// another: EBUSY (wrapped) while files are open in it, unless lazy. The
// serving process then makes its last commit and its Wait returns.
// Without root it runs fusermount3 (or fusermount) -u.
func Unmount(dir string, lazy bool) error {
	if os.Geteuid() == 0 {
		flags := 0
		if lazy {
			flags = syscall.MNT_DETACH
		}
		err := syscall.Unmount(dir, flags)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, syscall.EBUSY):
			return fmt.Errorf("%s is busy: files are open in it, or a shell is in it (fuser -m %s shows which): %w", dir, dir, err)
		case !errors.Is(err, syscall.EPERM):
			return fmt.Errorf("unmounting %s: %w", dir, err)
		}
	}
	for _, bin := range []string{"fusermount3", "fusermount"} {
		p, err := exec.LookPath(bin)
		if err != nil {
			continue
		}
		args := []string{"-u", dir}
		if lazy {
			args = []string{"-u", "-z", dir}
		}
		out, err := exec.Command(p, args...).CombinedOutput()
		if err != nil {
			if strings.Contains(string(out), "busy") {
				return fmt.Errorf("%s is busy: files are open in it, or a shell is in it (fuser -m %s shows which): %w", dir, dir, syscall.EBUSY)
			}
			return fmt.Errorf("%s %s: %v: %s", bin, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	return fmt.Errorf("unmounting %s: not root, and neither fusermount3 nor fusermount is installed (fuse3 package)", dir)
}

// Mounted reports whether dir is the mount point of a ckpt mount, and
// the job it serves, from /proc/self/mountinfo.
func Mounted(dir string) (job string, ok bool, err error) {
	raw, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", false, err
	}
	for _, line := range strings.Split(string(raw), "\n") {
		pre, post, found := strings.Cut(line, " - ")
		if !found {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 2 || unescapeMountinfo(f[4]) != dir || g[0] != FSType {
			continue
		}
		return strings.TrimPrefix(g[1], "ckpt:"), true, nil
	}
	return "", false, nil
}

// unescapeMountinfo undoes the octal escapes (\040 for a space) of a
// mountinfo path.
func unescapeMountinfo(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Wait waits until the file system is unmounted, commits what changed
// since the last version (metadata, renames, removals) and returns the
// first error a commit met that no close or fsync returned.
func (f *FS) Wait() error {
	<-f.served
	f.stopOnce.Do(func() {
		f.final = f.c.stop()
		close(f.done)
	})
	<-f.done
	return f.final
}

// Latest is the newest version the mount knows: committed by it, or the
// job's latest when it was mounted (0: none).
func (f *FS) Latest() int64 { return f.c.latestVersion() }

// errno maps an error to what a system call returns: ENOSPC when the
// cluster (or the spool's disk) is full, EIO for everything else: a
// block no copy of which reads back intact, a manager or stores that
// cannot be reached, a spool that cannot be written.
func errno(err error) syscall.Errno {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, storage.ErrNoSpace), errors.Is(err, storage.ErrQuotaExceeded),
		errors.Is(err, storage.ErrDiskFull), errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return syscall.ENOSPC
	}
	return syscall.EIO
}

// ctx returns the context of one operation: bounded by the timeout, and
// not cancelled by the kernel's interrupts, which the Go runtime's own
// signals trigger in the programs using the mount.
func (f *FS) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), f.opts.Timeout)
}

func (f *FS) getBuf() *[]byte  { return f.bufs.Get().(*[]byte) }
func (f *FS) putBuf(b *[]byte) { f.bufs.Put(b) }

// fail logs why an operation failed and returns its errno.
func (f *FS) fail(op string, err error) syscall.Errno {
	e := errno(err)
	f.log.Warn(op+" failed", zap.String("errno", e.Error()), zap.Error(err))
	return e
}

// isNoJob reports an error saying the job has no version (yet).
func isNoJob(err error) bool {
	return errors.Is(err, catalog.ErrUnknownJob) || errors.Is(err, catalog.ErrNoVersions) || errors.Is(err, catalog.ErrUnknownVersion)
}

// statfs reports the cluster's space (as the stores last heartbeated
// it, asked at most every 5 s), divided by the copies each block gets.
func (f *FS) statfs(out *fuse.StatfsOut) {
	f.statMu.Lock()
	defer f.statMu.Unlock()
	if time.Since(f.statAt) > 5*time.Second {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if stores, err := f.list.Stores(ctx); err == nil {
			f.statFree, f.statAll = 0, 0
			alive := 0
			for _, s := range stores {
				if s.Alive {
					alive++
					f.statFree += s.Free()
					f.statAll += s.Used + s.Free()
				}
			}
			copies := int64(f.job.Writer.Replicas)
			if copies <= 0 {
				copies = int64(min(2, max(1, alive)))
			}
			f.statFree /= copies
			f.statAll /= copies
			f.statAt = time.Now()
		}
	}
	const bsize = 1 << 16
	out.Bsize, out.Frsize, out.NameLen = bsize, bsize, 255
	out.Blocks = uint64(f.statAll / bsize)
	out.Bfree = uint64(f.statFree / bsize)
	out.Bavail = out.Bfree
	out.Files, out.Ffree = 1<<40, 1<<40
}
