package disk

import (
	"bytes"
	"slices"

	"github.com/ckptio/ckptio/storage"
)

// recentMax is how many hashes order keeps apart from its base before it
// merges them in.
const recentMax = 4096

// order keeps the held hashes sorted, for List, at a small cost per put and
// delete. It is a sorted base, rebuilt now and then, in which deleted
// hashes are only marked, plus a short sorted slice of the hashes added
// since:
//
//   - add clears the hash's mark if base has it, or else inserts it into
//     recent (a binary search and a memmove of at most recentMax hashes,
//     128 KiB); past recentMax, recent is merged into base: O(n), once
//     every recentMax puts.
//   - remove drops the hash from recent, or marks it in base; once half of
//     base is marked, base is rebuilt without them: O(n), once every n/2
//     deletes.
//   - list binary-searches both slices and merges them from the cursor,
//     skipping marked entries: O(log n + max + marked entries skipped).
//
// Memory: 33 bytes per hash. Base and recent are disjoint, and together
// hold every held hash and the marked ones. The caller serializes all calls
// (Store.mu) and calls add and remove only for hashes that become held and
// stop being held.
type order struct {
	base   []storage.Hash // sorted
	gone   []bool         // gone[i]: base[i] is no longer held
	ngone  int            // entries of gone set
	recent []storage.Hash // sorted; held, added since base was built
}

func compareHash(a, b storage.Hash) int { return bytes.Compare(a[:], b[:]) }

// reset makes hs, which it takes and sorts, the whole set: O(n log n).
func (o *order) reset(hs []storage.Hash) {
	slices.SortFunc(hs, compareHash)
	o.base, o.gone, o.ngone, o.recent = hs, make([]bool, len(hs)), 0, nil
}

// add records that h, not held before, is now held.
func (o *order) add(h storage.Hash) {
	if i, ok := slices.BinarySearchFunc(o.base, h, compareHash); ok {
		if o.gone[i] {
			o.gone[i] = false
			o.ngone--
		}
		return
	}
	i, ok := slices.BinarySearchFunc(o.recent, h, compareHash)
	if ok {
		return
	}
	o.recent = slices.Insert(o.recent, i, h)
	if len(o.recent) > recentMax {
		o.rebuild()
	}
}

// remove records that h, held before, is held no more.
func (o *order) remove(h storage.Hash) {
	if i, ok := slices.BinarySearchFunc(o.recent, h, compareHash); ok {
		o.recent = slices.Delete(o.recent, i, i+1)
		return
	}
	if i, ok := slices.BinarySearchFunc(o.base, h, compareHash); ok && !o.gone[i] {
		o.gone[i] = true
		o.ngone++
		if o.ngone*2 > len(o.base) {
			o.rebuild()
		}
	}
}

// rebuild merges recent into base and drops the marked entries: O(n).
func (o *order) rebuild() {
	next := make([]storage.Hash, 0, len(o.base)-o.ngone+len(o.recent))
	i, j := 0, 0
	for i < len(o.base) || j < len(o.recent) {
		if j == len(o.recent) || (i < len(o.base) && compareHash(o.base[i], o.recent[j]) < 0) {
			if !o.gone[i] {
				next = append(next, o.base[i])
			}
			i++
			continue
		}
		next = append(next, o.recent[j])
		j++
	}
	o.base, o.gone, o.ngone, o.recent = next, make([]bool, len(next)), 0, nil
}

// list returns up to max held hashes greater than after, ascending.
func (o *order) list(after storage.Hash, max int) []storage.Hash {
	i := firstAfter(o.base, after)
	j := firstAfter(o.recent, after)
	out := make([]storage.Hash, 0, min(max, len(o.base)-i+len(o.recent)-j))
	for len(out) < max && (i < len(o.base) || j < len(o.recent)) {
		if j == len(o.recent) || (i < len(o.base) && compareHash(o.base[i], o.recent[j]) < 0) {
			if !o.gone[i] {
				out = append(out, o.base[i])
			}
			i++
			continue
		}
		out = append(out, o.recent[j])
		j++
	}
	return out
}

// len returns the number of hashes held.
func (o *order) len() int { return len(o.base) - o.ngone + len(o.recent) }

// firstAfter returns the index of the first hash of sorted hs greater than h.
func firstAfter(hs []storage.Hash, h storage.Hash) int {
	i, ok := slices.BinarySearchFunc(hs, h, compareHash)
	if ok {
		i++
	}
	return i
}
