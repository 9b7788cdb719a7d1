package store

import "testing"

func TestPayloadClasses(t *testing.T) {
	var p payloads
	for _, n := range []int{1, 4096, 4096 + payloadSlack, 4096 + payloadSlack + 1, 64<<10 + 32, 1 << 20, 1<<20 + payloadSlack} {
		b := p.get(n)
		if len(b) != n {
			t.Fatalf("get(%d): length %d", n, len(b))
		}
		p.put(b)
		if again := p.get(n); len(again) != n || cap(again) < n {
			t.Fatalf("get(%d) after put: length %d, capacity %d", n, len(again), cap(again))
		}
	}
	for _, n := range []int{0, 1<<20 + payloadSlack + 1, 16 << 20} {
		if b := p.get(n); b != nil {
			t.Fatalf("get(%d): want nil (not pooled), got %d bytes", n, len(b))
		}
	}
	// A foreign buffer is not adopted.
	p.put(make([]byte, 100))
	if b := p.get(100); cap(b) != 1<<minClass+payloadSlack {
		t.Fatalf("get(100) returned a foreign buffer of capacity %d", cap(b))
	}
}
