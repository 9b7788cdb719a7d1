package codec

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
)

// Test data, one kind per way a checkpoint block can look.

// smoothField is a float64 field such as a simulation holds on a fine
// grid: a smooth 2-D function of the cell, changing by about 1e-4 from one
// cell to the next, plus noise in the last digits. Neighbours mostly share
// their upper 4 bytes (sign, exponent, 20 bits of mantissa), so lz4 finds a
// 4-byte match every 8 bytes and saves little: the slow case.
func smoothField(seed uint64, n int) []byte {
	return field(seed, n, 0.02, 1e-9)
}

// noisyField is the same field with noise at 1e-7: neighbours share their
// upper 4 bytes less often, lz4 saves 1-2%, and most blocks end up stored
// raw after all: the case where giving up early pays.
func noisyField(seed uint64, n int) []byte {
	return field(seed, n, 0.02, 1e-7)
}

func field(seed uint64, n int, amplitude, noise float64) []byte {
	r := rand.New(rand.NewPCG(seed, 2))
	b := make([]byte, n)
	const nx = 1024
	for i := 0; i+8 <= n; i += 8 {
		c := i / 8
		x, y := float64(c%nx), float64(c/nx)
		v := 300 + amplitude*math.Sin(x*2*math.Pi/nx)*math.Cos(y*2*math.Pi/nx) + noise*r.NormFloat64()
		binary.LittleEndian.PutUint64(b[i:], math.Float64bits(v))
	}
	return b
}

func randomData(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 3))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

func zeros(_ uint64, n int) []byte { return make([]byte, n) }

// text is log-like lines: what ckpt put often stores next to the data.
func text(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 4))
	words := []string{"rank", "step", "residual", "converged", "halo", "exchange", "temperature",
		"pressure", "boundary", "checkpoint", "written", "solver", "iteration", "warning", "mesh", "cell"}
	b := make([]byte, 0, n+200)
	for step := 0; len(b) < n; step++ {
		b = fmt.Appendf(b, "%06d rank=%d t=%.6f", step, r.IntN(64), float64(step)*1e-3)
		for range 3 + r.IntN(6) {
			b = append(b, ' ')
			b = append(b, words[r.IntN(len(words))]...)
		}
		b = fmt.Appendf(b, " residual=%.3e\n", r.Float64()*1e-4)
	}
	return b[:n]
}

type dataKind struct {
	name string
	gen  func(seed uint64, n int) []byte
}

var dataKinds = []dataKind{
	{"float64", smoothField},
	{"float64-noisy", noisyField},
	{"random", randomData},
	{"zeros", zeros},
	{"text", text},
}
