package client

import "sync"

// blockBufs recycles the buffers blocks are compressed into (Writer) and
// compressed blocks are read into (Reader.ReadBlockInto): without them, a
// writer probing a large object for compressibility left a block of
// garbage per probe (64 MiB per GiB of simulation data), and a leader's
// heap grew by the checkpoint's size before the collector ran.
var blockBufs sync.Pool

// getBlockBuf returns a pooled buffer of length n.
func getBlockBuf(n int) *[]byte {
	if bp, ok := blockBufs.Get().(*[]byte); ok && cap(*bp) >= n {
		*bp = (*bp)[:n]
		return bp
	}
	b := make([]byte, n)
	return &b
}
