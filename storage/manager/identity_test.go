package manager

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/ckptio/ckptio/storage/catalog"
)

func newKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func signed(id, addr string, k ed25519.PrivateKey) catalog.Heartbeat {
	hb := catalog.Heartbeat{ID: id, Addr: addr}
	catalog.SignHeartbeat(&hb, k)
	return hb
}

func addrOf(t *testing.T, m *Manager, id string) string {
	t.Helper()
	for _, s := range m.Stores() {
		if s.ID == id {
			return s.Addr
		}
	}
	t.Fatalf("store %s not listed", id)
	return ""
}

// F8: a store's ID is bound to the key of its first signed heartbeat; a
// heartbeat for that ID with another key, no key or a forged signature is
// refused and the store's address stays its own, also after a restart of
// the manager.
func TestStoreIdentityCannotBeTakenOver(t *testing.T) {
	dir := t.TempDir()
	clock := newClock()
	m := open(t, dir, clock)
	real, evil := newKey(t), newKey(t)
	if err := m.Heartbeat(signed("s1", "10.0.0.1:7000", real)); err != nil {
		t.Fatal(err)
	}
	if err := m.Heartbeat(signed("s1", "10.0.0.1:7001", real)); err != nil {
		t.Fatalf("the store moving to another port: %v", err)
	}
	forged := signed("s1", "10.6.6.6:7000", real)
	forged.Addr = "10.6.6.6:7001" // signature of another address
	for name, hb := range map[string]catalog.Heartbeat{
		"another key": signed("s1", "10.6.6.6:7000", evil),
		"no key":      {ID: "s1", Addr: "10.6.6.6:7000"},
		"forged":      forged,
	} {
		err := m.Heartbeat(hb)
		if !errors.Is(err, catalog.ErrConflict) && !errors.Is(err, catalog.ErrInvalid) {
			t.Fatalf("%s: heartbeat err = %v, want refused", name, err)
		}
		if a := addrOf(t, m, "s1"); a != "10.0.0.1:7001" {
			t.Fatalf("%s: store s1 now at %s", name, a)
		}
	}
	for _, s := range m.Stores() {
		if len(s.Signature) != 0 {
			t.Fatal("a store's signature is kept and listed")
		}
	}
	m.Close()
	m2 := open(t, dir, clock)
	if err := m2.Heartbeat(signed("s1", "10.6.6.6:7000", evil)); !errors.Is(err, catalog.ErrConflict) {
		t.Fatalf("after a manager restart: err = %v, want ErrConflict", err)
	}
	if err := m2.Heartbeat(signed("s1", "10.0.0.1:7001", real)); err != nil {
		t.Fatalf("the real store after a manager restart: %v", err)
	}
}

// A store of a build before identities (no key) is taken while unbound,
// and bound by its first signed heartbeat.
func TestUnsignedStoreBoundByItsFirstSignedHeartbeat(t *testing.T) {
	m := open(t, t.TempDir(), newClock())
	if err := m.Heartbeat(catalog.Heartbeat{ID: "old", Addr: "10.0.0.2:7000"}); err != nil {
		t.Fatal(err)
	}
	k := newKey(t)
	if err := m.Heartbeat(signed("old", "10.0.0.2:7000", k)); err != nil {
		t.Fatal(err)
	}
	if err := m.Heartbeat(catalog.Heartbeat{ID: "old", Addr: "10.0.0.2:7000"}); !errors.Is(err, catalog.ErrConflict) {
		t.Fatalf("unsigned heartbeat of a bound store: err = %v, want ErrConflict", err)
	}
}
