package chunk

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"
)

// FuzzCDC checks the invariants of CDC on any bytes and sizes: the lengths
// sum to the input, each lies in [min, max] except the last, and a Reader
// with uneven reads finds the same boundaries.
func FuzzCDC(f *testing.F) {
	f.Add([]byte{}, uint16(16), uint16(64), uint16(256), uint8(7))
	f.Add(make([]byte, 5000), uint16(1), uint16(64), uint16(64), uint8(1))
	f.Add(randomBytes(1, 20000), uint16(64), uint16(256), uint16(1024), uint8(33))
	f.Fuzz(func(t *testing.T, data []byte, lo, avg, hi uint16, seed uint8) {
		c, err := CDC(int(lo), int(avg), int(hi))
		if err != nil {
			t.Skip()
		}
		lens := c.Cut(data, nil)
		checkLengths(t, c, len(data), lens)
		rr := &randomReader{data: data, r: rand.New(rand.NewPCG(uint64(seed), 0)), max: 1 + int(seed)*int(seed)}
		got := readAll(t, c, rr, data)
		if !slices.Equal(got, lens) {
			t.Fatalf("Reader found %v, Cut %v", got, lens)
		}
		if len(data) > 0 && c.First(data) != lens[0] {
			t.Fatalf("First = %d, Cut's first chunk %d", c.First(data), lens[0])
		}
		// A copy of the bytes after any boundary is cut the same way:
		// boundaries depend on content, not on where the slice lives.
		if len(lens) > 1 {
			rest := bytes.Clone(data[lens[0]:])
			if again := c.Cut(rest, nil); !slices.Equal(again, lens[1:]) {
				t.Fatalf("cutting from the second chunk gave %v, want %v", again, lens[1:])
			}
		}
	})
}
