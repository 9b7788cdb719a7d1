package collective

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

var sink [][]byte

// TestCollectorStartsACollectionPastItsBudget: allocating more than the
// budget since the last collection makes check start one; below it, check
// leaves the runtime alone.
func TestCollectorStartsACollectionPastItsBudget(t *testing.T) {
	// Only this collector's collections count: the runtime's own are off.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	runtime.GC()
	c := newCollector(8 << 20)
	c.check()
	if n := c.started.Load(); n != 0 {
		t.Fatalf("started %d collections with nothing allocated", n)
	}
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 12 {
		sink = append(sink, make([]byte, 1<<20))
	}
	c.check()
	sink = nil
	if c.started.Load() != 1 {
		t.Fatalf("allocated 12 MiB against a budget of 8 MiB: started %d collections, want 1", c.started.Load())
	}
	deadline := time.Now().Add(10 * time.Second)
	for c.running.Load() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if after.NumGC == before.NumGC {
		t.Fatal("check started no collection")
	}
}
