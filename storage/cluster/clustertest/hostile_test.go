package clustertest_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ckptio/ckptio/storage/catalog"
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

// A token holder sends heartbeats with a running store's ID and its own
// address, unsigned and signed by a key of its own. The manager refuses
// both with a conflict, and the store keeps its address: puts still go
// to the store that holds the data (finding F8).
func TestHostileHeartbeatCannotTakeAStoreID(t *testing.T) {
	c := clustertest.NewCluster(t, clustertest.Options{Stores: 1})
	cl := c.Client()
	var real catalog.StoreInfo
	clustertest.Eventually(t, 30*time.Second, func() bool {
		stores, err := cl.Stores(t.Context())
		if err != nil || len(stores) != 1 || len(stores[0].PublicKey) == 0 {
			return false
		}
		real = stores[0]
		return true
	}, func() string { return "the store's signed heartbeat was not recorded" })

	fake := real.Heartbeat
	fake.Addr = "127.0.0.1:1" // where the impostor would take the puts
	fake.PublicKey, fake.Signature = nil, nil
	if err := cl.Heartbeat(t.Context(), fake); !errors.Is(err, catalog.ErrConflict) {
		t.Fatalf("unsigned heartbeat for a bound store ID: %v, want a conflict", err)
	}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	catalog.SignHeartbeat(&fake, key)
	if err := cl.Heartbeat(t.Context(), fake); !errors.Is(err, catalog.ErrConflict) {
		t.Fatalf("heartbeat signed by another key: %v, want a conflict", err)
	}
	// A signature that does not match the key it comes with is invalid.
	fake.Signature[0] ^= 1
	if err := cl.Heartbeat(t.Context(), fake); !errors.Is(err, catalog.ErrInvalid) {
		t.Fatalf("heartbeat with a bad signature: %v, want invalid", err)
	}

	stores, err := cl.Stores(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(stores) != 1 || stores[0].Addr != real.Addr || !bytes.Equal(stores[0].PublicKey, real.PublicKey) {
		t.Fatalf("after the forged heartbeats the manager lists %+v; want the store at %s with its own key", stores, real.Addr)
	}
	// The real store is still the one serving puts.
	dir := t.TempDir()
	src := filepath.Join(dir, "f")
	if err := os.WriteFile(src, bytes.Repeat([]byte("ckptio"), 50000), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := c.Run(t, dir, nil, "ckpt", "put", "--quiet", "j", "f"); code != 0 {
		t.Fatalf("put after forged heartbeats: exit %d\n%s%s", code, out, errOut)
	}
	if out, errOut, code := c.Run(t, dir, nil, "ckpt", "verify", "j"); code != 0 || !strings.Contains(out, "healthy") {
		t.Fatalf("verify after forged heartbeats: exit %d\n%s%s", code, out, errOut)
	}
}
