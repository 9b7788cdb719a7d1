package manager

import (
	"net"
	"sync"
	"time"
)

// Dashboard logins from one client address: the first loginFreeFailures
// wrong tokens are answered at once; after that, each attempt must wait a
// backoff that starts at loginBackoff and doubles with each further
// failure, up to loginMaxBackoff. A right token clears the address.
const (
	loginFreeFailures = 5
	loginBackoff      = time.Second
	loginMaxBackoff   = 5 * time.Minute
	// loginTracked bounds the addresses remembered; past it, those whose
	// backoff is over are forgotten.
	loginTracked = 10000
)

// loginThrottle slows down guessing the token through the login form.
// Safe for concurrent use.
type loginThrottle struct {
	mu       sync.Mutex
	failures map[string]loginFailures // by client host
}

type loginFailures struct {
	n     int
	until time.Time // no attempt before this
}

// clientHost is the host part of a request's RemoteAddr.
func clientHost(remoteAddr string) string {
	if h, _, err := net.SplitHostPort(remoteAddr); err == nil {
		return h
	}
	return remoteAddr
}

// wait returns how long host must still wait before its next attempt.
func (l *loginThrottle) wait(host string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if f, ok := l.failures[host]; ok && now.Before(f.until) {
		return f.until.Sub(now)
	}
	return 0
}

// failed records a wrong token from host.
func (l *loginThrottle) failed(host string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failures == nil {
		l.failures = make(map[string]loginFailures)
	}
	if len(l.failures) >= loginTracked {
		for h, f := range l.failures {
			if !now.Before(f.until) {
				delete(l.failures, h)
			}
		}
	}
	f := l.failures[host]
	f.n++
	if extra := f.n - loginFreeFailures; extra > 0 {
		d := loginMaxBackoff
		if extra < 20 {
			d = min(loginBackoff<<(extra-1), loginMaxBackoff)
		}
		f.until = now.Add(d)
	}
	l.failures[host] = f
}

// succeeded forgets host's failures.
func (l *loginThrottle) succeeded(host string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.failures, host)
}
