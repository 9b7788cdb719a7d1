package mpiio

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/ckptio/ckptio/collective"
	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/chunk"
	"github.com/ckptio/ckptio/storage/crypt"
	"github.com/ckptio/ckptio/storage/manifest"
	"github.com/ckptio/ckptio/storage/tree"
	"github.com/ckptio/ckptio/storage/version"
)

// filesObject is the object, one per rank that protects files, that lists
// the paths the rank protected (filesList, JSON): what a restore rolls
// back, including paths that did not exist then. No region can have its
// name (Protect refuses ':') and ProtectFiles refuses "/ckpt:files".
const filesObject = catalog.FilesListObject

// maxFilesList bounds the filesObject a restore reads.
const maxFilesList = 16 << 20

// filesList is the content of filesObject.
type filesList struct {
	// Paths are relative to "/", clean, sorted, none inside another.
	Paths []string `json:"paths"`
}

// fileState is what a rank knows of its protected files.
type fileState struct {
	paths []string // relative to "/", sorted, none inside another
	// prev is this rank's part of the last version it committed or
	// restored: an encoded manifest of its file entries and their blocks
	// (and filesObject). The next capture compares files with it by stat
	// and references its blocks; nil = none, every file is read.
	prev []byte
}

// ProtectFiles adds files or directories (walked recursively) to what this
// rank checkpoints: every Checkpoint captures them in the same version as
// the regions, and Restore and Resume roll them back to the version. Not
// collective: each rank protects its own (see the package documentation
// for the one-owner rule). A path is resolved now to an absolute path
// whose existing ancestors have their symlinks resolved, so a later change
// of working directory changes nothing; a path that does not exist yet is
// allowed (the version then records it as absent, and a rollback to it
// removes it). A symlink named as the path itself is kept as a symlink,
// not followed.
func (cp *Checkpointer) ProtectFiles(paths ...string) error {
	if err := cp.check(); err != nil {
		return err
	}
	add := make([]string, 0, len(paths))
	for _, p := range paths {
		rel, err := resolvePath(p)
		if err != nil {
			return fmt.Errorf("mpiio: protect files %q: %w", p, err)
		}
		if rel == filesObject {
			return fmt.Errorf("mpiio: protect files %q: /%s is the name ckptio gives its list of protected paths; protect its directory instead", p, filesObject)
		}
		if _, clash := cp.index[rel]; clash {
			return fmt.Errorf("mpiio: protect files %q: a protected region is named %q too, and a rank's regions and files share names in a version; rename the region", p, rel)
		}
		if !cp.cfg.Sync {
			if stage, err := cp.stagingBase(); err == nil && within(stage, "/"+rel) {
				return fmt.Errorf("mpiio: protect files %q: the staging directory %s, where asynchronous checkpoints copy changed files, is inside it and would be captured too; set CKPT_STAGING_DIR (Config.StagingDir) to a directory outside it", p, stage)
			}
		}
		add = append(add, rel)
	}
	cp.files.paths = outermost(append(slices.Clone(cp.files.paths), add...))
	return nil
}

// ProtectedFiles returns the absolute paths this rank protects.
func (cp *Checkpointer) ProtectedFiles() []string {
	out := make([]string, len(cp.files.paths))
	for i, p := range cp.files.paths {
		out[i] = "/" + p
	}
	return out
}

// resolvePath returns p as a path relative to "/": absolute, clean, with
// the symlinks of its longest existing ancestor resolved; its last element
// is kept as it is.
func resolvePath(p string) (string, error) {
	if p == "" {
		return "", errors.New("empty path")
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	if abs == "/" {
		return "", errors.New("the root directory cannot be protected; protect the directories the program writes")
	}
	dir, base := filepath.Dir(abs), filepath.Base(abs)
	var tail []string // missing ancestors, innermost last
	for {
		real, err := filepath.EvalSymlinks(dir)
		if err == nil {
			dir = real
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		tail = append([]string{filepath.Base(dir)}, tail...)
		dir = filepath.Dir(dir)
	}
	full := filepath.Join(append(append([]string{dir}, tail...), base)...)
	rel := strings.TrimPrefix(filepath.ToSlash(full), "/")
	if !utf8.ValidString(rel) {
		return "", errors.New("the path is not valid UTF-8, which a version cannot record")
	}
	if err := manifest.CheckPath(rel); err != nil {
		return "", err
	}
	return rel, nil
}

// outermost sorts paths and drops duplicates and paths inside another.
func outermost(paths []string) []string {
	slices.Sort(paths)
	var out []string
	for _, p := range paths {
		if !slices.ContainsFunc(out, func(q string) bool { return within("/"+p, "/"+q) }) {
			out = append(out, p)
		}
	}
	return out
}

// within reports whether path p is dir or inside it (both absolute).
func within(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}

// under reports whether rel is one of paths or inside one (relative).
func under(rel string, paths []string) bool {
	return slices.ContainsFunc(paths, func(q string) bool { return within("/"+rel, "/"+q) })
}

// stagingBase is the directory asynchronous checkpoints freeze files in.
func (cp *Checkpointer) stagingBase() (string, error) {
	dir := cp.cfg.StagingDir
	if dir == "" {
		dir = os.TempDir()
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	return abs, nil
}

// claim is what this rank tells rank 0 of its protected paths, for the
// one-owner check (overlaps): its host, then its paths, NUL separated;
// nil when it protects none.
func (c *capture) claim() []byte {
	if c == nil {
		return nil
	}
	host, err := os.Hostname()
	if err != nil {
		host = "?"
	}
	return []byte(strings.Join(append([]string{host}, c.paths...), "\x00"))
}

// overlaps checks what the ranks claim to protect (capture.claim): the
// same path, or one inside another, protected by two ranks of one host is
// an error naming them. It runs on rank 0 during every checkpoint.
func overlaps(all [][]byte) error {
	owners := map[string]map[string]int{} // host → path → rank
	type claim struct {
		rank       int
		host, path string
	}
	var claims []claim
	for r, raw := range all {
		if len(raw) == 0 {
			continue
		}
		f := strings.Split(string(raw), "\x00")
		if owners[f[0]] == nil {
			owners[f[0]] = map[string]int{}
		}
		for _, p := range f[1:] {
			if p == "" {
				continue
			}
			claims = append(claims, claim{r, f[0], p})
			if _, ok := owners[f[0]][p]; !ok {
				owners[f[0]][p] = r
			}
		}
	}
	var problems []string
	for _, c := range claims {
		for q := c.path; q != "."; q = path.Dir(q) {
			if r, ok := owners[c.host][q]; ok && r != c.rank {
				if q == c.path {
					problems = append(problems, fmt.Sprintf("rank %d protects /%s, which rank %d protects too, on host %s", c.rank, c.path, r, c.host))
				} else {
					problems = append(problems, fmt.Sprintf("rank %d protects /%s, inside /%s, which rank %d protects, on host %s", c.rank, c.path, q, r, c.host))
				}
				break
			}
		}
		if len(problems) == 3 {
			break
		}
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("protected files: %s: a file or directory must be protected by one rank only, its owner: protect a directory the ranks share on one rank (rank 0, say) and each rank's own files on that rank",
		strings.Join(problems, "; "))
}

// capture is one checkpoint's protected files on this rank.
type capture struct {
	paths []string
	prev  []byte     // fileState.prev when the checkpoint was called
	scan  *tree.Scan // nil until scanned
	stage string     // the frozen copies' directory; "" = none
	err   error      // of the scan or the freeze, reported by the write
	part  *version.Part
}

// newCapture returns this checkpoint's capture; nil when the rank
// protects no files.
func (cp *Checkpointer) newCapture() *capture {
	if len(cp.files.paths) == 0 {
		return nil
	}
	return &capture{paths: slices.Clone(cp.files.paths), prev: cp.files.prev}
}

// scan walks the protected paths (stat only) against the previous tree.
func (cp *Checkpointer) scan(c *capture) error {
	var prevTree []manifest.File
	if len(c.prev) > 0 {
		s, err := version.ParseSnapshot(c.prev)
		if err != nil {
			return fmt.Errorf("protected files: this rank's previous tree: %w", err)
		}
		prevTree = s.Manifest().Tree(int32(cp.Rank()))
	}
	var err error
	c.scan, err = tree.ScanPaths("/", c.paths, prevTree, tree.Options{
		Rank: int32(cp.Rank()), AllowMissing: true,
		Warn: func(p, reason string) {
			cp.cfg.Logger.Warn("protected files: skipped", zap.Int("rank", cp.Rank()), zap.String("path", p), zap.String("reason", reason))
		}})
	if err != nil {
		return fmt.Errorf("protected files: %w", err)
	}
	return nil
}

// freeze scans the protected files and copies those the version must
// read (new and changed ones) into a staging directory, so that an
// asynchronous checkpoint holds them as of its call. A scan failure is
// kept in c and reported by the background write on every rank (this
// runs while the other ranks start theirs). It returns the error when the
// copies could not be staged: the rank then checkpoints synchronously,
// reading the files while the program waits.
func (cp *Checkpointer) freeze(c *capture) error {
	if c == nil {
		return nil
	}
	start := time.Now()
	if c.err = cp.scan(c); c.err != nil {
		return nil
	}
	if !slices.ContainsFunc(c.scan.Items, func(it tree.Item) bool { return it.Type == manifest.TypeFile && it.Prev == nil }) {
		return nil // nothing to read: unchanged files are referenced
	}
	base, err := cp.stagingBase()
	if err == nil {
		c.stage, err = os.MkdirTemp(base, fmt.Sprintf("ckptio-stage-rank%d-", cp.Rank()))
	}
	var copied int64
	var cloned int
	if err == nil {
		copied, cloned, err = c.scan.Freeze(c.stage)
	}
	if err != nil {
		// Some items may point at copies: scan again, synchronously.
		c.release()
		c.scan = nil
		return fmt.Errorf("staging the protected files in %s: %w", base, err)
	}
	cp.cfg.Logger.Debug("protected files frozen for the asynchronous checkpoint",
		zap.Int("rank", cp.Rank()), zap.String("copied", storage.FormatSize(copied)), zap.Int("reflinked", cloned),
		zap.Duration("took", time.Since(start)))
	return nil
}

// release removes the capture's frozen copies.
func (c *capture) release() {
	if c != nil && c.stage != "" {
		os.RemoveAll(c.stage)
		c.stage = ""
	}
}

// extra is how the capture (nil: no files) enters the collective
// checkpoint.
func (cp *Checkpointer) extra(c *capture) collective.Extra {
	x := collective.Extra{Claim: c.claim(), Vet: overlaps}
	if c != nil {
		x.Write = func(ctx context.Context) (*version.Part, error) { return cp.writeFiles(ctx, c) }
	}
	return x
}

// writeFiles writes the capture (scanning first when it was not frozen)
// through a writer of this rank's own, which reuses the blocks of the
// rank's previous tree, and returns its part.
func (cp *Checkpointer) writeFiles(ctx context.Context, c *capture) (*version.Part, error) {
	if c.err != nil {
		return nil, c.err
	}
	if c.scan == nil {
		if err := cp.scan(c); err != nil {
			return nil, err
		}
	}
	prev, err := version.ParsePrevious(c.prev)
	if err != nil {
		return nil, fmt.Errorf("protected files: this rank's previous tree: %w", err)
	}
	bs := cp.cfg.BlockSize
	if bs <= 0 {
		bs = chunk.DefaultSize
	}
	w, err := cp.job.NewWriter(ctx, prev, version.Hints{BlockSize: bs, ExpectBlocks: len(c.scan.Items)})
	if err != nil {
		return nil, fmt.Errorf("protected files: %w", err)
	}
	werr := c.scan.Write(ctx, w)
	if werr == nil {
		list, _ := json.Marshal(filesList{Paths: c.paths})
		_, werr = w.WriteObject(ctx, filesObject, int32(cp.Rank()), bytes.NewReader(list))
	}
	part, err := w.Close(ctx)
	if werr != nil {
		return nil, fmt.Errorf("protected files: %w", werr)
	}
	if err != nil {
		return nil, fmt.Errorf("protected files: %w", err)
	}
	c.part = part
	return part, nil
}

// committed makes the capture's part the rank's previous tree.
func (cp *Checkpointer) committed(c *capture) {
	if c != nil && c.part != nil {
		cp.files.prev = c.part.Bytes()
	}
}

// rollback is one restore's protected files on this rank.
type rollback struct {
	cp    *Checkpointer
	share []byte          // this rank's part of the version
	files []manifest.File // the version's tree under the protected paths
	paths []string        // the protected paths
}

// restoreExtra is how protected files enter a collective restore.
func (cp *Checkpointer) restoreExtra() (collective.Extra, *rollback) {
	rb := &rollback{cp: cp, paths: slices.Clone(cp.files.paths)}
	x := collective.Extra{
		Split: func(snap *version.Snapshot) ([][]byte, error) { return splitFiles(snap, cp.sess.Size()) },
		Check: rb.check,
	}
	if len(rb.paths) > 0 {
		x.Apply = rb.apply
	}
	return x, rb
}

// splitFiles returns, per rank, the version's file entries of that rank
// with their blocks and its filesObject, encoded as a manifest (nil for a
// rank without).
func splitFiles(snap *version.Snapshot, ranks int) ([][]byte, error) {
	m := snap.Manifest()
	type key struct {
		object string
		rank   int32
	}
	entry := make(map[key]bool, len(m.Entries))
	per := make([]*manifest.Manifest, ranks)
	of := func(r int32) *manifest.Manifest {
		if r < 0 || int(r) >= ranks {
			return nil
		}
		if per[r] == nil {
			meta := map[string]string{}
			for _, k := range []string{catalog.MetaEncrypted, catalog.MetaFingerprint} {
				if v, ok := m.Meta[k]; ok {
					meta[k] = v
				}
			}
			per[r] = &manifest.Manifest{Job: m.Job, Version: m.Version, Created: m.Created, Kind: m.Kind, Meta: meta}
		}
		return per[r]
	}
	for _, e := range m.Entries {
		if pm := of(e.Rank); pm != nil {
			entry[key{e.Object, e.Rank}] = true
			pm.Entries = append(pm.Entries, e)
		}
	}
	for _, b := range m.Blocks {
		if b.Object == filesObject || entry[key{b.Object, b.Rank}] {
			if pm := of(b.Rank); pm != nil {
				pm.Blocks = append(pm.Blocks, b)
			}
		}
	}
	out := make([][]byte, ranks)
	for r, pm := range per {
		if pm == nil {
			continue
		}
		var err error
		if out[r], err = manifest.Marshal(pm); err != nil {
			return nil, fmt.Errorf("protected files of rank %d in version %d: %w", r, m.Version, err)
		}
	}
	return out, nil
}

// check reads what the version holds of this rank's files and refuses a
// restore that could not roll back every path the rank protects now.
func (rb *rollback) check(ctx context.Context, share []byte) error {
	rb.share = share
	if len(rb.paths) == 0 {
		return nil // the version's files of this rank, if any, are not protected now: left alone
	}
	rank := int32(rb.cp.Rank())
	fix := "protect them after Resume or Restore instead, or restore a version written while they were protected"
	if len(share) == 0 {
		return fmt.Errorf("protected files: the version holds no protected files of rank %d, so it cannot say what %s held; %s",
			rank, strings.Join(rb.cp.ProtectedFiles(), ", "), fix)
	}
	snap, err := version.ParseSnapshot(share)
	if err != nil {
		return fmt.Errorf("protected files: %w", err)
	}
	r, err := rb.cp.job.NewReader().OpenObject(ctx, snap, rank, filesObject)
	if err != nil {
		return fmt.Errorf("protected files: the version's list of rank %d's protected paths: %w", rank, err)
	}
	raw, err := io.ReadAll(io.LimitReader(r, maxFilesList))
	r.Close()
	var list filesList
	if err == nil {
		err = json.Unmarshal(raw, &list)
	}
	if err != nil {
		return fmt.Errorf("protected files: the version's list of rank %d's protected paths: %w", rank, err)
	}
	var missing []string
	for _, p := range rb.paths {
		if !under(p, list.Paths) {
			missing = append(missing, "/"+p)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("protected files: version %d did not protect %s on rank %d (it protected %d paths), so it cannot say what they held; %s",
			snap.Version(), strings.Join(missing, ", "), rank, len(list.Paths), fix)
	}
	for _, f := range snap.Manifest().Tree(rank) {
		if under(f.Object, rb.paths) {
			rb.files = append(rb.files, f)
		}
	}
	return nil
}

// apply rolls the protected paths back to the version.
func (rb *rollback) apply(ctx context.Context) error {
	c, err := tree.Rollback(ctx, rb.cp.job.NewReader(), rb.files, "/", rb.paths)
	if err != nil {
		return fmt.Errorf("protected files: %w", err)
	}
	rb.cp.cfg.Logger.Debug("protected files rolled back", zap.Int("rank", rb.cp.Rank()), zap.Stringer("counts", c))
	return nil
}

// restored makes the restored version's tree the rank's previous one, when
// its blocks may be reused (same key, or none).
func (rb *rollback) restored() {
	cp := rb.cp
	cp.files.prev = nil
	if len(rb.share) == 0 {
		return
	}
	s, err := version.ParseSnapshot(rb.share)
	if err == nil && crypt.SameKey(s.Manifest().Meta, cp.key.AddMeta(map[string]string{})) {
		cp.files.prev = rb.share
	}
}
