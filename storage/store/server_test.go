package store_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/memstore"
	"github.com/ckptio/ckptio/storage/store"
	"github.com/ckptio/ckptio/storage/storetest"
	"github.com/ckptio/ckptio/storage/wire"
)

var token = []byte("test-cluster-token")

// serve starts a server of bs on a loopback port and returns its address.
func serve(t *testing.T, bs storage.BlockStore, opts store.Options) (string, *store.Server) {
	t.Helper()
	return serveWith(t, bs, opts, nil, nil)
}

// serveWith is serve with ln as the listener (a fresh loopback port if
// nil) and setup, if not nil, called on the server before it serves.
func serveWith(t *testing.T, bs storage.BlockStore, opts store.Options, ln net.Listener, setup func(*store.Server)) (string, *store.Server) {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = zaptest.NewLogger(t)
	}
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	srv := store.NewServer(bs, token, opts)
	if setup != nil {
		setup(srv)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background(), ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String(), srv
}

// rawConn is a hand-driven client connection that has passed the handshake.
func rawConn(t *testing.T, addr string) net.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
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

func send(t *testing.T, nc net.Conn, id uint64, op wire.Op, parts ...[]byte) {
	t.Helper()
	if err := wire.WriteFrame(nc, id, op, wire.StatusOK, parts...); err != nil {
		t.Fatal(err)
	}
}

func recv(t *testing.T, nc net.Conn) wire.Frame {
	t.Helper()
	f, err := wire.ReadFrame(nc, 0)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func ping(t *testing.T, nc net.Conn, id uint64) {
	t.Helper()
	send(t, nc, id, wire.OpPing)
	if f := recv(t, nc); f.ID != id || f.Status != wire.StatusOK || f.Op != wire.OpPing {
		t.Fatalf("ping reply = %+v", f.Header)
	}
}

// expectClosed checks the server closes nc, after at most one notice.
func expectClosed(t *testing.T, nc net.Conn) {
	t.Helper()
	for range 2 {
		f, err := wire.ReadFrame(nc, 0)
		if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isReset(err) {
			return
		}
		if err != nil {
			t.Fatalf("waiting for close: %v", err)
		}
		if f.ID != 0 {
			t.Fatalf("unexpected reply %+v while waiting for close", f.Header)
		}
	}
	t.Fatal("connection not closed")
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

func TestRequestsOverRawConnection(t *testing.T) {
	addr, _ := serve(t, memstore.New("m1", 0), store.Options{})
	nc := rawConn(t, addr)
	data, h := storetest.Block(1, 1000)
	send(t, nc, 1, wire.OpPutBlock, h[:], data)
	f := recv(t, nc)
	if created, err := wire.DecodeCreated(f.Payload); f.ID != 1 || err != nil || !created {
		t.Fatalf("put reply %+v %v", f.Header, err)
	}
	send(t, nc, 2, wire.OpGetBlock, h[:])
	if f := recv(t, nc); f.ID != 2 || string(f.Payload) != string(data) {
		t.Fatalf("get reply %+v", f.Header)
	}
	_, missing := storetest.Block(2, 10)
	send(t, nc, 3, wire.OpGetBlock, missing[:])
	f = recv(t, nc)
	if err := wire.ErrorFor(f.Status, f.Payload); f.ID != 3 || !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("get missing: %+v %v", f.Header, err)
	}
	send(t, nc, 4, wire.OpHas, h[:], missing[:])
	if f := recv(t, nc); f.ID != 4 || string(f.Payload) != "\x01\x00" {
		t.Fatalf("has reply %+v %q", f.Header, f.Payload)
	}
	send(t, nc, 5, wire.OpStat)
	f = recv(t, nc)
	if st, err := wire.DecodeStat(f.Payload); err != nil || st.ID != "m1" || st.Used != 1000 {
		t.Fatalf("stat reply %+v %v", st, err)
	}
	send(t, nc, 6, wire.OpList, wire.EncodeList(storage.Hash{}, 10))
	if f := recv(t, nc); f.ID != 6 || f.Status != wire.StatusOK || string(f.Payload) != string(h[:]) {
		t.Fatalf("list reply %+v %x", f.Header, f.Payload)
	}
	// Touched by the Has above: a notSince in the past keeps it.
	var notSince [8]byte
	binary.BigEndian.PutUint64(notSince[:], uint64(time.Now().Add(-time.Hour).UnixNano()))
	send(t, nc, 7, wire.OpDelete, notSince[:], h[:])
	if f := recv(t, nc); f.ID != 7 || binary.BigEndian.Uint64(f.Payload) != 0 {
		t.Fatalf("delete not since an hour ago: reply %+v %q", f.Header, f.Payload)
	}
	// 0: unconditional.
	send(t, nc, 8, wire.OpDelete, make([]byte, 8), h[:])
	if f := recv(t, nc); f.ID != 8 || binary.BigEndian.Uint64(f.Payload) != 1000 {
		t.Fatalf("delete reply %+v %q", f.Header, f.Payload)
	}
	send(t, nc, 9, wire.OpList, wire.EncodeList(storage.Hash{}, 10))
	if f := recv(t, nc); f.ID != 9 || f.Status != wire.StatusOK || len(f.Payload) != 0 {
		t.Fatalf("list reply after delete %+v %x", f.Header, f.Payload)
	}
}

func TestUnknownOpKeepsConnection(t *testing.T) {
	addr, _ := serve(t, memstore.New("m", 0), store.Options{})
	nc := rawConn(t, addr)
	send(t, nc, 5, wire.Op(0x7f), []byte("whatever"))
	f := recv(t, nc)
	if f.ID != 5 || f.Status != wire.StatusUnknownOp {
		t.Fatalf("reply = %+v, want id 5 unknown op", f.Header)
	}
	if err := wire.ErrorFor(f.Status, f.Payload); !errors.Is(err, wire.ErrUnknownOp) {
		t.Fatalf("err = %v", err)
	}
	ping(t, nc, 6)
}

func TestBadRequestsKeepConnection(t *testing.T) {
	addr, _ := serve(t, memstore.New("m", 0), store.Options{})
	nc := rawConn(t, addr)
	cases := []struct {
		op      wire.Op
		payload []byte
		want    wire.Status
	}{
		{wire.OpGetBlock, make([]byte, 31), wire.StatusBadRequest},
		{wire.OpHas, make([]byte, 33), wire.StatusBadRequest},
		{wire.OpDelete, make([]byte, 8+65), wire.StatusBadRequest},
		{wire.OpDelete, make([]byte, 7), wire.StatusBadRequest},
		{wire.OpDelete, bytes.Repeat([]byte{0xff}, 8), wire.StatusBadRequest},
		{wire.OpList, make([]byte, 32), wire.StatusBadRequest},
		{wire.OpList, make([]byte, 37), wire.StatusBadRequest},
		{wire.OpPutBlock, make([]byte, 10), wire.StatusBadRequest},
		{wire.OpPutBlock, append(make([]byte, 32), 'x'), wire.StatusHashMismatch},
		{wire.OpHello, nil, wire.StatusBadRequest},
	}
	for i, tc := range cases {
		id := uint64(10 + i)
		send(t, nc, id, tc.op, tc.payload)
		if f := recv(t, nc); f.ID != id || f.Status != tc.want || len(f.Payload) == 0 {
			t.Fatalf("%s with %d bytes: reply %+v, want %s with a message", tc.op, len(tc.payload), f.Header, tc.want)
		}
	}
	ping(t, nc, 99)
}

// A frame announcing 100 GiB, or the most the u64 length can express, is
// refused without the server reading or allocating it; other clients are
// unharmed, during and after.
func TestHugeFrameRefused(t *testing.T) {
	for _, length := range []uint64{100 << 30, math.MaxUint64} {
		t.Run(fmt.Sprint(length), func(t *testing.T) {
			addr, _ := serve(t, memstore.New("m", 0), store.Options{})
			other := rawConn(t, addr)
			nc := rawConn(t, addr)
			// Send a payload's first bytes too: the server must not wait
			// for, or allocate room for, the rest.
			var hb [wire.HeaderSize]byte
			wire.PutHeader(hb[:], wire.Header{Length: length, ID: 77, Op: wire.OpPutBlock})
			before := heapAlloc()
			if _, err := nc.Write(append(hb[:], make([]byte, 4096)...)); err != nil {
				t.Fatal(err)
			}
			f := recv(t, nc)
			if f.ID != 77 || f.Status != wire.StatusTooLarge {
				t.Fatalf("reply = %+v, want id 77 too large", f.Header)
			}
			if err := wire.ErrorFor(f.Status, f.Payload); !errors.Is(err, storage.ErrTooLarge) ||
				!strings.Contains(err.Error(), "too large") || !strings.Contains(err.Error(), fmt.Sprint(length)) {
				t.Fatalf("err = %v, want too large naming %d bytes", err, length)
			}
			// The whole process, server included, grew by far less than
			// the largest frame it accepts, let alone the announced one.
			if grew := int64(heapAlloc()) - int64(before); grew > wire.DefaultMaxPayload {
				t.Fatalf("heap grew by %d bytes while refusing the frame", grew)
			}
			ping(t, other, 1)
			expectClosed(t, nc)
			ping(t, other, 2)
			ping(t, rawConn(t, addr), 1)
		})
	}
}

func heapAlloc() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func TestTruncatedFrameClosesOnlyItsConnection(t *testing.T) {
	addr, _ := serve(t, memstore.New("m", 0), store.Options{})
	other := rawConn(t, addr)
	nc := rawConn(t, addr)
	var hb [wire.HeaderSize]byte
	wire.PutHeader(hb[:], wire.Header{Length: 100, ID: 1, Op: wire.OpPutBlock})
	if _, err := nc.Write(append(hb[:], make([]byte, 10)...)); err != nil {
		t.Fatal(err)
	}
	nc.(*net.TCPConn).CloseWrite()
	expectClosed(t, nc)
	ping(t, other, 1)
}

func TestGarbageClosesOnlyItsConnection(t *testing.T) {
	addr, _ := serve(t, memstore.New("m", 0), store.Options{})
	other := rawConn(t, addr)
	nc := rawConn(t, addr)
	if _, err := nc.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	f, err := wire.ReadFrame(nc, 0)
	if err != nil || f.ID != 0 || f.Status != wire.StatusBadRequest {
		t.Fatalf("notice = %+v, %v; want id 0 bad request", f.Header, err)
	}
	expectClosed(t, nc)
	ping(t, other, 1)
}

func TestWrongTokenRefused(t *testing.T) {
	addr, _ := serve(t, memstore.New("m", 0), store.Options{})
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	err = wire.ClientHandshake(context.Background(), nc, []byte("not-the-token"))
	if !errors.Is(err, storage.ErrUnauthorized) || !strings.Contains(err.Error(), wire.WrongTokenMessage) {
		t.Fatalf("handshake err = %v", err)
	}
	expectClosed(t, nc)
	ping(t, rawConn(t, addr), 1)
}

// Connections beyond MaxConns are told the store is busy and closed, while
// the connections already open keep working.
func TestConnectionFloodRefused(t *testing.T) {
	const maxConns = 4
	connDone := make(chan struct{}, 1)
	addr, _ := serveWith(t, memstore.New("m", 0), store.Options{MaxConns: maxConns}, nil, func(srv *store.Server) {
		// Never blocks: a connection ending while the test is not waiting
		// (or after it failed) must not hold up the server's shutdown.
		store.SetConnDone(srv, func() {
			select {
			case connDone <- struct{}{}:
			default:
			}
		})
	})
	var open []net.Conn
	for range maxConns {
		open = append(open, rawConn(t, addr))
	}
	for i := range 20 {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		err = wire.ClientHandshake(context.Background(), nc, token)
		nc.Close()
		if !errors.Is(err, wire.ErrBusy) || !strings.Contains(err.Error(), "busy") {
			t.Fatalf("connection %d over the limit: err = %v, want ErrBusy", i, err)
		}
	}
	for i, nc := range open {
		ping(t, nc, uint64(i+1))
	}
	// A slot freed is a slot taken: once the store has seen the close,
	// the next connection gets in.
	open[0].Close()
	select {
	case <-connDone:
	case <-time.After(20 * time.Second):
		t.Fatal("the store did not end a connection its client closed")
	}
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := wire.ClientHandshake(context.Background(), nc, token); err != nil {
		t.Fatalf("connection after one closed: %v", err)
	}
}

// A peer that connects and says nothing is dropped after the handshake
// timeout rather than holding a connection slot for ever.
func TestSilentPeerDropped(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the handshake timeout")
	}
	addr, _ := serve(t, memstore.New("m", 0), store.Options{})
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(3 * wire.HandshakeTimeout))
	if _, err := wire.ReadFrame(nc, 0); err != nil { // the hello
		t.Fatal(err)
	}
	if _, err := nc.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !isReset(err) {
		t.Fatalf("silent peer: read err = %v, want the server to close", err)
	}
}

func TestIdleConnectionClosed(t *testing.T) {
	addr, _ := serve(t, memstore.New("m", 0), store.Options{IdleTimeout: 50 * time.Millisecond})
	nc := rawConn(t, addr)
	ping(t, nc, 1)
	f, err := wire.ReadFrame(nc, 0)
	if err != nil || f.ID != 0 || f.Status != wire.StatusClosed {
		t.Fatalf("idle notice = %+v, %v", f.Header, err)
	}
	expectClosed(t, nc)
}

func TestServeAfterClose(t *testing.T) {
	srv := store.NewServer(memstore.New("m", 0), token, store.Options{})
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(context.Background(), ln); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("serve after close: %v", err)
	}
}

func TestServeReturnsOnCancel(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := store.NewServer(memstore.New("m", 0), token, store.Options{Logger: zaptest.NewLogger(t)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	nc := rawConn(t, ln.Addr().String())
	ping(t, nc, 1)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	f, err := wire.ReadFrame(nc, 0)
	if err != nil || f.ID != 0 || f.Status != wire.StatusClosed {
		t.Fatalf("shutdown notice = %+v, %v", f.Header, err)
	}
	expectClosed(t, nc)
}
