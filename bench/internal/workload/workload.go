// Package workload is the data every checkpoint benchmark writes: per rank,
// a float64 field shaped like simulation output (a smooth profile plus
// low-order noise, deterministic per rank and seed) that changes between
// checkpoints in whole 64 KiB pieces at random positions.
//
// The generator uses only integer arithmetic and individually rounded
// float64 operations, so bench/mpiiobench/mpiiobench.c reproduces it bit for
// bit; both print Checksum of the state they wrote, and the harness compares
// them.
//
// States: step 0 is Fill; step k > 0 applies Change(k) to step k-1. The
// benchmarks use step 1 with Fractions[1] = 10% of the pieces changed and
// step 2 with 1%.
package workload

import (
	"encoding/binary"
	"os"
	"strconv"
	"strings"
	"syscall"
	"unsafe"
)

// PieceSize is the unit of change: a changed piece is 64 KiB, aligned.
const PieceSize = 64 << 10

const pieceElems = PieceSize / 8

// Fractions[k] is the fraction of pieces that step k changes.
var Fractions = []float64{1, 0.10, 0.01}

// StepNames name the steps in reports.
var StepNames = []string{"full", "incr10", "incr1"}

// period is the length in elements of the smooth profile's cycle.
const period = 1 << 20

// mix is the splitmix64 finalizer.
func mix(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// unit maps a random word to [0, 1).
func unit(u uint64) float64 { return float64(u>>11) * (1.0 / (1 << 53)) }

func rankSeed(seed uint64, rank int) uint64 {
	return mix(seed ^ (uint64(rank)+1)*0x9e3779b97f4a7c15)
}

// Fill writes rank's initial state into f: a smooth profile around 300 with
// an amplitude of 50, plus noise of amplitude 1e-3 in the low bits.
func Fill(f []float64, rank int, seed uint64) {
	s := rankSeed(seed, rank)
	off := uint64(rank) * 7919
	for k := range f {
		t := float64((uint64(k)+off)%period) / float64(period)
		smooth := float64(300) + float64(float64(200)*float64(t*float64(1-t)))
		noise := float64(float64(unit(mix(s+uint64(k)))-0.5) * 1e-3)
		f[k] = smooth + noise
	}
}

// Pieces returns how many whole pieces f holds.
func Pieces(f []float64) int { return len(f) / pieceElems }

// Changed returns the pieces that step changes for rank, in the order a
// partial Fisher-Yates shuffle picks them: round(frac * pieces), at least 1
// when there is a piece.
func Changed(pieces, rank, step int, seed uint64) []int {
	if pieces == 0 || step <= 0 || step >= len(Fractions) {
		return nil
	}
	n := int(Fractions[step]*float64(pieces) + 0.5)
	n = max(1, min(n, pieces))
	perm := make([]uint32, pieces)
	for i := range perm {
		perm[i] = uint32(i)
	}
	state := mix(rankSeed(seed, rank) ^ uint64(step)*0xd1b54a32d192ed03)
	for i := 0; i < n; i++ {
		state += 0x9e3779b97f4a7c15
		j := i + int(mix(state)%uint64(pieces-i))
		perm[i], perm[j] = perm[j], perm[i]
	}
	out := make([]int, n)
	for i := range out {
		out[i] = int(perm[i])
	}
	return out
}

// Change applies step to f in place: every value of each changed piece
// moves by new noise of amplitude 1e-2. It returns the number of pieces
// changed.
func Change(f []float64, rank, step int, seed uint64) int {
	ps := Changed(Pieces(f), rank, step, seed)
	s := mix(rankSeed(seed, rank) + uint64(step)*0x632be59bd9b4e019)
	for _, p := range ps {
		base := p * pieceElems
		for k := base; k < base+pieceElems; k++ {
			f[k] += float64(float64(unit(mix(s+uint64(k)))-0.5) * 1e-2)
		}
	}
	return len(ps)
}

// State fills f with rank's state after step (0 = full).
func State(f []float64, rank, step int, seed uint64) {
	Fill(f, rank, seed)
	for s := 1; s <= step; s++ {
		Change(f, rank, s, seed)
	}
}

// Checksum is an FNV-1a-style hash over the 64-bit words of f.
func Checksum(f []float64) uint64 {
	h := uint64(0xcbf29ce484222325)
	for _, v := range f {
		h = (h ^ *(*uint64)(unsafe.Pointer(&v))) * 0x100000001b3
	}
	return h
}

// Bytes is the memory of f.
func Bytes(f []float64) []byte {
	if len(f) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&f[0])), len(f)*8)
}

// StatusKiB reads a "Vm..." field of /proc/self/status in KiB (0 when
// unavailable).
func StatusKiB(field string) int64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// ResetPeak resets VmHWM to the current RSS (Linux >= 4.0); false when the
// kernel refused.
func ResetPeak() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

// DropCaches flushes dirty pages and, when allowed (root), drops the page
// cache so that a read-back reads the disk. It reports whether the cache
// was dropped.
func DropCaches() bool {
	syscall.Sync()
	return os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0) == nil
}

// Flush writes back every dirty page of the machine, so that a timed write
// does not pay for an earlier phase's writeback.
func Flush() { syscall.Sync() }

// ChecksumBytes is Checksum over the little-endian float64 words of b
// (len(b) a multiple of 8), as read back from a file.
func ChecksumBytes(b []byte) uint64 {
	h := uint64(0xcbf29ce484222325)
	for i := 0; i+8 <= len(b); i += 8 {
		h = (h ^ binary.LittleEndian.Uint64(b[i:])) * 0x100000001b3
	}
	return h
}
