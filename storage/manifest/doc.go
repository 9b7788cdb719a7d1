// Package manifest defines the manifest of a checkpoint version, the list of
// every block of every object the version holds, and its encoding as an
// Apache Arrow IPC stream, so that the manager stores it as opaque bytes and
// any Arrow reader (pyarrow, DuckDB) can open it.
//
// # Format
//
// A manifest is one Arrow IPC stream (the streaming format, not the file
// format): a schema message, zero or more record batches of at most
// BatchRows rows, and the end-of-stream marker. Each row is one Block.
// Columns, in this order:
//
//	| column        | Arrow type                         | meaning                                           |
//	|---------------|------------------------------------|---------------------------------------------------|
//	| object        | dictionary<int32, utf8> (or utf8)  | file name (ckpt put) or region name (MPI)         |
//	| rank          | int32                              | owning MPI rank; -1 for files                     |
//	| offset        | int64                              | byte offset of the block in the object            |
//	| length        | int64                              | logical bytes                                     |
//	| hash          | fixed_size_binary(32)              | BLAKE3-256 of the logical bytes                   |
//	| key           | fixed_size_binary(32)              | BLAKE3-256 of the stored bytes: address on stores |
//	| stored_length | int64                              | bytes held on each store                          |
//	| codec         | utf8                               | "raw", "lz4", "aesgcm" or "lz4+aesgcm" (below)    |
//	| stores        | list<utf8>                         | IDs of the stores holding a copy                  |
//	| type          | dictionary<int8, utf8> (or utf8)   | entry: "file", "dir", "symlink"; "" (see below)   |
//	| mode          | uint32                             | entry: permission bits, setuid/setgid/sticky      |
//	| mtime_ns      | int64                              | entry: modification time, ns since the epoch      |
//	| ctime_ns      | int64                              | entry: status change time when read; 0 unknown    |
//	| inode         | uint64                             | entry: inode number when read; 0 unknown          |
//	| target        | utf8                               | entry: a symlink's target, never followed         |
//	| data_shards   | uint8                              | format 3: K of an rs:K+M row; 0 when replicated   |
//	| shards        | list<fixed_size_binary(32)>        | format 3: the K+M shard keys, in shard order      |
//
// The encoder writes every column non-nullable and the object and type
// columns as dictionaries (int32 and int8 indices), one dictionary per
// record batch (emitted as a replacement dictionary ahead of each batch).
// The decoder also accepts plain utf8 for either, any signed integer
// dictionary index, and nullable fields as long as no value is null, so a
// manifest rewritten by pyarrow still reads.
//
// # Erasure-coded rows (format 3)
//
// A row with data_shards K > 0 is a block kept as Reed-Solomon shards
// (storage/erasure) instead of copies: its stored bytes (key and
// stored_length as for any row) are cut into K data shards and M parity
// shards, K+M = the length of shards, each held under its own key (the
// BLAKE3-256 of the shard's bytes) by one store. stores then has one entry
// per shard, in shard order: the store holding that shard, or "" when no
// live store holds it (repair puts it back). No store holds two shards of
// one row. K is 1 to 16, M 1 to 16, K+M at most 32; an empty row is never
// erasure-coded. The encoder writes format 3 only when some row is
// erasure-coded, so a replicated manifest stays in format 2; Splice joins
// parts in formats 2 and 3 into format 3 (re-encoding the format-2 ones)
// and refuses to join format 1 with either.
//
// # Entries: files, directories and symlinks
//
// The last six columns (format 2) make a version a file tree. An object
// that is a file, a directory or a symlink has an entry: its type and
// metadata, set on the object's row at offset 0; every other row (the
// rest of a file's blocks, and all the rows of an MPI region) has "" and
// zeros there. A directory and a symlink are one empty row (length 0,
// zero key, no stores), like an empty file; their sizes are 0. A file's
// size is the sum of its block lengths. Entry paths are relative,
// slash-separated and clean: no "", ".", ".." element, no leading slash,
// backslash or NUL (CheckPath), and nothing lies inside an entry that is
// not a directory. Directories are listed even when empty; a parent
// without an entry is made with mode 0755 on extraction. Owners are not
// kept. ctime_ns and inode let the next capture of the same tree reference
// a file whose size, mtime, ctime and inode are unchanged without reading
// it (restic's parent-snapshot rule).
//
// In a files version ('ckpt put') entries have rank -1. In an MPI version
// the files a rank protects (mpiio ProtectFiles) have that rank, beside
// its regions, which have no entry.
//
// Format "1" has only the first nine columns and no entries; it still
// reads: in a files version of format 1 every object is a regular file of
// mode 0644 with an unknown mtime (Manifest.Tree). Splice keeps the
// format of its parts, which must share it, so a manager of this build
// stamps the version of an older writer in format 1.
//
// Codecs: "raw" stores the logical bytes, "lz4" one LZ4 block of them;
// "aesgcm" and "lz4+aesgcm" are the same encrypted by the client
// (storage/crypt documents the sealed form), and the version's meta then
// says so ("encrypted", "key_fingerprint"). Whatever the codec, hash is of
// the logical bytes and key of the bytes the stores hold. "" is allowed for
// an empty object's row.
//
// The version-level fields are schema metadata (string keys and values):
//
//	| key                  | value                                                  |
//	|----------------------|--------------------------------------------------------|
//	| ckptio.format        | format version, "2" or "3" ("1" still reads) (required) |
//	| ckptio.job           | job name                                               |
//	| ckptio.version       | version number, decimal; 0 until the manager commits   |
//	| ckptio.created       | RFC 3339 time with nanoseconds, UTC; absent if unknown |
//	| ckptio.kind          | "files" or "mpi"                                       |
//	| ckptio.logical_bytes | decimal                                                |
//	| ckptio.new_bytes     | decimal                                                |
//	| ckptio.sent_bytes    | decimal                                                |
//	| ckptio.meta          | JSON object of strings; absent when empty              |
//
// Reading one with pyarrow:
//
//	import pyarrow as pa
//	t = pa.ipc.open_stream(open("manifest.arrow", "rb")).read_all()
//	t.schema.metadata[b"ckptio.job"], t.num_rows
//
// # Rules
//
// Validate (which Decode runs) enforces: the blocks of an object (name and
// rank) tile it from offset 0 with no gap and no overlap; offsets, lengths
// and byte counts are non-negative; a raw block stores exactly its length;
// an empty object is a single row of length 0 (zero key, no stores);
// logical_bytes is 0 or the sum of the lengths; and the entry rules above.
//
// # Decoding untrusted bytes
//
// Decode never panics: panics inside the Arrow reader are recovered and
// returned as ErrCorrupt. It reads messages itself so that a length field
// is checked against MaxStreamBytes before anything is allocated for it,
// bodies are read in chunks as bytes arrive, and the Arrow reader's
// allocator is bounded by a multiple of the bytes read, so a few bytes
// claiming a huge (or compressed) buffer fail with ErrTooLarge. A stream
// cut short, even at a message boundary, fails: the end-of-stream marker is
// required.
package manifest
