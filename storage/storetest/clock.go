package storetest

import (
	"runtime"
	"sync"
	"time"
)

// Clock is a fake clock for a store under test: it stands still until
// Advance moves it, so a test makes two touches differ by advancing it
// rather than by sleeping. Give its Now to the store (disk.Options.Now,
// memstore.NewWithClock). It is safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock that reads start until it is advanced.
func NewClock(start time.Time) *Clock {
	return &Clock{t: start}
}

// Now returns the clock's time. It has no monotonic reading, so it
// compares with the times a store keeps as wall-clock times do.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock d forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// clock is what the suite asks of the store's clock.
type clock interface {
	// now returns the store's current time.
	now() time.Time
	// moment returns a time strictly after every time the store read
	// before the call, and strictly before every time it reads after the
	// call returns.
	moment() time.Time
}

// tick separates the moments the suite compares touch times against.
const tick = time.Millisecond

// fakeClock is a Clock that the suite advances.
type fakeClock struct{ c *Clock }

func (f fakeClock) now() time.Time { return f.c.Now() }

func (f fakeClock) moment() time.Time {
	f.c.Advance(tick)
	m := f.c.Now()
	f.c.Advance(tick)
	return m
}

// wallClock is the real clock, for stores that read time.Now: a moment is
// found by waiting until the wall clock has moved past what the store may
// have read, however coarse the clock is.
type wallClock struct{}

func (wallClock) now() time.Time { return time.Now() }

func (wallClock) moment() time.Time {
	m := wallAfter(time.Now())
	wallAfter(m)
	return m
}

// wallAfter waits until the wall clock reads later than t and returns that
// reading, without its monotonic part: stores keep wall-clock times, and
// the comparison must be on the same clock.
func wallAfter(t time.Time) time.Time {
	for {
		if now := time.Now().Round(0); now.UnixNano() > t.UnixNano() {
			return now
		}
		runtime.Gosched()
	}
}
