package clustertest_test

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/ckptio/ckptio/storage/cluster/clustertest"
	"github.com/ckptio/ckptio/storage/store"
	"github.com/ckptio/ckptio/storage/wire"
)

// A stranger opens more connections than the store's limit and never
// authenticates. A client with the token still gets in and is served:
// handshaking connections do not count against MaxConns, and the oldest
// of them is closed when too many are open.
func TestHostileHandshakeFloodKeepsClientsServed(t *testing.T) {
	c := clustertest.NewCluster(t, clustertest.Options{Stores: 1})
	addr := c.Stores[0].Addr
	var flood []net.Conn
	defer func() {
		for _, nc := range flood {
			nc.Close()
		}
	}()
	for range store.DefaultMaxConns + 44 {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		flood = append(flood, nc)
		// The store speaks first: its hello (or its closing, for an
		// evicted connection) shows it has taken the connection in.
		_ = nc.SetReadDeadline(time.Now().Add(30 * time.Second))
		if _, err := wire.ReadFrame(nc, 0); err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("stranger's connection %d: %v", len(flood), err)
		}
	}
	for i := range 3 {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
		if err := wire.ClientHandshake(t.Context(), nc, c.Token); err != nil {
			nc.Close()
			t.Fatalf("client %d during the flood: %v", i, err)
		}
		if err := wire.WriteFrame(nc, 1, wire.OpPing, wire.StatusOK); err != nil {
			t.Fatal(err)
		}
		f, err := wire.ReadFrame(nc, 0)
		nc.Close()
		if err != nil || f.Status != wire.StatusOK {
			t.Fatalf("client %d ping during the flood: %+v, %v", i, f.Header, err)
		}
	}
}
