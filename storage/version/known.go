package version

import (
	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/manifest"
)

// Known returns a Previous over blocks this process knows to be stored,
// as a writer or a committed version recorded them (key, codec, stored
// length, stores): a writer over it applies the reuse rule (doc.go) to
// them as to a committed version's blocks, so a block the stores still
// confirm is referenced, not sent. A writer that keeps a tree of files
// across versions (the mounted file system) uses it to reference the
// files it holds, committed or written since, without fetching a
// manifest. The stores are asked after the writer's transaction began,
// which protects the confirmed blocks from garbage collection from then
// on; a block that no committed version holds must be protected until
// then by a transaction of the caller's, begun before the block was
// stored. Bytes is nil: a Known previous does not travel.
func Known(blocks []manifest.Block) *Previous {
	p := &Previous{m: &manifest.Manifest{Kind: Files, Blocks: blocks}, idx: make(map[storage.Hash]int32, len(blocks))}
	for i, b := range blocks {
		if b.Length > 0 && len(b.Stores) > 0 {
			p.idx[b.Hash] = int32(i)
		}
	}
	return p
}
