package remote_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/memstore"
	"github.com/ckptio/ckptio/storage/remote"
	"github.com/ckptio/ckptio/storage/store"
	"github.com/ckptio/ckptio/storage/storetest"
	"github.com/ckptio/ckptio/storage/tlsconf/tlsconftest"
)

func TestConformanceTLS(t *testing.T) {
	certs := tlsconftest.New(t)
	storetest.RunWithClock(t, func(t *testing.T, quota int64, now func() time.Time) storage.BlockStore {
		addr, _ := serve(t, memstore.NewWithClock("mem-"+t.Name(), quota, now), nil,
			store.Options{Logger: zaptest.NewLogger(t), TLS: certs.Server(t)})
		s, err := remote.Dial(context.Background(), addr, token,
			remote.Options{Logger: zaptest.NewLogger(t), TLS: certs.Client(t)})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func wantErr(t *testing.T, err error, wants ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one saying %q", wants)
	}
	for _, w := range wants {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
}

func TestTLSClientOfPlainStore(t *testing.T) {
	certs := tlsconftest.New(t)
	addr, _ := serve(t, memstore.New("m", 0), nil, store.Options{Logger: zaptest.NewLogger(t)})
	_, err := remote.Dial(context.Background(), addr, token, remote.Options{TLS: certs.Client(t)})
	wantErr(t, err, fmt.Sprintf("store %s does not speak TLS (started without --tls-cert?)", addr))
	if err := dial(t, addr, remote.Options{}).Ping(context.Background()); err != nil {
		t.Fatalf("plain client after a TLS one: %v", err)
	}
}

func TestPlainClientOfTLSStore(t *testing.T) {
	certs := tlsconftest.New(t)
	addr, _ := serve(t, memstore.New("m", 0), nil, store.Options{Logger: zaptest.NewLogger(t), TLS: certs.Server(t)})
	_, err := remote.Dial(context.Background(), addr, token, remote.Options{})
	wantErr(t, err, fmt.Sprintf("store %s refused the handshake", addr), store.ExpectsTLSMessage)

	// A dial timeout shorter than the store's wait still hints at TLS.
	_, err = remote.Dial(context.Background(), addr, token, remote.Options{DialTimeout: store.PlainClientWait / 4})
	wantErr(t, err, addr, "--tls-cert needs --tls-ca")

	if err := dial(t, addr, remote.Options{TLS: certs.Client(t)}).Ping(context.Background()); err != nil {
		t.Fatalf("TLS client after a plain one: %v", err)
	}
}

func TestTLSWrongCARefused(t *testing.T) {
	certs, other := tlsconftest.New(t), tlsconftest.New(t)
	addr, _ := serve(t, memstore.New("m", 0), nil, store.Options{Logger: zaptest.NewLogger(t), TLS: certs.Server(t)})
	_, err := remote.Dial(context.Background(), addr, token, remote.Options{TLS: other.Client(t)})
	wantErr(t, err, fmt.Sprintf("store %s: its TLS certificate is not trusted (wrong --tls-ca / CKPT_TLS_CA?)", addr),
		"unknown authority")
}

func TestTLSWrongTokenRefused(t *testing.T) {
	certs := tlsconftest.New(t)
	addr, _ := serve(t, memstore.New("m", 0), nil, store.Options{Logger: zaptest.NewLogger(t), TLS: certs.Server(t)})
	_, err := remote.Dial(context.Background(), addr, []byte("wrong"), remote.Options{TLS: certs.Client(t)})
	wantErr(t, err, fmt.Sprintf("store %s refused the cluster token", addr))
}

// A busy plain store answers a TLS client in clear; the client reports the
// refusal rather than a protocol mismatch.
func TestTLSClientOfBusyPlainStore(t *testing.T) {
	certs := tlsconftest.New(t)
	addr, _ := serve(t, memstore.New("m", 0), nil, store.Options{Logger: zaptest.NewLogger(t), MaxConns: 1})
	// MaxConns counts authenticated connections: a plain client that has
	// been answered fills the store.
	hold := dial(t, addr, remote.Options{})
	if err := hold.Ping(context.Background()); err != nil {
		t.Fatalf("ping on the connection that fills the store: %v", err)
	}
	_, err := remote.Dial(context.Background(), addr, token, remote.Options{TLS: certs.Client(t)})
	wantErr(t, err, fmt.Sprintf("store %s refused the connection", addr), "store busy")
}

// A TLS connection lost to a store restart is dialed again with TLS.
func TestTLSRedialAfterStoreRestart(t *testing.T) {
	certs := tlsconftest.New(t)
	ms := memstore.New("m", 0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	srv := store.NewServer(ms, token, store.Options{Logger: zaptest.NewLogger(t), TLS: certs.Server(t)})
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background(), ln) }()
	// A failed dial would fail the calls after it for an hour: the second
	// ping below dials once, whenever it runs.
	s := dial(t, addr, remote.Options{TLS: certs.Client(t), RedialBackoff: time.Hour})
	ctx := context.Background()
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	addr2, _ := serve(t, ms, mustListen(t, addr), store.Options{Logger: zaptest.NewLogger(t), TLS: certs.Server(t)})
	if addr2 != addr {
		t.Fatalf("restarted on %s, want %s", addr2, addr)
	}
	// The first call may still see the old connection fail; the next
	// dials the restarted store, with TLS.
	if err := s.Ping(ctx); err != nil {
		if !errors.Is(err, remote.ErrConnLost) {
			t.Fatalf("first ping after restart: %v", err)
		}
		if err := s.Ping(ctx); err != nil {
			t.Fatalf("second ping after restart: %v", err)
		}
	}
}

func mustListen(t *testing.T, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", addr, err)
	}
	return ln
}
