// Package chunk cuts checkpoint data into blocks: the unit that is hashed,
// compared with the previous version, compressed and sent to the stores.
//
// Two kinds of Chunker exist. Fixed cuts every size bytes; it is the default
// and the cheapest. CDC cuts where the content says so (FastCDC with
// normalized chunking over a gear hash), so that inserting or deleting bytes
// near the start of a region shifts the data without moving every later
// boundary: only the chunks around the edit change, and the rest are found
// on the stores by hash. A job picks one with Options (config field) or
// CKPT_CHUNKING=fixed|cdc through ParseKind.
//
// # Two forms, one result
//
// Cut works on a slice held in memory (a rank's region, the hot path): it
// returns chunk lengths and copies nothing. Reader cuts an io.Reader and
// returns each chunk as a slice of its buffer. For the same bytes both give
// the same boundaries, however the reader's underlying Read calls split the
// stream, because the length of a chunk depends only on the bytes from its
// start up to Max bytes further.
//
// # Boundaries
//
// Every chunk but the last of a stream has a length in [Min, Max]; the last
// has a length in [1, Max]. An empty stream has no chunk at all (a caller
// that records empty objects does so itself).
//
// The CDC cut point is a function of the gear table, the three sizes and the
// bytes, nothing else. The gear table is fixed (see gearTable): changing it,
// or the mask derivation, does not break restore (manifests record each
// block's offset and length) but moves every boundary, so the first
// checkpoint after such a change deduplicates nothing against the previous
// version. TestGearTableIsPinned guards it.
//
// The algorithm: the hash is h = h<<1 + gear[b] over the bytes from the
// chunk start + Min on, so bit k of h depends on the last k+1 bytes only and
// the top bits on the last 64 bytes. A cut follows the first byte where the
// top bits selected by the mask are all zero. Between Min and Avg the mask
// has log2(Avg)+2 bits (cuts are rare), from Avg to Max it has log2(Avg)-2
// bits (cuts are frequent): FastCDC's normalized chunking, level 2, which
// gathers chunk lengths around Avg. At Max the chunk is cut regardless.
package chunk
