package chunk

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/codec"
)

// BenchmarkBlockSize is the evidence for DefaultSize. For each candidate
// it reports, on 64 MiB of float64 field data:
//
//	MB/s        cutting, hashing (BLAKE3) and codec.Encode, one core
//	vs-1M       that throughput over the same work in 1 MiB blocks,
//	            measured in the same iterations: the per-block overhead
//	rand-MB/s   MB/s on random bytes, which lz4 gives up on at once, so
//	rand-vs-1M  that the per-block costs show more
//	stored%     bytes stored after Encode, in % of the data
//	resent%-1   logical bytes in blocks that changed, in % of the data,
//	            after 1% of the 4 KiB pages were rewritten at random
//	resent%-10  the same with 10% of the pages
//	blocks/GiB  manifest rows per GiB of checkpoint
//
// "cdc" rows cut with CDC around the same average.
func BenchmarkBlockSize(b *testing.B) {
	const total = 64 << 20
	data := floatField(1, total)
	random := randomBytes(4, total)
	v1 := rewritePages(data, 0.01, 2)
	v10 := rewritePages(data, 0.10, 3)
	ref := mustNew(b, Options{Size: 1 << 20})

	type candidate struct {
		name string
		opts Options
	}
	var cands []candidate
	for _, size := range []int{64 << 10, 128 << 10, 256 << 10, 512 << 10, 1 << 20} {
		cands = append(cands, candidate{"fixed-" + sizeName(size), Options{Size: size}})
	}
	cands = append(cands, candidate{"cdc-" + sizeName(DefaultSize), Options{Kind: KindCDC}})

	for _, cand := range cands {
		c := mustNew(b, cand.opts)
		b.Run(cand.name, func(b *testing.B) {
			dst := make([]byte, c.Max())
			var lens []int
			var t, tref, tr, trref time.Duration
			stored := 0
			for b.Loop() {
				t0 := time.Now()
				lens, stored = process(c, data, lens[:0], dst)
				t1 := time.Now()
				process(ref, data, nil, dst)
				t2 := time.Now()
				process(c, random, nil, dst)
				t3 := time.Now()
				process(ref, random, nil, dst)
				t4 := time.Now()
				t += t1.Sub(t0)
				tref += t2.Sub(t1)
				tr += t3.Sub(t2)
				trref += t4.Sub(t3)
			}
			mb := float64(total) * float64(b.N) / 1e6
			b.ReportMetric(mb/t.Seconds(), "MB/s")
			b.ReportMetric(tref.Seconds()/t.Seconds(), "vs-1M")
			b.ReportMetric(mb/tr.Seconds(), "rand-MB/s")
			b.ReportMetric(trref.Seconds()/tr.Seconds(), "rand-vs-1M")
			b.ReportMetric(100*float64(stored)/total, "stored%")
			b.ReportMetric(100*resent(c, data, v1)/total, "resent%-1")
			b.ReportMetric(100*resent(c, data, v10)/total, "resent%-10")
			b.ReportMetric(float64(len(lens))*(1<<30)/total, "blocks/GiB")
		})
	}
}

// process does a leader's per-block work: cut, hash, encode. It returns
// the chunk lengths and the bytes stored.
func process(c Chunker, data []byte, lens []int, dst []byte) ([]int, int) {
	lens = c.Cut(data, lens)
	off, stored := 0, 0
	for _, n := range lens {
		block := data[off : off+n]
		_ = storage.Sum(block)
		s, _ := codec.Encode(dst, block)
		stored += len(s)
		off += n
	}
	return lens, stored
}

// resent returns how many bytes of next lie in chunks that prev does not
// have: what an incremental checkpoint sends.
func resent(c Chunker, prev, next []byte) float64 {
	have := chunkHashes(c, prev)
	sent := 0
	for _, n := range c.Cut(next, nil) {
		if _, ok := have[storage.Sum(next[:n])]; !ok {
			sent += n
		}
		next = next[n:]
	}
	return float64(sent)
}

// floatField is a float64 field on a 1024-wide grid: smooth, with noise in
// the last digits, as a simulation's state looks.
func floatField(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 2))
	b := make([]byte, n)
	const nx = 1024
	for i := 0; i+8 <= n; i += 8 {
		c := i / 8
		x, y := float64(c%nx), float64(c/nx)
		v := 300 + 0.02*math.Sin(x*2*math.Pi/nx)*math.Cos(y*2*math.Pi/nx) + 1e-9*r.NormFloat64()
		binary.LittleEndian.PutUint64(b[i:], math.Float64bits(v))
	}
	return b
}

// rewritePages returns a copy of data in which a fraction of the 4 KiB
// pages, chosen at random, have every value nudged as a time step would.
func rewritePages(data []byte, fraction float64, seed uint64) []byte {
	const page = 4096
	out := append([]byte(nil), data...)
	pages := len(data) / page
	r := rand.New(rand.NewPCG(seed, 5))
	for _, p := range r.Perm(pages)[:int(fraction*float64(pages))] {
		for i := p * page; i < (p+1)*page; i += 8 {
			v := math.Float64frombits(binary.LittleEndian.Uint64(out[i:]))
			binary.LittleEndian.PutUint64(out[i:], math.Float64bits(v+1e-6*r.NormFloat64()))
		}
	}
	return out
}
