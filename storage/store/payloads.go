package store

import (
	"math/bits"
	"sync"
)

// Payload buffers of put requests are recycled: a store receiving a stream
// of blocks otherwise allocates one buffer per block and spends its CPU
// collecting them (a tenth of a store's samples under a 64 KiB put load,
// docs/benchmarks.md). Classes are powers of two from 4 KiB to 1 MiB plus
// slack for the request's hash; larger payloads are allocated per frame,
// growing with what arrives (wire.ReadFrame).
const (
	minClass     = 12 // 4 KiB
	maxClass     = 20 // 1 MiB
	payloadSlack = 4096
)

type payloads struct {
	classes [maxClass - minClass + 1]sync.Pool
}

// class returns the pool index for a payload of n bytes, or -1 when n is
// not pooled.
func class(n int) int {
	if n <= 0 || n > 1<<maxClass+payloadSlack {
		return -1
	}
	k := minClass
	if n > 1<<minClass+payloadSlack {
		k = bits.Len(uint(n - payloadSlack - 1))
	}
	return k - minClass
}

// get returns a buffer of length n, or nil when n is not pooled.
func (p *payloads) get(n int) []byte {
	c := class(n)
	if c < 0 {
		return nil
	}
	if b, ok := p.classes[c].Get().(*[]byte); ok {
		return (*b)[:n]
	}
	return make([]byte, n, 1<<(c+minClass)+payloadSlack)
}

// put recycles b, which get returned and nobody uses any more.
func (p *payloads) put(b []byte) {
	c := class(cap(b))
	if c < 0 || cap(b) != 1<<(c+minClass)+payloadSlack {
		return
	}
	b = b[:0]
	p.classes[c].Put(&b)
}
