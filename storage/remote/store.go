package remote

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/wire"
)

// Defaults for Options fields left zero.
const (
	DefaultDialTimeout   = 3 * time.Second
	DefaultWriteTimeout  = time.Minute
	DefaultRedialBackoff = time.Second
	DefaultReplyTimeout  = 30 * time.Second
)

// EnvReplyTimeout names the environment variable that sets every
// connection's reply timeout (Options.ReplyTimeout) in the ckpt tools,
// the daemons and MPI jobs.
const EnvReplyTimeout = "CKPT_STORE_REPLY_TIMEOUT"

// Options tune a Store. The zero value is usable.
type Options struct {
	// Logger receives connection events; nil logs nothing.
	Logger *zap.Logger
	// Window bounds the requests outstanding on the connection; 0 means
	// wire.Window, as many as a store runs per connection.
	Window int
	// DialTimeout bounds connecting and the handshake; 0 means
	// DefaultDialTimeout.
	DialTimeout time.Duration
	// WriteTimeout fails the connection when the store does not take a
	// request's bytes within it; 0 means DefaultWriteTimeout, < 0 never.
	WriteTimeout time.Duration
	// ReplyTimeout fails the connection, and with it every outstanding
	// request (ErrConnLost), when the store sends no byte for this long
	// while requests are outstanding: a stopped or wedged store that
	// still holds its connections open does not hang its callers, who
	// then try other copies. An idle connection never times out. 0 means
	// $CKPT_STORE_REPLY_TIMEOUT (a Go duration; "0" or negative: never)
	// when set, else DefaultReplyTimeout; < 0 never.
	ReplyTimeout time.Duration
	// RedialBackoff is how long after a failed dial calls fail fast with
	// its error before the next call dials again; 0 means
	// DefaultRedialBackoff.
	RedialBackoff time.Duration
	// MaxPayload is the largest reply payload accepted; 0 means
	// wire.DefaultMaxPayload.
	MaxPayload int
	// NoVerify skips checking that the bytes Get returns hash to the name
	// asked for, for callers that check themselves.
	NoVerify bool
	// Batch is the most block bytes one PutBlocks request carries: Put
	// queues its block, and blocks queued while earlier batches are
	// outstanding go together (batch.go). 0 means DefaultBatch, < 0 one
	// PutBlock request per block.
	Batch int
	// TLS, when not nil, makes the connection TLS (tlsconf.Client builds
	// it), for a store run with --tls-cert; the token handshake then runs
	// inside TLS. An empty ServerName means the host of the address
	// dialed. Nil connects in clear.
	TLS *tls.Config

	// sent, set by tests (export_test.go), is called each time a request
	// has been written to the connection; queued each time a put is
	// queued for a batch, with the puts then queued.
	sent   func()
	queued func(int)
}

// Store is a BlockStore on a store server, reached over TCP. Create it with
// Dial. It is safe for concurrent use; see the package documentation for
// pipelining and failures.
type Store struct {
	addr   string
	token  []byte
	opts   Options
	log    *zap.Logger
	window chan struct{} // one slot per outstanding request
	batch  batcher
	wg     sync.WaitGroup

	mu struct {
		sync.Mutex
		cur      *conn
		closed   bool
		dialing  chan struct{} // closed when the dial in progress ends
		lastErr  error         // of the last failed dial
		lastFail time.Time
	}
}

var _ storage.BlockStore = (*Store)(nil)

// Dial connects to the store server at addr ("host:port") and proves to it
// that this side knows the cluster token, and it to this side. The error
// says what to check: a refused token wraps storage.ErrUnauthorized.
func Dial(ctx context.Context, addr string, token []byte, opts Options) (*Store, error) {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Window <= 0 {
		opts.Window = wire.Window
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = DefaultDialTimeout
	}
	if opts.WriteTimeout == 0 {
		opts.WriteTimeout = DefaultWriteTimeout
	}
	if opts.ReplyTimeout == 0 {
		opts.ReplyTimeout = DefaultReplyTimeout
		if v := os.Getenv(EnvReplyTimeout); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				return nil, fmt.Errorf("%s=%q: want a duration like 30s (0 to never time out)", EnvReplyTimeout, v)
			}
			opts.ReplyTimeout = d
			if d == 0 {
				opts.ReplyTimeout = -1
			}
		}
	}
	if opts.RedialBackoff <= 0 {
		opts.RedialBackoff = DefaultRedialBackoff
	}
	if opts.MaxPayload <= 0 {
		opts.MaxPayload = wire.DefaultMaxPayload
	}
	if opts.Batch == 0 {
		opts.Batch = DefaultBatch
	}
	s := &Store{
		addr:   addr,
		token:  append([]byte(nil), token...),
		opts:   opts,
		log:    opts.Logger.With(zap.String("store", addr)),
		window: make(chan struct{}, opts.Window),
	}
	if _, err := s.conn(ctx); err != nil {
		return nil, err
	}
	if opts.Batch > 0 {
		s.startBatches()
	}
	return s, nil
}

// Addr returns the address the store was dialed at.
func (s *Store) Addr() string { return s.addr }

// conn returns the live connection, dialing a new one if the last failed.
func (s *Store) conn(ctx context.Context) (*conn, error) {
	for {
		s.mu.Lock()
		if s.mu.closed {
			s.mu.Unlock()
			return nil, storage.ErrClosed
		}
		if c := s.mu.cur; c != nil && !c.broken() {
			s.mu.Unlock()
			return c, nil
		}
		if ch := s.mu.dialing; ch != nil {
			s.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		if s.mu.lastErr != nil && time.Since(s.mu.lastFail) < s.opts.RedialBackoff {
			err := s.mu.lastErr
			s.mu.Unlock()
			return nil, err
		}
		ch := make(chan struct{})
		s.mu.dialing = ch
		s.mu.Unlock()

		nc, err := s.dial(ctx)

		s.mu.Lock()
		s.mu.dialing = nil
		close(ch)
		var c *conn
		switch {
		case err == nil && s.mu.closed:
			nc.Close()
			err = storage.ErrClosed
		case err == nil:
			c = newConn(nc, s.window, s.opts)
			s.mu.cur = c
			s.mu.lastErr = nil
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				c.read()
				s.log.Debug("connection ended", zap.Error(c.err))
			}()
		case ctx.Err() == nil:
			s.mu.lastErr = err
			s.mu.lastFail = time.Now()
		}
		s.mu.Unlock()
		return c, err
	}
}

// dial connects and runs the handshake, with errors that say what to check.
func (s *Store) dial(ctx context.Context) (net.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, s.opts.DialTimeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(dctx, "tcp", s.addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("store %s: connect: %w", s.addr, ctx.Err())
		}
		return nil, fmt.Errorf("store %s: cannot connect within %v (is the store daemon running there, "+
			"the address right and the port open?): %w", s.addr, s.opts.DialTimeout, err)
	}
	if s.opts.TLS != nil {
		tc, err := s.startTLS(dctx, nc)
		if err != nil {
			nc.Close()
			if ctx.Err() != nil {
				return nil, fmt.Errorf("store %s: TLS handshake: %w", s.addr, ctx.Err())
			}
			return nil, err
		}
		nc = tc
	}
	err = wire.ClientHandshake(dctx, nc, s.token)
	if err == nil {
		s.log.Debug("connected", zap.Stringer("local", nc.LocalAddr()))
		return nc, nil
	}
	nc.Close()
	var se *wire.StatusError
	switch {
	case errors.As(err, &se) && se.Status == wire.StatusUnauthorized:
		return nil, fmt.Errorf("store %s refused the cluster token (wrong CKPT_TOKEN / token file?): %w", s.addr, err)
	case errors.Is(err, storage.ErrUnauthorized):
		return nil, fmt.Errorf("store %s: the peer does not know the cluster token (wrong address, or a store "+
			"of another cluster?): %w", s.addr, err)
	case errors.Is(err, wire.ErrBusy):
		return nil, fmt.Errorf("store %s refused the connection: %w", s.addr, err)
	case errors.As(err, &se) && se.Status == wire.StatusBadRequest:
		// A TLS store tells a plain client so (store.ExpectsTLSMessage).
		return nil, fmt.Errorf("store %s refused the handshake: %w", s.addr, err)
	case ctx.Err() != nil:
		return nil, fmt.Errorf("store %s: handshake: %w", s.addr, ctx.Err())
	}
	hint := "is a ckptio store listening there?"
	if s.opts.TLS == nil {
		hint += " One run with --tls-cert needs --tls-ca"
	}
	return nil, fmt.Errorf("store %s: handshake failed within %v (%s): %w", s.addr, s.opts.DialTimeout, hint, err)
}

// roundTrip takes a window slot, then sends one request and waits for its
// reply on the live connection.
func (s *Store) roundTrip(ctx context.Context, op wire.Op, parts ...[]byte) (wire.Frame, error) {
	return s.roundTripInto(ctx, nil, op, parts...)
}

// roundTripInto is roundTrip with the reply's payload read into dst when it
// fits.
func (s *Store) roundTripInto(ctx context.Context, dst []byte, op wire.Op, parts ...[]byte) (wire.Frame, error) {
	if err := ctx.Err(); err != nil {
		return wire.Frame{}, err
	}
	select {
	case s.window <- struct{}{}:
	case <-ctx.Done():
		return wire.Frame{}, ctx.Err()
	}
	c, err := s.conn(ctx)
	if err != nil {
		<-s.window
		return wire.Frame{}, err
	}
	return c.roundTripInto(ctx, dst, op, parts...)
}

// blockErr names the store and the block in err, unless err already does.
func (s *Store) blockErr(op string, h storage.Hash, err error) error {
	var be *storage.BlockError
	if errors.As(err, &be) {
		return err
	}
	return &storage.BlockError{Op: op, Store: s.addr, Hash: h, Err: err}
}

// Put implements storage.BlockStore. With Options.Batch the block goes
// in a batch with the others queued (batch.go).
func (s *Store) Put(ctx context.Context, h storage.Hash, data []byte) (bool, error) {
	if len(data) > storage.MaxBlockSize {
		return false, s.blockErr("put", h, fmt.Errorf("%d bytes, limit %d: %w",
			len(data), storage.MaxBlockSize, storage.ErrTooLarge))
	}
	if err := ctx.Err(); err != nil {
		return false, s.blockErr("put", h, err)
	}
	if s.batching() {
		created, err := s.putQueued(ctx, h, data)
		if err != nil {
			return false, s.blockErr("put", h, err)
		}
		return created, nil
	}
	return s.putOne(ctx, h, data)
}

// putOne puts one block with a PutBlock request.
func (s *Store) putOne(ctx context.Context, h storage.Hash, data []byte) (bool, error) {
	f, err := s.roundTrip(ctx, wire.OpPutBlock, h[:], data)
	if err != nil {
		return false, s.blockErr("put", h, err)
	}
	created, err := wire.DecodeCreated(f.Payload)
	if err != nil {
		return false, s.blockErr("put", h, err)
	}
	return created, nil
}

// Get implements storage.BlockStore. Unless Options.NoVerify is set, bytes
// that do not hash to h (damaged in transit) fail with ErrHashMismatch.
func (s *Store) Get(ctx context.Context, h storage.Hash) ([]byte, error) {
	return s.GetInto(ctx, h, nil)
}

// GetInto is Get reading the block straight from the connection into dst
// when it fits in cap(dst) (storage.GetIntoer): the result is then dst[:n]
// and nothing is allocated. Otherwise it allocates, as Get does.
func (s *Store) GetInto(ctx context.Context, h storage.Hash, dst []byte) ([]byte, error) {
	f, err := s.roundTripInto(ctx, dst, wire.OpGetBlock, h[:])
	if err != nil {
		return nil, s.blockErr("get", h, err)
	}
	if !s.opts.NoVerify && storage.Sum(f.Payload) != h {
		return nil, s.blockErr("get", h, fmt.Errorf("%d bytes received: %w", len(f.Payload), storage.ErrHashMismatch))
	}
	if f.Payload == nil {
		return []byte{}, nil
	}
	return f.Payload, nil
}

// Has implements storage.BlockStore. Batches above wire.MaxBatch are sent
// as several requests.
func (s *Store) Has(ctx context.Context, hs []storage.Hash) ([]bool, error) {
	held := make([]bool, 0, len(hs))
	for start := 0; start < len(hs); start += wire.MaxBatch {
		batch := hs[start:min(start+wire.MaxBatch, len(hs))]
		p, err := wire.EncodeHashes(batch)
		if err != nil {
			return nil, fmt.Errorf("store %s: has %d blocks: %w", s.addr, len(hs), err)
		}
		f, err := s.roundTrip(ctx, wire.OpHas, p)
		if err != nil {
			return nil, fmt.Errorf("store %s: has %d blocks: %w", s.addr, len(hs), err)
		}
		got, err := wire.DecodeHas(f.Payload, len(batch))
		if err != nil {
			return nil, fmt.Errorf("store %s: has %d blocks: %w", s.addr, len(hs), err)
		}
		held = append(held, got...)
	}
	return held, nil
}

// Delete implements storage.BlockStore. Batches above wire.MaxBatch are
// sent as several requests; on an error the blocks of the batches already
// answered are deleted. notSince is compared with touch times on the
// store's clock, not this machine's.
func (s *Store) Delete(ctx context.Context, hs []storage.Hash, notSince time.Time) (int64, error) {
	var freed int64
	for start := 0; start < len(hs); start += wire.MaxBatch {
		batch := hs[start:min(start+wire.MaxBatch, len(hs))]
		p, err := wire.EncodeDelete(notSince, batch)
		if err != nil {
			return freed, fmt.Errorf("store %s: delete %d blocks: %w", s.addr, len(hs), err)
		}
		f, err := s.roundTrip(ctx, wire.OpDelete, p)
		if err != nil {
			return freed, fmt.Errorf("store %s: delete %d blocks: %w", s.addr, len(hs), err)
		}
		n, err := wire.DecodeFreed(f.Payload)
		if err != nil {
			return freed, fmt.Errorf("store %s: delete %d blocks: %w", s.addr, len(hs), err)
		}
		freed += n
	}
	return freed, nil
}

// List implements storage.BlockStore. One request: a max above
// wire.MaxBatch gets at most wire.MaxBatch hashes. The reply is checked to
// be ascending after the cursor, so a walk always advances.
func (s *Store) List(ctx context.Context, after storage.Hash, max int) ([]storage.Hash, error) {
	if max <= 0 {
		// Nothing to ask, but the answer must not hide a closed store.
		if err := s.checkOpen(); err != nil {
			return nil, fmt.Errorf("store %s: list: %w", s.addr, err)
		}
		return nil, nil
	}
	f, err := s.roundTrip(ctx, wire.OpList, wire.EncodeList(after, max))
	if err != nil {
		return nil, fmt.Errorf("store %s: list after %s: %w", s.addr, after.Short(), err)
	}
	hs, err := wire.DecodeListReply(f.Payload, after, max)
	if err != nil {
		return nil, fmt.Errorf("store %s: list after %s: %w", s.addr, after.Short(), err)
	}
	return hs, nil
}

func (s *Store) checkOpen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return storage.ErrClosed
	}
	return nil
}

// Stat implements storage.BlockStore: the server's BlockStore's usage.
func (s *Store) Stat(ctx context.Context) (storage.Stat, error) {
	f, err := s.roundTrip(ctx, wire.OpStat)
	if err != nil {
		return storage.Stat{}, fmt.Errorf("store %s: stat: %w", s.addr, err)
	}
	st, err := wire.DecodeStat(f.Payload)
	if err != nil {
		return storage.Stat{}, fmt.Errorf("store %s: stat: %w", s.addr, err)
	}
	return st, nil
}

// Ping checks that the store answers.
func (s *Store) Ping(ctx context.Context) error {
	if _, err := s.roundTrip(ctx, wire.OpPing); err != nil {
		return fmt.Errorf("store %s: ping: %w", s.addr, err)
	}
	return nil
}

// Close closes the connection; calls outstanding fail with an error
// wrapping storage.ErrClosed, and so do later ones. Close waits for the
// connection's reader and is idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	s.mu.closed = true
	c := s.mu.cur
	s.mu.cur = nil
	s.mu.Unlock()
	s.batch.close()
	if c != nil {
		c.fail(fmt.Errorf("%w: %w", ErrConnLost, storage.ErrClosed))
	}
	s.wg.Wait()
	return nil
}
