package collective

import (
	"runtime"
	"runtime/metrics"
	"sync/atomic"
)

// collector bounds the garbage a leader leaves between collections. The
// collector's pace is set by the application's heap: with GOGC=100 the
// heap may double before the next collection, and an application whose
// live heap is its state (plus its staging copy, during an asynchronous
// checkpoint) lets gigabytes of checkpoint metadata pile up, all of it
// resident. So the leader checks, between rounds and after each
// checkpoint and restore, how much was allocated since the last
// collection, and starts one in the background past its budget. The
// collection runs concurrently with the application (its pauses are
// sub-millisecond); what it costs is the marking of the heap's pointers,
// little for float arrays.
type collector struct {
	budget  uint64
	running atomic.Bool
	samples []metrics.Sample
	// Allocation count when the last collection was seen or started, and
	// the collection count then.
	mark, cycles uint64
	started      atomic.Int64 // collections this collector started
}

func newCollector(budget int64) *collector {
	return &collector{budget: uint64(max(budget, 1<<20)), samples: []metrics.Sample{
		{Name: "/gc/heap/allocs:bytes"}, {Name: "/gc/cycles/total:gc-cycles"},
	}}
}

// check starts a collection if more than the budget was allocated since
// the last one. Called by one goroutine at a time (the session's).
func (c *collector) check() {
	metrics.Read(c.samples)
	if c.samples[0].Value.Kind() != metrics.KindUint64 || c.samples[1].Value.Kind() != metrics.KindUint64 {
		return // metric not supported by this runtime
	}
	allocs, cycles := c.samples[0].Value.Uint64(), c.samples[1].Value.Uint64()
	if cycles != c.cycles {
		// A collection happened (the runtime's own, or ours): count from
		// here. Allocations since it are an upper bound of its garbage.
		c.cycles, c.mark = cycles, allocs
		return
	}
	if allocs-c.mark < c.budget || !c.running.CompareAndSwap(false, true) {
		return
	}
	c.mark = allocs
	c.started.Add(1)
	go func() {
		defer c.running.Store(false)
		runtime.GC()
	}()
}
