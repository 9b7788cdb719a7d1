package store

import (
	"errors"
	"time"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/wire"
)

// Outcomes of a connection, for Observer.Connection.
const (
	ConnAccepted     = "accepted"     // the handshake passed
	ConnUnauthorized = "unauthorized" // the client did not prove the cluster token
	ConnBusy         = "busy"         // refused: MaxConns connections open
	ConnFailed       = "failed"       // the handshake failed otherwise (not ckptio, no TLS, closed)
)

// Observer is told of every connection and every request a Server
// answers, for metrics (storage/metrics implements it with Prometheus).
// Its methods are called from the server's goroutines, concurrently
// (Request once the reply is ready and before it is queued); they must be
// quick and must not block.
type Observer interface {
	// Connection reports how a new connection's start went: ConnAccepted,
	// ConnUnauthorized, ConnBusy or ConnFailed.
	Connection(outcome string)
	// Request reports one request: its op, the status of the reply
	// (wire.StatusOK when it succeeded), the payload bytes of the request
	// and of the reply, and how long the store took to handle it (from
	// the request read in full to its reply ready, the network and the
	// reply's queue excluded).
	Request(op wire.Op, st wire.Status, in, out int, took time.Duration)
}

// nopObserver is the Observer of a Server whose Options leave it nil.
type nopObserver struct{}

func (nopObserver) Request(wire.Op, wire.Status, int, int, time.Duration) {}
func (nopObserver) Connection(string)                                     {}

// handshakeOutcome is the Observer's name for how a handshake ended.
func handshakeOutcome(err error) string {
	switch {
	case err == nil:
		return ConnAccepted
	case errors.Is(err, storage.ErrUnauthorized):
		return ConnUnauthorized
	}
	return ConnFailed
}

// payloadSize is the bytes of a reply's parts.
func payloadSize(parts [][]byte) int {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	return n
}
