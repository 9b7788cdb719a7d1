package collective

import (
	"runtime"
	"runtime/metrics"
	"sync/atomic"
)

// collector bounds the garbage a leader leaves between collections. The
// Go collector's pace is set by the live heap: with GOGC=100 the heap may
// double before the next collection, and an application whose live heap
// is its state (plus its staging copy, during an asynchronous checkpoint)
// lets gigabytes of checkpoint metadata pile up, all of it resident. So
// the session checks, between rounds and after each checkpoint and
// restore, how far the heap's objects exceed what the last collection
// found live, and past its budget starts a collection in the background.
// The collection runs concurrently with the application (its pauses are
// sub-millisecond); what it costs is the marking of the heap's pointers,
// little for float arrays.
type collector struct {
	budget  uint64
	running atomic.Bool
	samples []metrics.Sample
	started atomic.Int64 // collections this collector started
}

func newCollector(budget int64) *collector {
	return &collector{budget: uint64(max(budget, 1<<20)), samples: []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/heap/live:bytes"},
	}}
}

// check starts a collection if the heap holds more than the budget beyond
// what the last collection found live. Called by the session's goroutine.
func (c *collector) check() {
	if c.running.Load() {
		return
	}
	s := c.samples
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 || s[1].Value.Kind() != metrics.KindUint64 {
		return // not supported by this runtime
	}
	objects, live := s[0].Value.Uint64(), s[1].Value.Uint64()
	if objects < live || objects-live < c.budget || !c.running.CompareAndSwap(false, true) {
		return
	}
	c.started.Add(1)
	go func() {
		defer c.running.Store(false)
		runtime.GC()
	}()
}

// reclaim collects now and waits for it: after a leader lets its slabs go,
// so that its next allocations reuse their memory instead of growing the
// heap by as much again before a background collection would free it.
// For a heap that is mostly the application's arrays (no pointers to
// mark) it takes milliseconds.
func (c *collector) reclaim() {
	c.started.Add(1)
	runtime.GC()
}
