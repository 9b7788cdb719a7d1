package store

import (
	"time"

	"github.com/ckptio/ckptio/storage/wire"
)

// Observer is told of every request a Server answers, for metrics
// (storage/metrics implements it with Prometheus). Its methods are called
// from the connections' handler goroutines, concurrently, once the reply
// is ready and before it is queued; they must be quick and must not block.
type Observer interface {
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

// payloadSize is the bytes of a reply's parts.
func payloadSize(parts [][]byte) int {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	return n
}
