package store

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/wire"
)

// conn is one client connection. Its goroutines: serve (the reader, which
// owns the others), one writer, and one handler per request being run,
// at most MaxInFlight. serve waits for all of them before returning.
type conn struct {
	s   *Server
	nc  net.Conn // a *tls.Conn on a TLS store
	log *zap.Logger
	// peek is the plain connection under nc on a TLS store, nil otherwise.
	peek *peekConn

	// stop is cancelled by shutdown: read no more requests. It interrupts
	// a blocked read through the connection's read deadline.
	stop       context.Context
	cancelStop context.CancelFunc
	// work is the context requests run under, cancelled when the
	// connection fails (their replies could not be delivered), not on a
	// graceful shutdown.
	work       context.Context
	cancelWork context.CancelFunc

	slots    chan struct{} // one per request read and not yet answered
	replies  chan reply    // to the writer; room for every slot and one notice
	running  atomic.Int32  // requests read and not yet answered
	handlers sync.WaitGroup
}

// reply is a frame for the writer. slot says it answers a request holding
// a slot, which the writer frees once the reply is written.
type reply struct {
	id    uint64
	op    wire.Op
	st    wire.Status
	parts [][]byte
	slot  bool
}

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{
		s:       s,
		nc:      nc,
		log:     s.log.With(zap.Stringer("remote", nc.RemoteAddr())),
		slots:   make(chan struct{}, s.opts.MaxInFlight),
		replies: make(chan reply, s.opts.MaxInFlight+1),
	}
	if s.opts.TLS != nil {
		c.peek = &peekConn{Conn: nc}
		c.nc = tls.Server(c.peek, s.opts.TLS)
	}
	c.stop, c.cancelStop = context.WithCancel(context.Background())
	c.work, c.cancelWork = context.WithCancel(context.Background())
	return c
}

// shutdown asks the connection to end gracefully. Safe from any goroutine.
// The reader is woken by serve's AfterFunc on stop.
func (c *conn) shutdown() { c.cancelStop() }

// serve runs the connection to its end and closes it.
func (c *conn) serve() {
	defer c.nc.Close()
	defer c.cancelWork()
	defer c.cancelStop()
	// Wake a blocked read on shutdown; the reader re-checks stop after
	// every deadline it sets, so it cannot miss this.
	wake := context.AfterFunc(c.stop, func() { _ = c.nc.SetReadDeadline(time.Unix(1, 0)) })
	defer wake()

	err := c.handshake()
	if err != nil {
		c.s.handshook(c, err)
	}
	c.s.opts.Observer.Connection(handshakeOutcome(err))
	if err != nil {
		return
	}
	c.log.Debug("connection open")

	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.write()
	}()

	notice := c.read()

	c.handlers.Wait()
	if notice != nil {
		c.replies <- *notice
	}
	close(c.replies)
	<-writerDone
}

// read reads and dispatches requests until the connection ends, and returns
// the frame to send last, if any.
func (c *conn) read() *reply {
	br := bufio.NewReaderSize(deadlineReader{c}, 64<<10)
	for {
		select {
		case c.slots <- struct{}{}:
		case <-c.stop.Done():
			return closingNotice()
		}
		// Both cases may have been ready; a buffered frame would not
		// notice the stop in the read.
		if c.stop.Err() != nil {
			<-c.slots
			return closingNotice()
		}
		f, err := c.next(br)
		if err != nil {
			<-c.slots
			return c.readFailed(f, err)
		}
		c.running.Add(1)
		c.handlers.Add(1)
		go c.handle(f)
	}
}

// next reads the next frame. While waiting for its first byte it tolerates
// the idle timeout as long as requests are running.
func (c *conn) next(br *bufio.Reader) (wire.Frame, error) {
	for {
		_, err := br.Peek(1)
		if err == nil {
			break
		}
		if isTimeout(err) && c.stop.Err() == nil && c.running.Load() > 0 {
			continue
		}
		return wire.Frame{}, err
	}
	return wire.ReadFrameBuf(br, c.s.opts.MaxPayload, c.putPayload)
}

// putPayload gives a put request's payload a recycled buffer (handle
// returns it); other requests allocate their own.
func (c *conn) putPayload(h wire.Header) []byte {
	if !isPut(h.Op) || h.Length > storage.MaxPooledBuffer {
		return nil // allocated as it arrives (wire.ReadFrame)
	}
	return storage.GetBuffer(int(h.Length))
}

// isPut reports whether op carries blocks to store, in a payload that
// handle recycles.
func isPut(op wire.Op) bool { return op == wire.OpPutBlock || op == wire.OpPutBlocks }

// readFailed decides how a connection whose read failed ends.
func (c *conn) readFailed(f wire.Frame, err error) *reply {
	switch {
	case c.stop.Err() != nil:
		return closingNotice()
	case errors.Is(err, wire.ErrFrameTooLarge):
		// The payload stays unread, so the stream is lost: answer the
		// request and close.
		c.log.Warn("frame too large, connection closed", zap.Error(err))
		return &reply{id: f.ID, op: f.Op, st: wire.StatusTooLarge, parts: message(err)}
	case errors.Is(err, wire.ErrBadMagic), errors.Is(err, wire.ErrBadVersion):
		c.log.Warn("not a ckptio frame, connection closed", zap.Error(err))
		return &reply{op: wire.OpHello, st: wire.StatusBadRequest, parts: message(err)}
	case isTimeout(err):
		c.log.Debug("idle connection closed", zap.Duration("idle_timeout", c.s.opts.IdleTimeout))
		return &reply{op: wire.OpHello, st: wire.StatusClosed, parts: message(errors.New("store: idle connection closed"))}
	case errors.Is(err, io.EOF):
		c.log.Debug("connection closed by the client")
	default:
		c.log.Debug("connection failed", zap.Error(err))
	}
	// Nobody is left to read the replies.
	c.cancelWork()
	return nil
}

func closingNotice() *reply {
	return &reply{op: wire.OpHello, st: wire.StatusClosed, parts: message(errors.New("store shutting down"))}
}

func message(err error) [][]byte { return [][]byte{[]byte(wire.Message(err.Error()))} }

// handle runs one request and queues its reply.
func (c *conn) handle(f wire.Frame) {
	defer c.handlers.Done()
	r := reply{id: f.ID, op: f.Op, slot: true}
	start := time.Now()
	parts, err := c.s.handle(c.work, f)
	if err != nil {
		r.st = wire.StatusFor(err)
		r.parts = message(err)
		if r.st != wire.StatusNotFound {
			c.s.errors.Add(1)
		}
		if r.st == wire.StatusInternal {
			c.log.Warn("request failed", zap.Stringer("op", f.Op), zap.Uint64("id", f.ID), zap.Error(err))
		} else {
			c.log.Debug("request refused", zap.Stringer("op", f.Op), zap.Uint64("id", f.ID), zap.Error(err))
		}
	} else {
		r.parts = parts
	}
	if f.Op != wire.OpPutBlocks || r.st != wire.StatusOK {
		// A batch answered OK was observed block by block (putBlocks).
		c.s.opts.Observer.Request(f.Op, r.st, len(f.Payload), payloadSize(r.parts), time.Since(start))
	}
	if isPut(f.Op) && f.Payload != nil {
		// Put does not retain its data (storage.BlockStore), and its
		// reply does not refer to the request.
		storage.PutBuffer(f.Payload)
	}
	c.replies <- r
}

// write sends replies in the order they are queued, batching small ones,
// until replies is closed. After a write failure it closes the connection
// and only frees slots.
func (c *conn) write() {
	bw := bufio.NewWriterSize(c.nc, 64<<10)
	var failed error
	for r := range c.replies {
		if failed == nil {
			if wt := c.s.opts.WriteTimeout; wt > 0 {
				_ = c.nc.SetWriteDeadline(time.Now().Add(wt))
			}
			failed = wire.WriteFrame(bw, r.id, r.op, r.st, r.parts...)
			if failed == nil && len(c.replies) == 0 {
				failed = bw.Flush()
			}
			if failed != nil {
				c.log.Debug("reply write failed, connection closed", zap.Error(failed))
				c.cancelWork()
				c.nc.Close()
			}
		}
		if r.slot {
			c.running.Add(-1)
			<-c.slots
		}
	}
	if failed == nil {
		_ = bw.Flush()
	}
}

// deadlineReader reads from the connection with the idle timeout renewed
// before every read, and refuses to read once the connection is stopping.
type deadlineReader struct{ c *conn }

func (d deadlineReader) Read(b []byte) (int, error) {
	var dl time.Time
	if t := d.c.s.opts.IdleTimeout; t > 0 {
		dl = time.Now().Add(t)
	}
	_ = d.c.nc.SetReadDeadline(dl)
	// Checked after setting the deadline: a shutdown that set its own
	// deadline before ours is seen here.
	if d.c.stop.Err() != nil {
		return 0, d.c.stop.Err()
	}
	return d.c.nc.Read(b)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
