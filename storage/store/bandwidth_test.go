package store_test

import (
	"sync"
	"testing"
	"time"

	"github.com/ckptio/ckptio/storage/memstore"
	"github.com/ckptio/ckptio/storage/store"
	"github.com/ckptio/ckptio/storage/storetest"
	"github.com/ckptio/ckptio/storage/wire"
)

func TestBucketRefillsAtItsRate(t *testing.T) {
	clk := storetest.NewClock(time.Unix(1000, 0))
	b := store.NewBucket(1000, 100, clk.Now) // 1000 B/s, burst 100
	if d := b.Take(100); d != 0 {
		t.Fatalf("a full bucket made the first 100 bytes wait %v", d)
	}
	if d := b.Take(50); d != 50*time.Millisecond {
		t.Fatalf("50 bytes over an empty bucket wait %v, want 50ms", d)
	}
	// The debt is paid after 50ms; 100ms more refill 100 bytes.
	clk.Advance(150 * time.Millisecond)
	if d := b.Take(100); d != 0 {
		t.Fatalf("after a refill of 100 bytes, 100 waited %v", d)
	}
	// A long idle time refills only up to the burst.
	clk.Advance(time.Hour)
	if d := b.Take(300); d != 200*time.Millisecond {
		t.Fatalf("300 bytes after an hour idle wait %v, want 200ms (burst 100)", d)
	}
}

func TestBucketDefaultBurst(t *testing.T) {
	if got := store.DefaultBurst(20 << 20); got != 1<<20 {
		t.Fatalf("DefaultBurst(20MiB/s) = %d, want 1 MiB", got)
	}
	if got := store.DefaultBurst(1000); got != 32<<10 {
		t.Fatalf("DefaultBurst(1000) = %d, want the 32 KiB floor", got)
	}
}

// TestBandwidthLimitWaitsForEveryByte runs puts and gets through a real
// server whose bucket runs on a fake clock that moves only when the limit
// makes a connection wait: the waits then add up to the bytes moved over
// the rate, less the burst, in both directions together.
func TestBandwidthLimitWaitsForEveryByte(t *testing.T) {
	const rate, burst = 1 << 20, 64 << 10
	clk := storetest.NewClock(time.Unix(1000, 0))
	var mu sync.Mutex
	var waited time.Duration
	addr, srv := serveWith(t, memstore.New("m", 0), store.Options{}, nil, func(s *store.Server) {
		store.SetBandwidthBucket(s, rate, burst, clk.Now)
		store.SetBandwidthWait(s, func(d time.Duration) {
			mu.Lock()
			waited += d
			mu.Unlock()
			clk.Advance(d)
		})
	})
	nc := rawConn(t, addr)
	var moved int64
	for i := range 8 {
		data, h := storetest.Block(int64(i), 256<<10)
		send(t, nc, uint64(2*i+1), wire.OpPutBlock, h[:], data)
		if f := recv(t, nc); f.Status != wire.StatusOK {
			t.Fatalf("put %d: %+v", i, f.Header)
		}
		send(t, nc, uint64(2*i+2), wire.OpGetBlock, h[:])
		if f := recv(t, nc); f.Status != wire.StatusOK || len(f.Payload) != len(data) {
			t.Fatalf("get %d: %+v", i, f.Header)
		}
		moved += 2 * int64(len(data))
	}
	st := srv.Stats()
	if st.BytesIn < moved/2 || st.BytesOut < moved/2 {
		t.Fatalf("stats count %d bytes in, %d out; the test moved %d each way", st.BytesIn, st.BytesOut, moved/2)
	}
	total := st.BytesIn + st.BytesOut
	mu.Lock()
	paid := int64(waited.Seconds() * rate)
	mu.Unlock()
	// Every byte beyond the first burst was waited for, and none twice.
	if paid < total-2*burst || paid > total {
		t.Fatalf("the limit waited for %d bytes of the %d moved (burst %d)", paid, total, burst)
	}
	if st.Errors != 0 {
		t.Fatalf("stats count %d errors, want 0", st.Errors)
	}
}

func TestStatsCountErrors(t *testing.T) {
	addr, srv := serve(t, memstore.New("m", 100), store.Options{})
	nc := rawConn(t, addr)
	_, missing := storetest.Block(1, 10)
	send(t, nc, 1, wire.OpGetBlock, missing[:])
	if f := recv(t, nc); f.Status != wire.StatusNotFound {
		t.Fatalf("get of a missing block: %+v", f.Header)
	}
	data, h := storetest.Block(2, 1000) // over the 100-byte quota
	send(t, nc, 2, wire.OpPutBlock, h[:], data)
	if f := recv(t, nc); f.Status == wire.StatusOK {
		t.Fatalf("put over quota: %+v", f.Header)
	}
	if got := srv.Stats().Errors; got != 1 {
		t.Fatalf("errors = %d, want 1 (the refused put; a missing block is no error)", got)
	}
	if srv.Stats().Started.IsZero() {
		t.Fatal("Stats.Started is zero")
	}
}
