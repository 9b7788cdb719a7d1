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
