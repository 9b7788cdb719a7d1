package chunk

import (
	"fmt"

	"github.com/ckptio/ckptio/storage"
)

type fixed struct{ size int }

// Fixed returns a Chunker that cuts every size bytes. size must be in
// [1, storage.MaxBlockSize].
func Fixed(size int) (Chunker, error) {
	if size < 1 || size > storage.MaxBlockSize {
		return nil, fmt.Errorf("chunk: fixed size %d out of range [1, %d]", size, storage.MaxBlockSize)
	}
	return fixed{size}, nil
}

func (f fixed) Min() int { return f.size }
func (f fixed) Max() int { return f.size }

func (f fixed) First(data []byte) int { return min(len(data), f.size) }

func (f fixed) Cut(data []byte, dst []int) []int {
	n := len(data)
	dst = growInts(dst, (n+f.size-1)/f.size)
	for ; n >= f.size; n -= f.size {
		dst = append(dst, f.size)
	}
	if n > 0 {
		dst = append(dst, n)
	}
	return dst
}

// growInts makes room in dst for n more elements.
func growInts(dst []int, n int) []int {
	if cap(dst)-len(dst) < n {
		d := make([]int, len(dst), len(dst)+n)
		copy(d, dst)
		dst = d
	}
	return dst
}
