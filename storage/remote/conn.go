package remote

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ckptio/ckptio/storage/wire"
)

// conn is one authenticated connection. Its reader goroutine is started by
// the Store, which waits for it.
type conn struct {
	nc           net.Conn
	br           *bufio.Reader
	window       chan struct{} // the Store's; a pending call holds one slot
	writeTimeout time.Duration
	replyTimeout time.Duration // Options.ReplyTimeout; <= 0 never
	maxPayload   int
	sent         func() // Options.sent

	wlock   chan struct{} // serializes frame writes; a channel so waiting honours ctx
	writing atomic.Bool   // a frame is being written (the reply watchdog waits)
	nextID  atomic.Uint64
	done    chan struct{} // closed once the connection has failed; err is then set
	err     error

	mu struct {
		sync.Mutex
		pending map[uint64]*call
		failed  bool
	}
}

// call is a request waiting for its reply.
type call struct {
	op wire.Op
	ch chan result // buffered: the reader never blocks on a caller that left
	// dst, if not nil, is the caller's buffer for a successful reply's
	// payload. The reader may read into it only after moving state from
	// callWaiting to callFilling; a caller that leaves early moves it to
	// callLeft, or, if the reader got there first, waits for the reply so
	// that nobody writes into dst after it returned.
	dst   []byte
	state atomic.Int32
}

const (
	callWaiting = iota
	callFilling
	callLeft
)

type result struct {
	f   wire.Frame
	err error
}

func newConn(nc net.Conn, window chan struct{}, opts Options) *conn {
	c := &conn{
		nc:           nc,
		window:       window,
		writeTimeout: opts.WriteTimeout,
		replyTimeout: opts.ReplyTimeout,
		maxPayload:   opts.MaxPayload,
		sent:         opts.sent,
		wlock:        make(chan struct{}, 1),
		done:         make(chan struct{}),
	}
	c.mu.pending = make(map[uint64]*call)
	c.br = bufio.NewReaderSize(progressReader{c}, 64<<10)
	return c
}

// The reply watchdog. While requests are outstanding the connection has a
// read deadline ReplyTimeout ahead, pushed on by every byte that arrives;
// once none is outstanding it has none. A store that stops sending (a
// stopped process, a wedged disk) fails the connection at the deadline
// instead of holding its callers forever.

// progressReader is the connection's reads, each of which pushes the
// deadline on.
type progressReader struct{ c *conn }

func (r progressReader) Read(p []byte) (int, error) {
	for {
		n, err := r.c.nc.Read(p)
		if n == 0 && errors.Is(err, os.ErrDeadlineExceeded) && r.c.writing.Load() {
			// Still sending a request (a large one on a slow link): the
			// store cannot be blamed for its silence yet. A timed-out
			// read leaves the connection usable.
			r.c.arm()
			continue
		}
		if n > 0 {
			r.c.arm()
		}
		return n, err
	}
}

func (c *conn) arm() {
	c.mu.Lock()
	c.armLocked()
	c.mu.Unlock()
}

// armLocked sets the read deadline for the outstanding requests: the
// reply timeout from now, or none when nothing is outstanding. The caller
// holds c.mu.
func (c *conn) armLocked() {
	if c.replyTimeout <= 0 || c.mu.failed {
		return
	}
	if len(c.mu.pending) == 0 {
		_ = c.nc.SetReadDeadline(time.Time{})
		return
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(c.replyTimeout))
}

func (c *conn) broken() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// roundTripInto sends one request and waits for its reply, reading a
// successful reply's payload into dst when it fits (the Frame's Payload is
// then dst[:n]). The caller holds a window slot; from here the slot
// belongs to the request and is freed when its reply arrives or the
// connection fails, even if the caller leaves.
func (c *conn) roundTripInto(ctx context.Context, dst []byte, op wire.Op, parts ...[]byte) (wire.Frame, error) {
	id := c.nextID.Add(1)
	cl := &call{op: op, ch: make(chan result, 1), dst: dst}
	c.mu.Lock()
	if c.mu.failed {
		c.mu.Unlock()
		<-c.window
		return wire.Frame{}, c.err
	}
	c.mu.pending[id] = cl
	if len(c.mu.pending) == 1 {
		c.armLocked() // the first outstanding request starts the clock
	}
	c.mu.Unlock()

	select {
	case c.wlock <- struct{}{}:
	case <-ctx.Done():
		c.forget(id)
		return wire.Frame{}, ctx.Err()
	case <-c.done:
		return wire.Frame{}, c.err // fail freed the slot
	}
	// A frame once started is finished whatever ctx says: a half-written
	// frame would break the connection for every caller.
	if c.writeTimeout > 0 {
		_ = c.nc.SetWriteDeadline(time.Now().Add(c.writeTimeout))
	}
	c.writing.Store(true)
	err := wire.WriteFrame(c.nc, id, op, wire.StatusOK, parts...)
	c.writing.Store(false)
	c.arm() // the store has the whole request now: its reply timeout starts
	<-c.wlock
	if err != nil {
		c.fail(fmt.Errorf("%w: sending %s request: %w", ErrConnLost, op, err))
	} else if c.sent != nil {
		c.sent()
	}

	select {
	case r := <-cl.ch:
		if r.err != nil {
			return wire.Frame{}, r.err
		}
		if r.f.Op != op {
			return wire.Frame{}, fmt.Errorf("%w: %s reply to a %s request", wire.ErrMalformed, r.f.Op, op)
		}
		if err := wire.ErrorFor(r.f.Status, r.f.Payload); err != nil {
			return wire.Frame{}, err
		}
		return r.f, nil
	case <-ctx.Done():
		if !cl.state.CompareAndSwap(callWaiting, callLeft) {
			<-cl.ch // the reader is filling dst: let it finish
		}
		return wire.Frame{}, ctx.Err()
	}
}

// payloadBuf is ReadFrameBuf's get for the connection's reader: the
// waiting caller's own buffer, when it gave one that fits a successful
// reply.
func (c *conn) payloadBuf(h wire.Header) []byte {
	if h.Status != wire.StatusOK {
		return nil
	}
	c.mu.Lock()
	cl := c.mu.pending[h.ID]
	c.mu.Unlock()
	if cl == nil || cl.op != h.Op || uint64(cap(cl.dst)) < h.Length || !cl.state.CompareAndSwap(callWaiting, callFilling) {
		return nil
	}
	return cl.dst[:h.Length]
}

// take removes a pending call and frees its window slot; nil if absent.
func (c *conn) take(id uint64) *call {
	c.mu.Lock()
	defer c.mu.Unlock()
	cl, ok := c.mu.pending[id]
	if !ok {
		return nil
	}
	delete(c.mu.pending, id)
	if len(c.mu.pending) == 0 {
		c.armLocked() // idle: no deadline
	}
	<-c.window
	return cl
}

// forget drops a call whose request was never written.
func (c *conn) forget(id uint64) { c.take(id) }

// read dispatches replies until the connection fails. It is the
// connection's only reader.
func (c *conn) read() {
	for {
		f, err := wire.ReadFrameBuf(c.br, c.maxPayload, c.payloadBuf)
		if err != nil {
			switch {
			case errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF):
				err = errors.New("connection closed by the store")
			case errors.Is(err, os.ErrDeadlineExceeded):
				c.mu.Lock()
				n := len(c.mu.pending)
				c.mu.Unlock()
				err = fmt.Errorf("the store sent nothing for %v with %d requests outstanding (stopped, wedged or overloaded; other copies are tried)", c.replyTimeout, n)
			}
			c.fail(fmt.Errorf("%w: %w", ErrConnLost, err))
			return
		}
		if f.ID == 0 {
			// A notice: the store is about to close the connection.
			err := wire.ErrorFor(f.Status, f.Payload)
			if err == nil {
				err = fmt.Errorf("%w: unexpected %s frame with id 0", wire.ErrMalformed, f.Op)
			}
			c.fail(fmt.Errorf("%w: %w", ErrConnLost, err))
			return
		}
		cl := c.take(f.ID)
		if cl == nil {
			c.fail(fmt.Errorf("%w: %w: reply to request id %d, which is not outstanding",
				ErrConnLost, wire.ErrMalformed, f.ID))
			return
		}
		cl.ch <- result{f: f}
	}
}

// fail marks the connection failed with err (the first error wins), closes
// it, and fails every pending call.
func (c *conn) fail(err error) {
	c.mu.Lock()
	if c.mu.failed {
		c.mu.Unlock()
		return
	}
	c.mu.failed = true
	c.err = err
	pending := c.mu.pending
	c.mu.pending = nil
	close(c.done)
	c.mu.Unlock()
	c.nc.Close()
	for range pending {
		<-c.window
	}
	for _, cl := range pending {
		cl.ch <- result{err: err}
	}
}
