package store_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/ckptio/ckptio/storage/memstore"
	"github.com/ckptio/ckptio/storage/store"
	"github.com/ckptio/ckptio/storage/tlsconf/tlsconftest"
	"github.com/ckptio/ckptio/storage/wire"
)

// tlsConn is a hand-driven TLS client connection that has passed both
// handshakes.
func tlsConn(t *testing.T, addr string, cfg *tls.Config) net.Conn {
	t.Helper()
	nc, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	if err := wire.ClientHandshake(context.Background(), nc, token); err != nil {
		t.Fatal(err)
	}
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	return nc
}

func TestRequestsOverTLS(t *testing.T) {
	certs := tlsconftest.New(t)
	addr, _ := serve(t, memstore.New("m", 0), store.Options{TLS: certs.Server(t)})
	nc := tlsConn(t, addr, certs.Client(t))
	ping(t, nc, 1)
	ping(t, nc, 2)
}

// A plain client waits for the store's hello, which a TLS store does not
// send: the store tells it, in clear, that it expects TLS.
func TestTLSStoreTellsPlainClient(t *testing.T) {
	certs := tlsconftest.New(t)
	addr, _ := serve(t, memstore.New("m", 0), store.Options{TLS: certs.Server(t)})
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(store.PlainClientWait + 5*time.Second))
	start := time.Now()
	f, err := wire.ReadFrame(nc, 0)
	if err != nil || f.ID != 0 || f.Op != wire.OpHello || f.Status != wire.StatusBadRequest ||
		string(f.Payload) != store.ExpectsTLSMessage {
		t.Fatalf("notice = %+v %q, %v; want a bad request saying %q", f.Header, f.Payload, err, store.ExpectsTLSMessage)
	}
	if d := time.Since(start); d < store.PlainClientWait/2 {
		t.Errorf("told after %v, before the client had time to speak", d)
	}
	expectClosed(t, nc)
	ping(t, tlsConn(t, addr, certs.Client(t)), 1)
}

// A client that opens with something other than a TLS record is closed
// at once by a TLS store.
func TestTLSStoreClosesGarbage(t *testing.T) {
	certs := tlsconftest.New(t)
	addr, _ := serve(t, memstore.New("m", 0), store.Options{TLS: certs.Server(t)})
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := nc.Write([]byte("GET / HTTP/1.1\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, nc)
}

// A TLS client of a plain store gets the store's hello, on which its TLS
// handshake fails; the store, seeing a TLS record, answers in clear that
// it does not speak TLS.
func TestPlainStoreTellsTLSClient(t *testing.T) {
	addr, _ := serve(t, memstore.New("m", 0), store.Options{})
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	if f := recv(t, nc); f.Status != wire.StatusOK || len(f.Payload) != wire.NonceSize {
		t.Fatalf("hello = %+v", f.Header)
	}
	// The start of a ClientHello record, as a TLS client sends it.
	if _, err := nc.Write(append([]byte{0x16, 0x03, 0x01, 0x00, 0xf0}, make([]byte, 40)...)); err != nil {
		t.Fatal(err)
	}
	f, err := wire.ReadFrame(nc, 0)
	if err != nil || f.ID != 0 || f.Status != wire.StatusBadRequest || string(f.Payload) != store.NoTLSMessage {
		t.Fatalf("notice = %+v %q, %v; want a bad request saying %q", f.Header, f.Payload, err, store.NoTLSMessage)
	}
	expectClosed(t, nc)
	ping(t, rawConn(t, addr), 1)
}

// Close interrupts a TLS store's wait for a silent client. The store here
// waits an hour for the client's first byte: Close returns at once, or
// the wait was not interrupted.
func TestTLSStoreCloseDuringWait(t *testing.T) {
	certs := tlsconftest.New(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rl := &readingListener{Listener: ln, reading: make(chan struct{})}
	addr, srv := serveWith(t, memstore.New("m", 0), store.Options{TLS: certs.Server(t)}, rl, func(srv *store.Server) {
		store.SetPlainClientWait(srv, time.Hour)
	})
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	select {
	case <-rl.reading: // the store waits for the client's first byte
	case <-time.After(20 * time.Second):
		t.Fatal("the store did not start reading the connection")
	}
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		srv.Close()
	}()
	select {
	case <-closed:
	case <-time.After(20 * time.Second):
		t.Fatal("Close did not interrupt the store's wait for a silent client")
	}
	_ = nc.SetReadDeadline(time.Now().Add(20 * time.Second))
	b := make([]byte, 256)
	if n, err := nc.Read(b); n > 0 || (!errors.Is(err, io.EOF) && !isReset(err)) {
		t.Fatalf("read after Close: %q, %v; want the connection closed", b[:n], err)
	}
}

// readingListener is a listener whose connections close reading when the
// server first reads one of them.
type readingListener struct {
	net.Listener
	once    sync.Once
	reading chan struct{}
}

func (l *readingListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &readingConn{Conn: nc, l: l}, nil
}

type readingConn struct {
	net.Conn
	l *readingListener
}

func (c *readingConn) Read(b []byte) (int, error) {
	c.l.once.Do(func() { close(c.l.reading) })
	return c.Conn.Read(b)
}
