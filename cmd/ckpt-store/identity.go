package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// identityFile is the store's identity key in its --dir: an Ed25519 seed,
// hex, mode 0600. The manager binds the store's ID to its public key at
// the first heartbeat and refuses heartbeats for the ID signed by any
// other key, so no one else holding the cluster token can take the
// store's place (docs/security.md, F8).
const identityFile = "identity.key"

// loadIdentity reads the store's identity key from dir, making one on
// the store's first start.
func loadIdentity(dir string) (ed25519.PrivateKey, error) {
	path := filepath.Join(dir, identityFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		seed, derr := hex.DecodeString(strings.TrimSpace(string(b)))
		if derr != nil || len(seed) != ed25519.SeedSize {
			return nil, fmt.Errorf("identity key %s is damaged (want %d hex digits): the manager knows this store by it, "+
				"so a new one would be refused; restore the file from a backup, or start the store with an empty --dir to join as a new store",
				path, 2*ed25519.SeedSize)
		}
		return ed25519.NewKeyFromSeed(seed), nil
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("identity key: %w", err)
	}
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return nil, fmt.Errorf("identity key: %w", err)
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("identity key: %w", err)
	}
	_, err = f.WriteString(hex.EncodeToString(seed) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("identity key: writing %s: %w", path, err)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
