package manifest

import (
	"time"

	"github.com/ckptio/ckptio/storage"
)

// Kind names what a version holds; it decides how it is restored.
type Kind string

const (
	KindFiles Kind = "files" // files put with 'ckpt put'
	KindMPI   Kind = "mpi"   // the regions of every rank of an MPI job
)

// Codec names how a block's stored bytes encode its logical bytes.
type Codec string

const (
	CodecRaw Codec = "raw" // stored bytes are the logical bytes
	CodecLZ4 Codec = "lz4" // stored bytes are one LZ4 block (pierrec/lz4)
)

// Block is one row of a manifest: a contiguous piece of an object.
//
// An object of zero length is recorded as a single row with Length 0, a zero
// Key and no Stores, so that empty files and empty regions survive a round
// trip.
type Block struct {
	Object       string       // file name (ckpt put) or region name (MPI)
	Rank         int32        // MPI rank that owns the object; -1 for files
	Offset       int64        // byte offset of this block in the object
	Length       int64        // logical bytes
	Hash         storage.Hash // BLAKE3-256 of the logical bytes
	Key          storage.Hash // BLAKE3-256 of the stored bytes: the address on the stores
	StoredLength int64        // bytes held on each store
	Codec        Codec
	// Stores are the IDs of the stores holding a copy of the stored bytes
	// or, for an erasure-coded block, of each shard: Stores[i] holds
	// Shards[i], "" when no live store holds it.
	Stores []string
	// DataShards is K of a Reed-Solomon K+M block (storage/erasure), 0
	// for a replicated one. Shards are then the K+M shard keys in shard
	// order, each the BLAKE3-256 of its shard's bytes; Key stays the
	// address of the whole stored bytes, checked after joining.
	DataShards int
	Shards     []storage.Hash
}

// Erasure reports whether b is erasure-coded.
func (b *Block) Erasure() bool { return b.DataShards > 0 }

// Manifest describes one version: every block of every object, plus
// version-level figures. The manager keeps one per committed version.
type Manifest struct {
	Job     string
	Version int64     // assigned by the manager at commit; 0 before
	Created time.Time // when the writer began the version
	Kind    Kind      // KindFiles or KindMPI
	// Meta holds kind-specific fields (for KindMPI: step, ranks, ...);
	// storage/catalog names the keys.
	Meta map[string]string

	LogicalBytes int64 // sum of Length over all blocks
	NewBytes     int64 // stored bytes that no store held before this version
	SentBytes    int64 // stored bytes sent to stores (>= NewBytes)

	Blocks []Block
	// Entries describe the objects that are files, directories and
	// symlinks (a file tree), one per object, with their metadata; an
	// object without an entry is an MPI region, or, in a files version
	// written before format 2, a regular file (Tree).
	Entries []Entry
}

// EntryType is what kind of file an entry is.
type EntryType string

// The types of entries.
const (
	TypeFile    EntryType = "file"
	TypeDir     EntryType = "dir"
	TypeSymlink EntryType = "symlink"
)

// Entry is the metadata of one file, directory or symlink of a version.
// Its data are the blocks of the object of the same name and rank; a
// directory or a symlink has a single empty row.
type Entry struct {
	Object string // slash-separated path, relative to the tree's root
	Rank   int32  // -1 for 'ckpt put'; the owning rank for an MPI job's files
	Type   EntryType
	Mode   uint32 // permission bits with setuid, setgid and sticky (07777)
	MTime  int64  // modification time, nanoseconds since the Unix epoch
	// CTime and Inode are the file's status-change time and inode number
	// when it was read: a later capture references a file whose size,
	// mtime, ctime and inode still match without reading it. 0 = unknown.
	CTime  int64
	Inode  uint64
	Target string // a symlink's target, as stored (never followed)
}
