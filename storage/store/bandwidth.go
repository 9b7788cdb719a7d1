package store

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Bucket is a token bucket of bytes: it refills at Rate bytes a second up
// to Burst, and Take may drive it into debt, returning how long to wait
// for the debt to be paid back. A Server shares one Bucket among all its
// client connections and both directions (Options.MaxBandwidth), so puts
// and gets together hold the rate. Safe for concurrent use.
type Bucket struct {
	rate  float64 // bytes per second
	burst float64
	now   func() time.Time

	mu     sync.Mutex
	tokens float64
	last   time.Time
}

// NewBucket returns a full bucket of rate bytes a second holding up to
// burst bytes (burst <= 0 means DefaultBurst(rate)). now is the clock; nil
// means time.Now (tests pass a fake one).
func NewBucket(rate, burst int64, now func() time.Time) *Bucket {
	if now == nil {
		now = time.Now
	}
	if burst <= 0 {
		burst = DefaultBurst(rate)
	}
	return &Bucket{rate: float64(rate), burst: float64(burst), now: now, tokens: float64(burst), last: now()}
}

// DefaultBurst is the burst of a bucket of rate bytes a second: a 20th of
// a second of traffic, at least 32 KiB, so that one large frame moves in
// pieces and the rate holds over short windows.
func DefaultBurst(rate int64) int64 { return max(rate/20, 32<<10) }

// Burst is the most bytes one Take should ask for.
func (b *Bucket) Burst() int { return int(b.burst) }

// Take takes n bytes and returns how long the caller must wait before
// moving them (0 if the bucket held them).
func (b *Bucket) Take(n int) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if el := now.Sub(b.last); el > 0 {
		b.tokens = min(b.burst, b.tokens+el.Seconds()*b.rate)
		b.last = now
	}
	b.tokens -= float64(n)
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / b.rate * float64(time.Second))
}

// meter counts the bytes moved on every client connection and, with a
// bucket, holds them to its rate.
type meter struct {
	in, out atomic.Int64
	bucket  *Bucket // nil: unlimited
	// wait sleeps d unless done closes first; replaced by tests.
	wait func(d time.Duration, done <-chan struct{})
}

func sleepUnlessDone(d time.Duration, done <-chan struct{}) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-done:
	}
}

// meteredConn is a client connection as the meter sees it: reads are
// charged after they return (a read cannot be refused before its bytes
// arrive, so the next read waits instead), writes before they go out, in
// pieces of at most the bucket's burst.
type meteredConn struct {
	net.Conn
	m    *meter
	done <-chan struct{} // the server's: a wait ends when it closes
	// writeTimeout is Options.WriteTimeout: under a limit, each piece of a
	// write gets it anew, so that a large reply held to a low rate is not
	// taken for a client that stopped reading.
	writeTimeout time.Duration
}

func (c *meteredConn) Read(p []byte) (int, error) {
	if b := c.m.bucket; b != nil && len(p) > b.Burst() {
		p = p[:b.Burst()]
	}
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.m.in.Add(int64(n))
		if b := c.m.bucket; b != nil {
			if d := b.Take(n); d > 0 {
				c.m.wait(d, c.done)
			}
		}
	}
	return n, err
}

func (c *meteredConn) Write(p []byte) (int, error) {
	b := c.m.bucket
	if b == nil {
		n, err := c.Conn.Write(p)
		c.m.out.Add(int64(n))
		return n, err
	}
	written := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), b.Burst())]
		if d := b.Take(len(chunk)); d > 0 {
			c.m.wait(d, c.done)
		}
		if c.writeTimeout > 0 {
			_ = c.Conn.SetWriteDeadline(time.Now().Add(c.writeTimeout))
		}
		n, err := c.Conn.Write(chunk)
		written += n
		c.m.out.Add(int64(n))
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}

// Stats are a server's counters since it was created.
type Stats struct {
	Started time.Time
	// Errors counts requests answered with an error, other than a block
	// asked for and not held.
	Errors int64
	// BytesIn and BytesOut count the bytes read from and written to
	// client connections (TLS records included on a TLS store).
	BytesIn, BytesOut int64
}

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	return Stats{Started: s.started, Errors: s.errors.Load(), BytesIn: s.meter.in.Load(), BytesOut: s.meter.out.Load()}
}

// metered wraps a client connection in the server's meter.
func (s *Server) metered(nc net.Conn) net.Conn {
	return &meteredConn{Conn: nc, m: &s.meter, done: s.done, writeTimeout: s.opts.WriteTimeout}
}
