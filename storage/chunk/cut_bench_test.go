package chunk

import "testing"

// BenchmarkCut measures cutting throughput on random bytes, the CDC worst
// case (no byte is skipped but the first Min of each chunk).
func BenchmarkCut(b *testing.B) {
	data := randomBytes(1, 64<<20)
	for _, o := range []Options{{Kind: KindFixed}, {Kind: KindCDC}, {Kind: KindCDC, Size: 1 << 20}} {
		c := mustNew(b, o)
		b.Run(string(o.Kind)+"-"+sizeName(o.Size), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			var lens []int
			for b.Loop() {
				lens = c.Cut(data, lens[:0])
			}
			b.ReportMetric(float64(len(data))/float64(len(lens)), "B/chunk")
		})
	}
}

func sizeName(n int) string {
	if n == 0 {
		n = DefaultSize
	}
	if n >= 1<<20 {
		return itoa(n>>20) + "M"
	}
	return itoa(n>>10) + "K"
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}
