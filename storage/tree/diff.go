package tree

import (
	"slices"

	"github.com/ckptio/ckptio/storage/manifest"
)

// Change is one difference between two trees.
type Change struct {
	Path string `json:"path"`
	// Kind is "added", "removed" or "changed".
	Kind string `json:"change"`
	// Type is the entry's type in the newer tree ("file", "dir",
	// "symlink"), the older one's for a removal.
	Type manifest.EntryType `json:"type"`
	// OldSize and NewSize are the sizes in either tree (0 where absent).
	OldSize int64 `json:"old_size"`
	NewSize int64 `json:"new_size"`
	// ChangedBytes counts the bytes of the newer file in blocks the older
	// one does not hold at the same offset: what changed in content.
	ChangedBytes int64 `json:"changed_bytes"`
	// What lists what changed besides content: "type", "mode", "mtime",
	// "target".
	What []string `json:"what,omitempty"`
}

// Diff lists the entries added, removed and changed from a to b (both
// from manifest.Tree), sorted by path.
func Diff(a, b []manifest.File) []Change {
	old := make(map[string]*manifest.File, len(a))
	for i := range a {
		old[a[i].Object] = &a[i]
	}
	var out []Change
	inB := make(map[string]bool, len(b))
	for i := range b {
		nf := &b[i]
		inB[nf.Object] = true
		of := old[nf.Object]
		if of == nil {
			out = append(out, Change{Path: nf.Object, Kind: "added", Type: nf.Type, NewSize: nf.Size, ChangedBytes: nf.Size})
			continue
		}
		c := Change{Path: nf.Object, Kind: "changed", Type: nf.Type, OldSize: of.Size, NewSize: nf.Size}
		if of.Type != nf.Type {
			c.What = append(c.What, "type")
		}
		if of.Mode != nf.Mode {
			c.What = append(c.What, "mode")
		}
		if of.MTime != nf.MTime {
			c.What = append(c.What, "mtime")
		}
		if of.Target != nf.Target {
			c.What = append(c.What, "target")
		}
		at := make(map[int64]manifest.Block, len(of.Blocks))
		for _, blk := range of.Blocks {
			at[blk.Offset] = blk
		}
		for _, blk := range nf.Blocks {
			if p, ok := at[blk.Offset]; !ok || p.Hash != blk.Hash || p.Length != blk.Length {
				c.ChangedBytes += blk.Length
			}
		}
		if c.ChangedBytes > 0 || of.Size != nf.Size {
			c.What = append(c.What, "content")
		}
		if len(c.What) > 0 {
			out = append(out, c)
		}
	}
	for i := range a {
		if !inB[a[i].Object] {
			out = append(out, Change{Path: a[i].Object, Kind: "removed", Type: a[i].Type, OldSize: a[i].Size})
		}
	}
	sortChanges(out)
	return out
}

func sortChanges(cs []Change) {
	slices.SortFunc(cs, func(a, b Change) int { return comparePaths(a.Path, b.Path) })
}
