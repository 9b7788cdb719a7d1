package chunk

import (
	"fmt"
	"math/bits"

	"github.com/ckptio/ckptio/storage"
)

// minCDCAvg is the smallest average CDC accepts: the small mask needs
// log2(avg)-2 >= 4 bits to cut anywhere near the average.
const minCDCAvg = 64

type cdc struct {
	min, avg, max int
	maskS, maskL  uint64 // before avg: more bits (rare cuts); after: fewer
}

// CDC returns a content-defined Chunker (FastCDC, normalized chunking level
// 2) whose chunks are about avg bytes long, within [min, max] except the
// last. It needs 1 <= min <= avg <= max <= storage.MaxBlockSize and
// avg >= 64. The usual choice is min = avg/4 and max = avg*4.
func CDC(min, avg, max int) (Chunker, error) {
	switch {
	case avg < minCDCAvg || avg > storage.MaxBlockSize:
		return nil, fmt.Errorf("chunk: cdc average %d out of range [%d, %d]", avg, minCDCAvg, storage.MaxBlockSize)
	case min < 1 || min > avg:
		return nil, fmt.Errorf("chunk: cdc min %d out of range [1, average %d]", min, avg)
	case max < avg || max > storage.MaxBlockSize:
		return nil, fmt.Errorf("chunk: cdc max %d out of range [average %d, %d]", max, avg, storage.MaxBlockSize)
	}
	// log2(avg), rounded to the nearest power of two.
	b := bits.Len(uint(avg) * 3 / 4)
	return &cdc{
		min: min, avg: avg, max: max,
		maskS: ^uint64(0) << (64 - (b + 2)),
		maskL: ^uint64(0) << (64 - (b - 2)),
	}, nil
}

func (c *cdc) Min() int { return c.min }
func (c *cdc) Max() int { return c.max }

func (c *cdc) Cut(data []byte, dst []int) []int {
	dst = growInts(dst, len(data)/c.avg+1)
	for len(data) > 0 {
		n := c.First(data)
		dst = append(dst, n)
		data = data[n:]
	}
	return dst
}

func (c *cdc) First(data []byte) int {
	n := len(data)
	if n <= c.min {
		return n
	}
	if n > c.max {
		n = c.max
	}
	normal := min(c.avg, n)
	data = data[:n]
	var h uint64
	i := c.min
	for ; i < normal; i++ {
		h = h<<1 + gearTable[data[i]]
		if h&c.maskS == 0 {
			return i + 1
		}
	}
	for ; i < n; i++ {
		h = h<<1 + gearTable[data[i]]
		if h&c.maskL == 0 {
			return i + 1
		}
	}
	return n
}

// gearTable maps each byte to a random 64-bit value. It is part of the
// chunk format (see the package comment): its values come from splitmix64
// seeded with gearSeed and must never change.
var gearTable = func() (t [256]uint64) {
	s := uint64(gearSeed)
	for i := range t {
		s += 0x9e3779b97f4a7c15
		z := s
		z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
		z = (z ^ z>>27) * 0x94d049bb133111eb
		t[i] = z ^ z>>31
	}
	return t
}()

const gearSeed = 0x636b7074696f4344 // "ckptioCD"
