package disk

import (
	"sync"
	"sync/atomic"

	"github.com/ckptio/ckptio/storage"
)

// committer is a group commit: one goroutine takes the requests waiting in
// its queue (up to max at a time) and hands them to commit as one batch, so
// the puts that a client keeps in flight share one round of fsyncs. commit
// must answer every request of the batch, and only once what the request
// asked for is durable (or has failed).
//
// submit may be called from any goroutine until close; close stops the
// goroutine after the batch in progress and fails the requests still queued
// with storage.ErrClosed.
type committer[R any] struct {
	in     chan R
	quit   chan struct{}
	done   chan struct{}
	max    int
	commit func(batch []R)
	fail   func(r R, err error)
	once   sync.Once

	batches atomic.Int64 // batches begun, for tests and metrics
}

func newCommitter[R any](max int, commit func([]R), fail func(R, error)) *committer[R] {
	c := &committer[R]{
		in:     make(chan R, max),
		quit:   make(chan struct{}),
		done:   make(chan struct{}),
		max:    max,
		commit: commit,
		fail:   fail,
	}
	go c.loop()
	return c
}

// submit queues r. It fails with storage.ErrClosed once close has begun; r
// is then not answered.
func (c *committer[R]) submit(r R) error {
	select {
	case <-c.quit:
		return storage.ErrClosed
	default:
	}
	select {
	case c.in <- r:
		return nil
	case <-c.quit:
		return storage.ErrClosed
	}
}

func (c *committer[R]) loop() {
	defer close(c.done)
	batch := make([]R, 0, c.max)
	for {
		select {
		case r := <-c.in:
			batch = append(batch[:0], r)
		case <-c.quit:
			for {
				select {
				case r := <-c.in:
					c.fail(r, storage.ErrClosed)
				default:
					return
				}
			}
		}
	drain:
		for len(batch) < c.max {
			select {
			case r := <-c.in:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		c.batches.Add(1)
		c.commit(batch)
		clear(batch)
	}
}

// close stops the goroutine and waits for it.
func (c *committer[R]) close() {
	c.once.Do(func() { close(c.quit) })
	<-c.done
}

// wait returns the answer on done, or storage.ErrClosed when the committer
// stopped without answering.
func (c *committer[R]) wait(done <-chan error) error {
	select {
	case err := <-done:
		return err
	case <-c.done:
		select {
		case err := <-done:
			return err
		default:
			return storage.ErrClosed
		}
	}
}
