package storage

import (
	"math/bits"
	"sync"
)

// Block-sized buffers are recycled through GetBuffer and PutBuffer: a store
// receiving a stream of puts, or a writer compressing a stream of blocks,
// otherwise allocates one buffer per block and spends its CPU (and, on an
// application's leader, its memory) on the garbage. Sizes go in
// power-of-two classes from 4 KiB to MaxPooledBuffer's, each with
// bufferSlack bytes more for what travels with a block (a put request's
// hash); longer buffers are not pooled.
const (
	minBufferClass = 12 // 4 KiB
	maxBufferClass = 22 // 4 MiB
	bufferSlack    = 4096

	// MaxPooledBuffer is the longest buffer GetBuffer recycles.
	MaxPooledBuffer = 1<<maxBufferClass + bufferSlack
)

var bufferClasses [maxBufferClass - minBufferClass + 1]sync.Pool

// bufferClass returns the class for n bytes, or -1 when n is not pooled.
func bufferClass(n int) int {
	if n <= 0 || n > MaxPooledBuffer {
		return -1
	}
	k := minBufferClass
	if n > 1<<minBufferClass+bufferSlack {
		k = bits.Len(uint(n - bufferSlack - 1))
	}
	return k - minBufferClass
}

// GetBuffer returns a buffer of length n, recycled when n is at most
// MaxPooledBuffer. Its contents are undefined.
func GetBuffer(n int) []byte {
	c := bufferClass(n)
	if c < 0 {
		return make([]byte, n)
	}
	if b, ok := bufferClasses[c].Get().(*[]byte); ok {
		return (*b)[:n]
	}
	return make([]byte, n, 1<<(c+minBufferClass)+bufferSlack)
}

// PutBuffer recycles b, which GetBuffer returned and nobody uses any
// more. Other buffers are left to the collector.
func PutBuffer(b []byte) {
	c := bufferClass(cap(b))
	if c < 0 || cap(b) != 1<<(c+minBufferClass)+bufferSlack {
		return
	}
	b = b[:0]
	bufferClasses[c].Put(&b)
}
