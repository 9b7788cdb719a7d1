package codec

import (
	"strconv"
	"testing"
	"time"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/chunk"
	"github.com/ckptio/ckptio/storage/manifest"
)

// BenchmarkEncode encodes 16 MiB of each kind of data in blocks of
// chunk.DefaultSize with both lz4 compressors, and hashes the same blocks
// with BLAKE3 in the same iterations. It reports:
//
//	MB/s            encode throughput (one core)
//	blake3-MB/s     hashing throughput on the same blocks
//	enc/hash        encode time over hash time: above 1, compression and
//	                not hashing bounds a leader
//	stored/logical  bytes stored over bytes encoded
//	raw%            share of the blocks stored raw
func BenchmarkEncode(b *testing.B) {
	benchEncode(b, chunk.DefaultSize, dataKinds)
}

// BenchmarkEncodeSizes repeats BenchmarkEncode for the float64 fields at
// the candidate block sizes. lz4's CCompat compressor uses a 4-byte hash
// below 64 KiB + 11 bytes and a 5-byte one above, which shows here.
func BenchmarkEncodeSizes(b *testing.B) {
	for _, size := range []int{64 << 10, 128 << 10, 256 << 10, 512 << 10, 1 << 20} {
		b.Run(sizeName(size), func(b *testing.B) { benchEncode(b, size, dataKinds[:2]) })
	}
}

func sizeName(n int) string {
	if n >= 1<<20 {
		return strconv.Itoa(n>>20) + "M"
	}
	return strconv.Itoa(n>>10) + "K"
}

func benchEncode(b *testing.B, size int, kinds []dataKind) {
	const total = 16 << 20
	for _, k := range kinds {
		data := k.gen(1, total)
		for _, e := range engines {
			b.Run(k.name+"/"+e.name, func(b *testing.B) {
				dst := make([]byte, size)
				var encT, hashT time.Duration
				var stored, raw, blocks int
				for b.Loop() {
					stored, raw, blocks = 0, 0, 0
					t0 := time.Now()
					for off := 0; off < len(data); off += size {
						s, c := e.encode(dst, data[off:off+size])
						stored += len(s)
						blocks++
						if c == manifest.CodecRaw {
							raw++
						}
					}
					t1 := time.Now()
					for off := 0; off < len(data); off += size {
						_ = storage.Sum(data[off : off+size])
					}
					t2 := time.Now()
					encT += t1.Sub(t0)
					hashT += t2.Sub(t1)
				}
				mb := float64(total) * float64(b.N) / 1e6
				b.ReportMetric(mb/encT.Seconds(), "MB/s")
				b.ReportMetric(mb/hashT.Seconds(), "blake3-MB/s")
				b.ReportMetric(encT.Seconds()/hashT.Seconds(), "enc/hash")
				b.ReportMetric(float64(stored)/total, "stored/logical")
				b.ReportMetric(100*float64(raw)/float64(blocks), "raw%")
			})
		}
	}
}
