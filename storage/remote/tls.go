package remote

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/ckptio/ckptio/storage/tlsconf"
	"github.com/ckptio/ckptio/storage/wire"
)

// startTLS runs the client side of the TLS handshake on nc, verifying the
// store's certificate for the host of its address unless Options.TLS names
// a server. Errors say which side expects what. The caller closes nc on an
// error.
func (s *Store) startTLS(ctx context.Context, nc net.Conn) (net.Conn, error) {
	host, _, err := net.SplitHostPort(s.addr)
	if err != nil {
		host = s.addr
	}
	rec := &recordConn{Conn: nc}
	tc := tls.Client(rec, tlsconf.ForHost(s.opts.TLS, host))
	err = tc.HandshakeContext(ctx)
	rec.stop()
	if err == nil {
		return tc, nil
	}
	var rhe tls.RecordHeaderError
	var ve *tls.CertificateVerificationError
	switch {
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return nil, fmt.Errorf("store %s: TLS handshake: %w", s.addr, ctx.Err())
	case errors.As(err, &rhe) && rhe.RecordHeader[0] == wire.Magic:
		return nil, s.plainAnswer(rec, err)
	case errors.As(err, &ve):
		return nil, fmt.Errorf("store %s: its TLS certificate is not trusted (wrong --tls-ca / CKPT_TLS_CA?): %w", s.addr, err)
	}
	return nil, fmt.Errorf("store %s: TLS handshake failed (does the store run with --tls-cert?): %w", s.addr, err)
}

// plainAnswer explains a store that answered a TLS ClientHello in clear,
// from the frame it sent: its hello (the store has no TLS) or a refusal.
func (s *Store) plainAnswer(rec *recordConn, tlsErr error) error {
	noTLS := fmt.Errorf("store %s does not speak TLS (started without --tls-cert?): %w", s.addr, tlsErr)
	_ = rec.SetReadDeadline(time.Now().Add(time.Second))
	f, err := wire.ReadFrame(io.MultiReader(bytes.NewReader(rec.buf), rec.Conn), wire.MaxHandshakePayload)
	if err != nil || f.Op != wire.OpHello || f.ID != 0 {
		return noTLS
	}
	if err := wire.ErrorFor(f.Status, f.Payload); err != nil {
		if errors.Is(err, wire.ErrBusy) {
			return fmt.Errorf("store %s refused the connection: %w", s.addr, err)
		}
		return fmt.Errorf("store %s does not speak TLS (started without --tls-cert?), and refused the connection: %w", s.addr, err)
	}
	return noTLS
}

// recordConn keeps the first bytes read from a connection during the TLS
// handshake, so that a plain store's answer can be read back.
type recordConn struct {
	net.Conn
	buf  []byte
	done bool
}

// recordMax is the longest handshake frame.
const recordMax = wire.HeaderSize + wire.MaxHandshakePayload

func (r *recordConn) Read(b []byte) (int, error) {
	n, err := r.Conn.Read(b)
	if !r.done && n > 0 {
		r.buf = append(r.buf, b[:min(n, recordMax-len(r.buf))]...)
		r.done = len(r.buf) >= recordMax
	}
	return n, err
}

// stop ends recording; the reader of the connection calls it.
func (r *recordConn) stop() { r.done = true }
