package storage

import "testing"

func TestBufferClasses(t *testing.T) {
	for _, n := range []int{1, 4096, 4096 + bufferSlack, 4096 + bufferSlack + 1, 64<<10 + 32, 1 << 20, 1<<22 + bufferSlack} {
		b := GetBuffer(n)
		if len(b) != n {
			t.Fatalf("get(%d): length %d", n, len(b))
		}
		PutBuffer(b)
		if again := GetBuffer(n); len(again) != n || cap(again) < n {
			t.Fatalf("get(%d) after put: length %d, capacity %d", n, len(again), cap(again))
		}
	}
	for _, n := range []int{0, MaxPooledBuffer + 1, 16 << 20} {
		if b := GetBuffer(n); len(b) != n || cap(b) != n {
			t.Fatalf("get(%d): want an unpooled buffer of exactly %d bytes, got length %d, capacity %d", n, n, len(b), cap(b))
		}
	}
	// A foreign buffer is not adopted.
	PutBuffer(make([]byte, 100))
	if b := GetBuffer(100); cap(b) != 1<<minBufferClass+bufferSlack {
		t.Fatalf("get(100) returned a foreign buffer of capacity %d", cap(b))
	}
}
