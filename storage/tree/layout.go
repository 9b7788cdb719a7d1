package tree

import (
	"cmp"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/manifest"
)

// Shown is one entry of a version as ckptio lists it, writes it out and
// mounts it (Layout).
type Shown struct {
	manifest.File
	Region bool // an MPI region, shown as a plain file
}

// RankDir is the directory of a rank's objects in a Layout:
// rank-00002 for rank 2.
func RankDir(rank int32) string { return fmt.Sprintf("rank-%05d", rank) }

// Layout is a version as 'ckpt ls' lists it, 'ckpt restore' writes it and
// versions/N of a mount shows it: a files version's tree as put; for an
// MPI checkpoint, each rank's regions as files RankDir(r)/REGION (mode
// 0644, mtime the version's creation) and its protected files under
// RankDir(r)/files/. The list of protected paths (catalog.FilesListObject)
// is not shown. A region whose name is not a single safe path element is
// an error: nothing of such a version is written out. Sorted by path.
func Layout(m *manifest.Manifest) ([]Shown, error) {
	if m.Kind != manifest.KindMPI {
		files := m.Tree(-1)
		out := make([]Shown, len(files))
		for i, f := range files {
			out[i] = Shown{File: f}
		}
		return out, nil
	}
	type key struct {
		name string
		rank int32
	}
	entry := map[key]bool{}
	for _, e := range m.Entries {
		entry[key{e.Object, e.Rank}] = true
	}
	regions := map[key]*Shown{}
	var created int64
	if !m.Created.IsZero() {
		created = m.Created.UnixNano()
	}
	for _, b := range m.Blocks {
		k := key{b.Object, b.Rank}
		if entry[k] || b.Object == catalog.FilesListObject {
			continue
		}
		r := regions[k]
		if r == nil {
			if b.Rank < 0 || strings.ContainsAny(b.Object, `/\`) || manifest.CheckPath(b.Object) != nil {
				return nil, fmt.Errorf("%s version %d has a region %q of rank %d that is not a safe file name; refusing", m.Job, m.Version, b.Object, b.Rank)
			}
			r = &Shown{Region: true, File: manifest.File{Entry: manifest.Entry{Object: path.Join(RankDir(b.Rank), b.Object), Rank: b.Rank,
				Type: manifest.TypeFile, Mode: 0o644, MTime: created}}}
			regions[k] = r
		}
		r.Size += b.Length
		r.Blocks = append(r.Blocks, b)
	}
	out := make([]Shown, 0, len(regions)+len(m.Entries))
	for _, r := range regions {
		slices.SortFunc(r.Blocks, func(a, b manifest.Block) int { return cmp.Compare(a.Offset, b.Offset) })
		out = append(out, *r)
	}
	for rank, files := range m.Trees() {
		for _, f := range files {
			f.Object = path.Join(RankDir(rank), "files", f.Object)
			out = append(out, Shown{File: f})
		}
	}
	slices.SortFunc(out, func(a, b Shown) int { return comparePaths(a.Object, b.Object) })
	return out, nil
}

// Files returns the files of a Layout, for Extract and Diff.
func Files(shown []Shown) []manifest.File {
	out := make([]manifest.File, len(shown))
	for i, s := range shown {
		out[i] = s.File
	}
	return out
}
