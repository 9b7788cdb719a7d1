package store

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/wire"
)

// Defaults for Options fields left zero.
const (
	DefaultMaxConns      = 256
	DefaultMaxHandshakes = 64
	DefaultIdleTimeout   = 10 * time.Minute
	DefaultWriteTimeout  = time.Minute
)

// ErrClosed is returned by Serve on a server already closed.
var ErrClosed = errors.New("store: server closed")

// Options tune a Server. The zero value is usable.
type Options struct {
	// Logger receives connection and failure events; nil logs nothing.
	Logger *zap.Logger
	// MaxConns bounds the authenticated connections open at once; 0 means
	// DefaultMaxConns. A connection beyond it is answered Busy and closed.
	MaxConns int
	// MaxHandshakes bounds the connections still in their handshake,
	// beside MaxConns; 0 means DefaultMaxHandshakes. A new connection
	// beyond it closes the oldest one still handshaking, so that strangers
	// who connect and never authenticate cannot keep clients out.
	MaxHandshakes int
	// MaxInFlight bounds the requests of one connection handled at once;
	// 0 means wire.Window. Memory per connection is about
	// MaxInFlight times the largest frame.
	MaxInFlight int
	// IdleTimeout closes a connection that has sent nothing and has no
	// request running for that long, and one that stalls that long in the
	// middle of a frame; 0 means DefaultIdleTimeout, < 0 never.
	IdleTimeout time.Duration
	// WriteTimeout closes a connection whose client does not read a reply
	// within it; 0 means DefaultWriteTimeout, < 0 never.
	WriteTimeout time.Duration
	// MaxPayload is the largest frame payload accepted; 0 means
	// wire.DefaultMaxPayload.
	MaxPayload int
	// TLS, when not nil, makes every connection TLS (tlsconf.Server builds
	// it); the token handshake then runs inside TLS. A client that does not
	// speak TLS is told so in clear (ExpectsTLSMessage) after
	// PlainClientWait. Nil serves in clear, and a TLS client is told that
	// instead (NoTLSMessage).
	TLS *tls.Config
	// MaxBandwidth, when > 0, holds the bytes read from and written to all
	// client connections together to that many a second (one token
	// bucket, NewBucket, for both directions). 0 means unlimited.
	MaxBandwidth int64
	// Observer, when not nil, is told of every request answered (see
	// Observer); nil observes nothing.
	Observer Observer
	// Records, when not nil, serves the catalog-record ops (records.go);
	// nil answers them UnknownOp, as a store older than them does.
	Records Records
}

// Server serves one BlockStore to many connections. Create it with
// NewServer; its methods are safe for concurrent use.
type Server struct {
	bs    storage.BlockStore
	token []byte
	opts  Options
	log   *zap.Logger

	refused    atomic.Int64  // connections refused for MaxConns
	evicted    atomic.Int64  // handshaking connections closed for MaxHandshakes
	wrongToken atomic.Int64  // handshakes refused for a wrong token
	errors     atomic.Int64  // requests answered with an error (Stats)
	started    time.Time     // when NewServer ran
	meter      meter         // bytes moved, and the bandwidth bucket (bandwidth.go)
	done       chan struct{} // closed by Close
	closeOnce  sync.Once
	wg         sync.WaitGroup // one per connection goroutine

	// Set by tests (export_test.go), before Serve. connDone, when set, is
	// called each time a connection has ended and given back its MaxConns
	// slot; plainWait replaces PlainClientWait when not 0.
	connDone  func()
	plainWait time.Duration

	mu struct {
		sync.Mutex
		closed    bool
		listeners map[net.Listener]struct{}
		conns     map[*conn]struct{}
		pending   map[*conn]uint64 // conns still handshaking, by arrival
		arrivals  uint64
		authed    map[*conn]struct{} // conns past their handshake
	}
}

// NewServer returns a server of bs for the clients that know token. The
// server does not close bs; its owner does, after Close.
func NewServer(bs storage.BlockStore, token []byte, opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = DefaultMaxConns
	}
	if opts.MaxHandshakes <= 0 {
		opts.MaxHandshakes = DefaultMaxHandshakes
	}
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = wire.Window
	}
	if opts.IdleTimeout == 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	if opts.WriteTimeout == 0 {
		opts.WriteTimeout = DefaultWriteTimeout
	}
	if opts.MaxPayload <= 0 {
		opts.MaxPayload = wire.DefaultMaxPayload
	}
	if opts.Observer == nil {
		opts.Observer = nopObserver{}
	}
	s := &Server{
		bs:    bs,
		token: append([]byte(nil), token...),
		opts:  opts,
		log:   opts.Logger,
		done:  make(chan struct{}),
	}
	s.started = time.Now()
	s.meter.wait = sleepUnlessDone
	if opts.MaxBandwidth > 0 {
		s.meter.bucket = NewBucket(opts.MaxBandwidth, 0, nil)
	}
	s.mu.listeners = make(map[net.Listener]struct{})
	s.mu.conns = make(map[*conn]struct{})
	s.mu.pending = make(map[*conn]uint64)
	s.mu.authed = make(map[*conn]struct{})
	return s
}

// Serve accepts connections on ln and serves them until ctx is cancelled or
// Close is called; either shuts the whole server down as Close does, and
// Serve then returns nil once every connection is done. It returns ErrClosed
// at once on a closed server, and the listener's error if accepting fails
// for good (connections already accepted keep being served until Close).
// Serve closes ln. It may run on several listeners at once.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		ln.Close()
		return ErrClosed
	}
	s.mu.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.mu.listeners, ln)
		s.mu.Unlock()
		ln.Close()
	}()
	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()

	s.log.Info("store serving", zap.Stringer("addr", ln.Addr()),
		zap.Int("max_conns", s.opts.MaxConns), zap.Int("max_in_flight", s.opts.MaxInFlight),
		zap.Bool("tls", s.opts.TLS != nil))
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.isClosed() {
				s.wg.Wait()
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("store: accept on %s: %w", ln.Addr(), err)
			}
			// Out of file descriptors and the like: wait and retry.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("accept failed, retrying", zap.Error(err), zap.Duration("in", backoff))
			select {
			case <-time.After(backoff):
			case <-s.done:
			}
			continue
		}
		backoff = 0
		s.accept(nc)
	}
}

// accept starts serving nc, or refuses it when the server is full.
func (s *Server) accept(nc net.Conn) {
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		nc.Close()
		return
	}
	if n := len(s.mu.authed); n >= s.opts.MaxConns {
		s.mu.Unlock()
		s.refuse(nc, n)
		return
	}
	if len(s.mu.pending) >= s.opts.MaxHandshakes {
		s.evictOldestLocked()
	}
	c := newConn(s, s.metered(nc))
	s.mu.conns[c] = struct{}{}
	s.mu.arrivals++
	s.mu.pending[c] = s.mu.arrivals
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		c.serve()
		s.mu.Lock()
		delete(s.mu.conns, c)
		delete(s.mu.pending, c)
		delete(s.mu.authed, c)
		s.mu.Unlock()
		if s.connDone != nil {
			s.connDone()
		}
	}()
}

// evictOldestLocked ends the connection that has been handshaking longest:
// an honest client's handshake takes a round trip, a stranger's lasts until
// it is evicted or wire.HandshakeTimeout.
func (s *Server) evictOldestLocked() {
	var oldest *conn
	for c, n := range s.mu.pending {
		if oldest == nil || n < s.mu.pending[oldest] {
			oldest = c
		}
	}
	delete(s.mu.pending, oldest)
	oldest.shutdown()
	if n := s.evicted.Add(1); n&(n-1) == 0 {
		s.log.Warn("connection still handshaking closed: too many handshakes",
			zap.Stringer("remote", oldest.nc.RemoteAddr()), zap.Int("max_handshakes", s.opts.MaxHandshakes),
			zap.Int64("evicted_total", n))
	}
}

// handshook moves c out of the handshaking connections, whether its
// handshake passed or not.
func (s *Server) handshook(c *conn, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.mu.pending, c)
	if err == nil {
		s.mu.authed[c] = struct{}{}
	}
}

// refuse tells nc the store is busy and closes it, in the accept loop: a
// fresh connection's send buffer is empty, and the deadline bounds the rest.
func (s *Server) refuse(nc net.Conn, open int) {
	s.opts.Observer.Connection(ConnBusy) // before the client can know
	_ = nc.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	_ = wire.RefuseBusy(nc, fmt.Sprintf("store busy: %d connections open, the limit; retry later", open))
	nc.Close()
	// Log the 1st, 2nd, 4th, 8th... refusal: a flood must not flood the log.
	if n := s.refused.Add(1); n&(n-1) == 0 {
		s.log.Warn("connection refused: too many connections",
			zap.Stringer("remote", nc.RemoteAddr()), zap.Int("max_conns", s.opts.MaxConns),
			zap.Int64("refused_total", n))
	}
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.closed
}

// Close stops accepting, lets the requests already read finish and their
// replies be sent, closes every connection and returns once all are done.
// It does not close the BlockStore. Close is idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.mu.closed = true
		close(s.done)
		for ln := range s.mu.listeners {
			ln.Close()
		}
		for c := range s.mu.conns {
			c.shutdown()
		}
		s.mu.Unlock()
	})
	s.wg.Wait()
	return nil
}

// handle runs one request against the store and returns the reply payload.
// putBlocks stores a batch's blocks all at once, each as a PutBlock
// would be: a disk store's group commit then syncs them together. It
// answers each block's outcome in order. The Observer and Stats hear of
// each block as of a PutBlock taking the batch's time, so that a store's
// put metrics count blocks however they came.
func (s *Server) putBlocks(ctx context.Context, items []wire.PutItem) []wire.PutOutcome {
	start := time.Now()
	outs := make([]wire.PutOutcome, len(items))
	var wg sync.WaitGroup
	for i, it := range items {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i] = wire.OutcomeOf(s.bs.Put(ctx, it.Hash, it.Data))
		}()
	}
	wg.Wait()
	took := time.Since(start)
	for i, o := range outs {
		if o.Status != wire.StatusOK && o.Status != wire.StatusNotFound {
			s.errors.Add(1)
		}
		s.opts.Observer.Request(wire.OpPutBlock, o.Status, storage.HashSize+len(items[i].Data), 1, took)
	}
	return outs
}

func (s *Server) handle(ctx context.Context, f wire.Frame) ([][]byte, error) {
	switch f.Op {
	case wire.OpPing:
		return nil, nil
	case wire.OpPutBlock:
		h, data, err := wire.DecodePut(f.Payload)
		if err != nil {
			return nil, err
		}
		created, err := s.bs.Put(ctx, h, data)
		if err != nil {
			return nil, err
		}
		return [][]byte{wire.EncodeCreated(created)}, nil
	case wire.OpPutBlocks:
		items, err := wire.DecodePutBlocks(f.Payload)
		if err != nil {
			return nil, err
		}
		return [][]byte{wire.EncodePutBlocksReply(s.putBlocks(ctx, items))}, nil
	case wire.OpGetBlock:
		h, err := wire.DecodeHash(f.Payload)
		if err != nil {
			return nil, err
		}
		data, err := s.bs.Get(ctx, h)
		if err != nil {
			return nil, err
		}
		return [][]byte{data}, nil
	case wire.OpHas:
		hs, err := wire.DecodeHashes(f.Payload)
		if err != nil {
			return nil, err
		}
		held, err := s.bs.Has(ctx, hs)
		if err != nil {
			return nil, err
		}
		if len(held) != len(hs) {
			return nil, fmt.Errorf("store: has answered %d of %d hashes", len(held), len(hs))
		}
		return [][]byte{wire.EncodeHas(held)}, nil
	case wire.OpDelete:
		notSince, hs, err := wire.DecodeDelete(f.Payload)
		if err != nil {
			return nil, err
		}
		freed, err := s.bs.Delete(ctx, hs, notSince)
		if err != nil {
			return nil, err
		}
		return [][]byte{wire.EncodeFreed(freed)}, nil
	case wire.OpList:
		after, limit, err := wire.DecodeList(f.Payload)
		if err != nil {
			return nil, err
		}
		hs, err := s.bs.List(ctx, after, limit)
		if err != nil {
			return nil, err
		}
		if len(hs) > limit {
			return nil, fmt.Errorf("store: list answered %d hashes, asked for at most %d", len(hs), limit)
		}
		p, err := wire.EncodeHashes(hs)
		if err != nil {
			return nil, err
		}
		return [][]byte{p}, nil
	case wire.OpStat:
		st, err := s.bs.Stat(ctx)
		if err != nil {
			return nil, err
		}
		p, err := wire.EncodeStat(st)
		if err != nil {
			return nil, err
		}
		return [][]byte{p}, nil
	case wire.OpHello:
		return nil, fmt.Errorf("store: hello after the handshake: %w", storage.ErrBadRequest)
	case wire.OpPutRecord, wire.OpGetRecord, wire.OpListRecords:
		if s.opts.Records != nil {
			return s.handleRecord(ctx, f)
		}
	}
	return nil, fmt.Errorf("%w 0x%02x: this store speaks wire protocol version %d",
		wire.ErrUnknownOp, uint8(f.Op), wire.Version)
}
