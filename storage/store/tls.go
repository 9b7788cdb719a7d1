package store

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"go.uber.org/zap"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/wire"
)

// tlsRecordHandshake is the first byte a TLS client sends: the record type
// of its ClientHello.
const tlsRecordHandshake = 0x16

// PlainClientWait is how long a TLS store waits for a client's first byte
// before it takes the client for a plain ckptio client. In the wire
// protocol the server speaks first and in TLS the client does, so a plain
// client of a TLS store would wait in silence: after PlainClientWait the
// store sends it, in clear, a BadRequest notice with ExpectsTLSMessage and
// closes. A TLS client's ClientHello comes within a round trip.
const PlainClientWait = time.Second

// Notices a store sends, in clear, to a client that does not speak as it
// does, before closing the connection.
const (
	ExpectsTLSMessage = "this store expects TLS (it runs with --tls-cert): " +
		"give the client the store's CA with --tls-ca or CKPT_TLS_CA"
	NoTLSMessage = "this store does not speak TLS (it runs without --tls-cert)"
)

// handshake runs the connection's handshakes, TLS first on a TLS store,
// then the cluster token's; it logs why one failed. The caller closes the
// connection on an error.
func (c *conn) handshake() error {
	var rw net.Conn = c.nc
	var fc *firstByteConn
	if tc, ok := c.nc.(*tls.Conn); ok {
		if err := c.startTLS(tc); err != nil {
			return err
		}
	} else {
		fc = &firstByteConn{Conn: c.nc}
		rw = fc
	}
	// The connection counts against MaxConns from the moment its proof is
	// checked, before the client hears it is in: a client that opens one
	// more connection right after must find the store full.
	err := wire.ServerHandshakeVerified(c.stop, rw, c.s.token, func() { c.s.handshook(c, nil) })
	switch {
	case err == nil:
	case errors.Is(err, storage.ErrUnauthorized):
		// Log the 1st, 2nd, 4th, 8th...: a client hammering with a wrong
		// token must not fill the desktop's disk with the store's log.
		if n := c.s.wrongToken.Add(1); n&(n-1) == 0 {
			c.log.Warn("client refused: wrong cluster token", zap.Error(err), zap.Int64("refused_total", n))
		}
	case c.stop.Err() != nil:
	case fc != nil && fc.read && fc.first == tlsRecordHandshake && errors.Is(err, wire.ErrBadMagic):
		c.log.Warn("client speaks TLS but this store runs without --tls-cert; told it so and closed")
		_ = fc.SetWriteDeadline(time.Now().Add(time.Second))
		_ = wire.WriteError(fc.Conn, 0, wire.OpHello, wire.StatusBadRequest, NoTLSMessage)
	default:
		c.log.Info("handshake failed, connection closed", zap.Error(err))
	}
	return err
}

// startTLS runs the server side of the TLS handshake under c.stop, after
// waiting PlainClientWait for the client's first byte.
func (c *conn) startTLS(tc *tls.Conn) error {
	wait := PlainClientWait
	if c.s.plainWait != 0 {
		wait = c.s.plainWait
	}
	_ = tc.SetReadDeadline(time.Now().Add(wait))
	// Checked after setting the deadline, as in deadlineReader.
	if err := c.stop.Err(); err != nil {
		return err
	}
	err := c.peek.fill()
	switch {
	case err == nil:
	case c.stop.Err() != nil:
		return c.stop.Err()
	case isTimeout(err):
		c.log.Warn("client sent nothing, as a client without TLS does; told it this store expects TLS and closed",
			zap.Duration("waited", wait))
		_ = tc.SetWriteDeadline(time.Now().Add(time.Second))
		_ = wire.WriteError(c.peek.Conn, 0, wire.OpHello, wire.StatusBadRequest, ExpectsTLSMessage)
		return errors.New("store: client does not speak TLS")
	default:
		c.log.Debug("connection closed before the TLS handshake", zap.Error(err))
		return err
	}
	if c.peek.first != tlsRecordHandshake {
		c.log.Warn("client does not speak TLS, connection closed", zap.Uint8("first_byte", c.peek.first))
		return errors.New("store: client does not speak TLS")
	}
	_ = tc.SetDeadline(time.Now().Add(wire.HandshakeTimeout))
	if err := c.stop.Err(); err != nil {
		return err
	}
	if err := tc.HandshakeContext(c.stop); err != nil {
		if c.stop.Err() == nil {
			c.log.Info("TLS handshake failed, connection closed", zap.Error(err))
		}
		return fmt.Errorf("store: TLS handshake: %w", err)
	}
	_ = tc.SetDeadline(time.Time{})
	return nil
}

// peekConn is the plain connection under a TLS store's connection. Its
// first byte is read ahead by fill, and Read returns it first. Only the
// connection's reader reads.
type peekConn struct {
	net.Conn
	first   byte
	pending bool
}

// fill reads the connection's first byte ahead.
func (p *peekConn) fill() error {
	var b [1]byte
	if _, err := io.ReadFull(p.Conn, b[:]); err != nil {
		return err
	}
	p.first, p.pending = b[0], true
	return nil
}

func (p *peekConn) Read(b []byte) (int, error) {
	if p.pending && len(b) > 0 {
		b[0] = p.first
		p.pending = false
		return 1, nil
	}
	return p.Conn.Read(b)
}

// firstByteConn records the first byte read from a plain store's
// connection during the handshake, so that a TLS client can be told why it
// is refused.
type firstByteConn struct {
	net.Conn
	first byte
	read  bool
}

func (f *firstByteConn) Read(b []byte) (int, error) {
	n, err := f.Conn.Read(b)
	if n > 0 && !f.read {
		f.first, f.read = b[0], true
	}
	return n, err
}
