package wire

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ckptio/ckptio/storage"
)

// handshake runs both sides over a pipe and returns their errors.
func handshake(t *testing.T, serverToken, clientToken []byte) (serverErr, clientErr error) {
	t.Helper()
	cs, cc := net.Pipe()
	defer cs.Close()
	defer cc.Close()
	ctx := context.Background()
	done := make(chan error, 1)
	go func() {
		err := ServerHandshake(ctx, cs, serverToken)
		cs.Close()
		done <- err
	}()
	clientErr = ClientHandshake(ctx, cc, clientToken)
	cc.Close()
	return <-done, clientErr
}

func TestHandshakeRightToken(t *testing.T) {
	serr, cerr := handshake(t, []byte("s3cret"), []byte("s3cret"))
	if serr != nil || cerr != nil {
		t.Fatalf("server: %v, client: %v", serr, cerr)
	}
}

func TestHandshakeWrongToken(t *testing.T) {
	serr, cerr := handshake(t, []byte("s3cret"), []byte("guess"))
	if !errors.Is(serr, storage.ErrUnauthorized) {
		t.Fatalf("server err = %v, want ErrUnauthorized", serr)
	}
	if !errors.Is(cerr, storage.ErrUnauthorized) {
		t.Fatalf("client err = %v, want ErrUnauthorized", cerr)
	}
	var se *StatusError
	if !errors.As(cerr, &se) || se.Msg != WrongTokenMessage {
		t.Fatalf("client err = %v, want the server's %q", cerr, WrongTokenMessage)
	}
}

// The token never crosses the wire, in either direction.
func TestHandshakeTokenNotSent(t *testing.T) {
	token := []byte("a-very-recognisable-token")
	cs, cc := net.Pipe()
	var sent bytes.Buffer
	ctx := context.Background()
	done := make(chan error, 1)
	go func() { done <- ServerHandshake(ctx, teeConn{cs, &sent}, token) }()
	if err := ClientHandshake(ctx, cc, token); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	cs.Close()
	cc.Close()
	if bytes.Contains(sent.Bytes(), token) {
		t.Fatal("token sent in clear")
	}
}

// teeConn records what passes through Read and Write.
type teeConn struct {
	net.Conn
	rec *bytes.Buffer
}

func (c teeConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.rec.Write(b[:n])
	return n, err
}

func (c teeConn) Write(b []byte) (int, error) {
	c.rec.Write(b)
	return c.Conn.Write(b)
}

// A server that does not know the token cannot pass the client's check,
// even if it answers OK.
func TestHandshakeImpostorServer(t *testing.T) {
	cs, cc := net.Pipe()
	defer cs.Close()
	defer cc.Close()
	go func() {
		_ = WriteFrame(cs, 0, OpHello, StatusOK, make([]byte, NonceSize))
		if _, err := ReadFrame(cs, 0); err != nil {
			return
		}
		_ = WriteFrame(cs, 0, OpHello, StatusOK, make([]byte, MACSize))
	}()
	err := ClientHandshake(context.Background(), cc, []byte("tok"))
	if !errors.Is(err, storage.ErrUnauthorized) {
		t.Fatalf("err = %v, want ErrUnauthorized", err)
	}
}

func TestHandshakeGarbage(t *testing.T) {
	hello := encode(t, 0, OpHello, StatusOK, make([]byte, NonceSize))
	inputs := map[string][]byte{
		"nothing":           nil,
		"http":              []byte("GET / HTTP/1.0\r\n\r\n"),
		"short hello":       encode(t, 0, OpHello, StatusOK, make([]byte, 5)),
		"hello wrong op":    encode(t, 0, OpPing, StatusOK, make([]byte, NonceSize)),
		"hello wrong id":    encode(t, 3, OpHello, StatusOK, make([]byte, NonceSize)),
		"huge hello":        encode(t, 0, OpHello, StatusOK, make([]byte, MaxHandshakePayload+1)),
		"hello then silent": hello,
		"random":            bytes.Repeat([]byte{0xCB, 1, 0, 0}, 40),
	}
	for name, in := range inputs {
		t.Run("client/"+name, func(t *testing.T) {
			err := ClientHandshake(context.Background(), rwFrom(in), []byte("tok"))
			if err == nil {
				t.Fatal("handshake succeeded")
			}
		})
		t.Run("server/"+name, func(t *testing.T) {
			err := ServerHandshake(context.Background(), rwFrom(in), []byte("tok"))
			if err == nil {
				t.Fatal("handshake succeeded")
			}
		})
	}
	err := ClientHandshake(context.Background(), rwFrom(encode(t, 0, OpHello, StatusBusy, []byte("store busy: 3 connections"))), nil)
	if !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "3 connections") {
		t.Fatalf("busy refusal: %v", err)
	}
}

func rwFrom(in []byte) io.ReadWriter {
	return struct {
		io.Reader
		io.Writer
	}{bytes.NewReader(in), io.Discard}
}

// A peer that says nothing cannot hold the handshake beyond its deadline,
// and cancelling ctx interrupts it.
func TestHandshakeSilentPeer(t *testing.T) {
	cs, cc := net.Pipe()
	defer cs.Close()
	defer cc.Close()
	go io.Copy(io.Discard, cc) // swallow the hello, never answer
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := ServerHandshake(ctx, cs, []byte("tok"))
	if err == nil {
		t.Fatal("handshake with a silent peer succeeded")
	}
	if time.Since(start) > HandshakeTimeout {
		t.Fatalf("handshake took %v", time.Since(start))
	}

	// Cancelled while it waits for the server's hello, which never comes.
	cs2, cc2 := net.Pipe()
	defer cs2.Close()
	defer cc2.Close()
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	rc := &readingConn{Conn: cc2, reading: make(chan struct{})}
	go func() {
		<-rc.reading
		cancel2()
	}()
	if err := ClientHandshake(ctx2, rc, []byte("tok")); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled handshake: %v", err)
	}
}

// readingConn closes reading when Read is first called.
type readingConn struct {
	net.Conn
	once    sync.Once
	reading chan struct{}
}

func (c *readingConn) Read(b []byte) (int, error) {
	c.once.Do(func() { close(c.reading) })
	return c.Conn.Read(b)
}
