package progress

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a Clock whose time moves only when told, and whose one
// ticker ticks only when told.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	ticks chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Unix(1_700_000_000, 0), ticks: make(chan time.Time)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// tick delivers one tick; it returns once the Meter has taken it.
func (c *fakeClock) tick() { c.ticks <- c.Now() }

// redraw delivers a tick and returns once the Meter has handled it: it
// takes a second tick only when done with the first (whose redraw, with
// the same counts, may still be under way).
func (c *fakeClock) redraw() {
	c.tick()
	c.tick()
}

func (c *fakeClock) NewTicker(time.Duration) Ticker { return fakeTicker{c.ticks} }

type fakeTicker struct{ c chan time.Time }

func (t fakeTicker) C() <-chan time.Time { return t.c }
func (t fakeTicker) Stop()               {}

// lines is a writer that hands each write to the test.
type lines chan string

func (l lines) Write(p []byte) (int, error) {
	l <- string(p)
	return len(p), nil
}

func (l lines) next(t *testing.T) string {
	t.Helper()
	select {
	case s := <-l:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("no line written")
		return ""
	}
}

const mib = 1 << 20

func TestPlainLines(t *testing.T) {
	clk := newFakeClock()
	out := make(lines)
	m := Start("put heat", 300*mib, Options{Out: out, Mode: Plain, Clock: clk})

	clk.advance(time.Second)
	m.Add(60 * mib)
	m.Add(60 * mib)
	go clk.tick()
	if got, want := out.next(t), "ckpt: put heat: 120.0 MiB of 300.0 MiB (40%), 125.8 MB/s, ETA 1.5s\n"; got != want {
		t.Errorf("line\n got %q\nwant %q", got, want)
	}

	clk.advance(time.Second)
	m.Add(180 * mib)
	go clk.tick()
	if got, want := out.next(t), "ckpt: put heat: 300.0 MiB of 300.0 MiB (100%), 157.3 MB/s\n"; got != want {
		t.Errorf("line\n got %q\nwant %q", got, want)
	}

	res := m.Stop()
	if res.Bytes != 300*mib || res.Elapsed != 2*time.Second {
		t.Errorf("result %+v, want 300 MiB in 2s", res)
	}
	if got, want := res.String(), "300.0 MiB in 2s, 157.3 MB/s"; got != want {
		t.Errorf("result %q, want %q", got, want)
	}
	if again := m.Stop(); again != res {
		t.Errorf("second Stop %+v, want %+v", again, res)
	}
}

func TestPlainUnknownTotalAndSet(t *testing.T) {
	clk := newFakeClock()
	out := make(lines)
	m := Start("repair", 0, Options{Out: out, Mode: Plain, Clock: clk})
	clk.advance(2 * time.Second)
	m.Set(10 * 1e6)
	go clk.tick()
	if got, want := out.next(t), "ckpt: repair: 9.5 MiB, 5.0 MB/s\n"; got != want {
		t.Errorf("line\n got %q\nwant %q", got, want)
	}
	m.SetTotal(40 * 1e6)
	go clk.tick()
	if got, want := out.next(t), "ckpt: repair: 9.5 MiB of 38.1 MiB (25%), 5.0 MB/s, ETA 6s\n"; got != want {
		t.Errorf("line\n got %q\nwant %q", got, want)
	}
	m.Stop()
}

func TestOffWritesNothing(t *testing.T) {
	var buf bytes.Buffer
	clk := newFakeClock()
	m := Start("get heat", 10, Options{Out: &buf, Mode: Off, Clock: clk})
	m.Add(10)
	clk.advance(time.Second)
	if res := m.Stop(); res.Bytes != 10 || res.Elapsed != time.Second {
		t.Errorf("result %+v", res)
	}
	if buf.Len() != 0 {
		t.Errorf("Off wrote %q", buf.String())
	}
}

// syncBuffer is a bytes.Buffer safe for the bar's writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestBar(t *testing.T) {
	var buf syncBuffer
	clk := newFakeClock()
	m := Start("get heat", 8*mib, Options{Out: &buf, Mode: Bar, Clock: clk})
	m.Add(2 * mib)
	clk.redraw() // at 25%
	for range 6 {
		m.Add(mib)
	}
	clk.advance(4 * time.Second)
	res := m.Stop()
	if res.Bytes != 8*mib || res.Rate() != "2.1 MB/s" {
		t.Errorf("result %+v (%s), want 8 MiB at 2.1 MB/s", res, res.Rate())
	}
	out := buf.String()
	for _, want := range []string{"ckpt: get heat", "25%", "(2.0/8.0 MiB", "100%", "|", "█", "\r"} {
		if !strings.Contains(out, want) {
			t.Errorf("bar output lacks %q:\n%q", want, out)
		}
	}
	if !strings.HasSuffix(out, "\n") {
		t.Errorf("bar does not end its line: %q", out)
	}
}

func TestBarStoppedShort(t *testing.T) {
	var buf syncBuffer
	m := Start("put heat", 10*mib, Options{Out: &buf, Mode: Bar, Clock: newFakeClock()})
	m.Add(5 * mib)
	m.Stop()
	if out := buf.String(); !strings.Contains(out, "50%") || strings.Contains(out, "100%") {
		t.Errorf("a bar stopped at half should show 50%%, not 100%%:\n%q", out)
	}
}

func TestInterval(t *testing.T) {
	t.Setenv(EnvInterval, "")
	if d, err := Interval(); err != nil || d != DefaultInterval {
		t.Errorf("unset: %v, %v", d, err)
	}
	t.Setenv(EnvInterval, "250ms")
	if d, err := Interval(); err != nil || d != 250*time.Millisecond {
		t.Errorf("250ms: %v, %v", d, err)
	}
	t.Setenv(EnvInterval, "soon")
	if _, err := Interval(); err == nil || !strings.Contains(err.Error(), EnvInterval) {
		t.Errorf("bad value: %v", err)
	}
}

func TestRate(t *testing.T) {
	for _, c := range []struct {
		n    int64
		d    time.Duration
		want string
	}{{0, 0, "0.0 MB/s"}, {85_200_000, time.Second, "85.2 MB/s"}, {1e9, 4 * time.Second, "250.0 MB/s"}} {
		if got := Rate(c.n, c.d); got != c.want {
			t.Errorf("Rate(%d, %s) = %q, want %q", c.n, c.d, got, c.want)
		}
	}
}

// TestBarGrowingTotal: a bar whose count reaches a total that then grows
// (a repair surveying one job after another) is not finished early.
func TestBarGrowingTotal(t *testing.T) {
	var buf syncBuffer
	clk := newFakeClock()
	m := Start("repair", 4*mib, Options{Out: &buf, Mode: Bar, Clock: clk})
	m.Set(4 * mib)
	clk.redraw()
	m.SetTotal(8 * mib)
	m.Set(6 * mib)
	clk.redraw()
	m.Set(8 * mib)
	m.Stop()
	out := buf.String()
	if !strings.Contains(out, "75%") || strings.Count(out, "100%") != 1 || !strings.Contains(out, "(8.0/8.0 MiB") {
		t.Errorf("bar over a growing total:\n%q", out)
	}
}
