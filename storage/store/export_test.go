package store

import "time"

// Hooks for this package's tests, which wait for events rather than
// retry or sleep until they have happened. Call them before Serve.

// SetConnDone makes s call f each time a connection has ended and given
// back its MaxConns slot.
func SetConnDone(s *Server, f func()) { s.connDone = f }

// SetPlainClientWait makes s wait d, instead of PlainClientWait, for a
// TLS client's first byte.
func SetPlainClientWait(s *Server, d time.Duration) { s.plainWait = d }

// SetBandwidthWait replaces the sleep of s's bandwidth limit, so a test
// can add up the waits on a fake clock instead of waiting them.
func SetBandwidthWait(s *Server, f func(d time.Duration)) {
	s.meter.wait = func(d time.Duration, _ <-chan struct{}) { f(d) }
}

// SetBandwidthBucket gives s a bandwidth bucket on the clock now.
func SetBandwidthBucket(s *Server, rate, burst int64, now func() time.Time) {
	s.meter.bucket = NewBucket(rate, burst, now)
}
