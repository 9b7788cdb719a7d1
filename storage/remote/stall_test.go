package remote_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/memstore"
	"github.com/ckptio/ckptio/storage/remote"
	"github.com/ckptio/ckptio/storage/store"
)

// stallProxy forwards TCP between a client and addr until freeze is
// called; after that it forwards nothing back to the client, as a store
// process that was stopped (SIGSTOP) holds its connections open and
// answers nothing.
type stallProxy struct {
	ln     net.Listener
	frozen chan struct{}
}

func newStallProxy(t *testing.T, addr string) *stallProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallProxy{ln: ln, frozen: make(chan struct{})}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", addr)
			if err != nil {
				c.Close()
				continue
			}
			t.Cleanup(func() { c.Close(); s.Close() })
			go io.Copy(s, c)
			go func() {
				buf := make([]byte, 32<<10)
				for {
					n, err := s.Read(buf)
					select {
					case <-p.frozen:
						io.Copy(io.Discard, s) // swallow; never answer
						return
					default:
					}
					if n > 0 {
						if _, err := c.Write(buf[:n]); err != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return p
}

func (p *stallProxy) freeze() { close(p.frozen) }

// TestStalledStoreFailsOutstandingRequests: a store that stops answering
// on an open connection fails its requests after the reply timeout
// instead of hanging them, with an error that says so.
func TestStalledStoreFailsOutstandingRequests(t *testing.T) {
	addr, _ := serve(t, memstore.New("m", 0), nil, store.Options{Logger: zaptest.NewLogger(t)})
	p := newStallProxy(t, addr)
	s := dial(t, p.ln.Addr().String(), remote.Options{ReplyTimeout: 200 * time.Millisecond, Logger: zaptest.NewLogger(t)})
	data := []byte("a block that was stored before the store stopped")
	h := storage.Sum(data)
	if _, err := s.Put(context.Background(), h, data); err != nil {
		t.Fatal(err)
	}
	p.freeze()
	_, err := s.Get(context.Background(), h)
	if !errors.Is(err, remote.ErrConnLost) || !strings.Contains(err.Error(), "sent nothing for 200ms") {
		t.Fatalf("get from a stalled store: err = %v, want the reply timeout", err)
	}
}
