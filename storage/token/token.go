// Package token finds the cluster token, the shared secret that every store,
// the manager and every client prove they know (by HMAC; the token itself
// never crosses the wire).
//
// Lookup order, first match wins: an explicit file (--token-file), the
// CKPT_TOKEN environment variable (the token itself), the CKPT_TOKEN_FILE
// environment variable (a file holding it). A token file holds one line;
// surrounding whitespace is ignored.
package token

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ErrNoToken: no token was given anywhere.
var ErrNoToken = errors.New("token: no cluster token: set CKPT_TOKEN, CKPT_TOKEN_FILE or --token-file")

// MinLength is the shortest token accepted, in bytes.
const MinLength = 16

// Resolve returns the token from file (if non-empty), else CKPT_TOKEN, else
// the file named by CKPT_TOKEN_FILE.
func Resolve(file string) ([]byte, error) {
	if file != "" {
		return ReadFile(file)
	}
	if t := strings.TrimSpace(os.Getenv("CKPT_TOKEN")); t != "" {
		return check([]byte(t), "CKPT_TOKEN")
	}
	if f := os.Getenv("CKPT_TOKEN_FILE"); f != "" {
		return ReadFile(f)
	}
	return nil, ErrNoToken
}

// ReadFile reads a token file.
func ReadFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("token: reading token file: %w", err)
	}
	return check([]byte(strings.TrimSpace(string(b))), path)
}

func check(t []byte, from string) ([]byte, error) {
	if len(t) < MinLength {
		return nil, fmt.Errorf("token: token from %s is %d bytes; want at least %d (make one with: head -c 32 /dev/urandom | xxd -p -c 64)", from, len(t), MinLength)
	}
	return t, nil
}

// New returns a fresh random token (64 hex digits).
func New() ([]byte, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	return []byte(hex.EncodeToString(b)), nil
}

// Ensure returns the token kept in path, creating the file with a fresh
// token (mode 0600, written durably) when it does not exist.
func Ensure(path string) ([]byte, error) {
	if t, err := ReadFile(path); err == nil {
		return t, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	t, err := New()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	_, err = f.Write(append(t, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("token: writing %s: %w", path, err)
	}
	return t, nil
}
