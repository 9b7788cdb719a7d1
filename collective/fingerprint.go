package collective

import (
	"time"

	"github.com/zeebo/xxh3"

	"github.com/ckptio/ckptio/storage"
)

// Change detection. A block's name is its BLAKE3-256 hash, which costs
// about 10 times what a fast non-cryptographic fingerprint does, and an
// incremental checkpoint would pay it for every unchanged byte on every
// rank. So each rank remembers, per region, the segments it cut last
// time: offset, length, XXH3-128 fingerprint and BLAKE3 hash. A segment
// at the same offset with the same length and fingerprint takes the hash
// remembered; any other is hashed. The memo maps content (by fingerprint)
// to its hash, so it stays right whatever happened in between (a failed
// checkpoint, a restore): only an XXH3-128 collision between the old and
// the new bytes of one segment could make a changed block look unchanged
// (docs/incremental.md, "Change detection").

// memoSeg is one segment of a region as last cut.
type memoSeg struct {
	off, len int64
	fp       xxh3.Uint128
	hash     storage.Hash
}

// HashStats says what finding the changed blocks cost this rank: bytes
// fingerprinted, bytes BLAKE3-hashed (those whose fingerprint changed, or
// all of them the first time), and the time both took.
type HashStats struct {
	Fingerprinted int64
	Hashed        int64
	Took          time.Duration
}

func (h *HashStats) add(o HashStats) {
	h.Fingerprinted += o.Fingerprinted
	h.Hashed += o.Hashed
	h.Took += o.Took
}

// hashSegments sets the hash of each of segs, the segments of region
// name cut from data, from prev (the region's segments as last cut) where
// its fingerprint is unchanged, and remembers them for the next cut.
func (s *Session) hashSegments(prev []memoSeg, name string, data []byte, segs []segment) {
	next := make([]memoSeg, len(segs))
	j := 0
	for i := range segs {
		seg := &segs[i]
		b := data[seg.off : seg.off+seg.len]
		fp := xxh3.Hash128(b)
		s.lastHash.Fingerprinted += seg.len
		for j < len(prev) && prev[j].off < seg.off {
			j++
		}
		if j < len(prev) && prev[j].off == seg.off && prev[j].len == seg.len && prev[j].fp == fp {
			seg.hash = prev[j].hash
		} else {
			seg.hash = storage.Sum(b)
			s.lastHash.Hashed += seg.len
		}
		next[i] = memoSeg{off: seg.off, len: seg.len, fp: fp, hash: seg.hash}
	}
	s.memo[name] = next
}

// HashStats returns what finding the changed blocks cost this rank over
// the session's checkpoints so far.
func (s *Session) HashStats() HashStats { return s.hashStats }
