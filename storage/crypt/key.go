package crypt

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// KeySize is the length of a job key in bytes.
const KeySize = 32

// EnvKeyFile names the environment variable that holds the key file's path.
const EnvKeyFile = "CKPT_ENCRYPT_KEY_FILE"

// makeKeyHint says how to make a key file, for error messages.
const makeKeyHint = "make one with 'ckpt put --encrypt-key-file F --new-key ...' or: head -c 32 /dev/urandom | xxd -p -c 64 > F"

// Key is a job's encryption key. A nil *Key means no encryption: its
// methods are safe to call and encrypt nothing. A Key is immutable and safe
// for concurrent use.
type Key struct {
	k  [KeySize]byte
	fp string
}

func newKey(b []byte) *Key {
	k := &Key{}
	copy(k.k[:], b)
	m := hmac.New(sha256.New, k.k[:])
	m.Write([]byte("ckptio-key-fingerprint"))
	k.fp = hex.EncodeToString(m.Sum(nil)[:8])
	return k
}

// NewKey returns a fresh random key.
func NewKey() (*Key, error) {
	b := make([]byte, KeySize)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("crypt: %w", err)
	}
	return newKey(b), nil
}

// ParseKey reads a key from its text form: 64 hex digits, whitespace
// anywhere ignored.
func ParseKey(text []byte) (*Key, error) {
	digits := strings.Join(strings.Fields(string(text)), "")
	if len(digits) != 2*KeySize {
		return nil, fmt.Errorf("%w: want %d hex digits (%d bytes), got %d characters", ErrBadKey, 2*KeySize, KeySize, len(digits))
	}
	b, err := hex.DecodeString(digits)
	if err != nil {
		return nil, fmt.Errorf("%w: not hex", ErrBadKey)
	}
	return newKey(b), nil
}

// ReadKeyFile reads a key file.
func ReadKeyFile(path string) (*Key, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("crypt: reading key file: %w", err)
	}
	k, err := ParseKey(b)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w; %s", path, err, makeKeyHint)
	}
	return k, nil
}

// Resolve returns the key in file if it is not empty, else the key in the
// file CKPT_ENCRYPT_KEY_FILE names, else nil: no encryption.
func Resolve(file string) (*Key, error) {
	if file == "" {
		file = os.Getenv(EnvKeyFile)
	}
	if file == "" {
		return nil, nil
	}
	return ReadKeyFile(file)
}

// NewKeyFile writes a fresh key to path, readable by its owner only, and
// returns it. It never replaces a file: losing a key loses every version
// written with it. The file is synced, and so is its directory.
func NewKeyFile(path string) (*Key, error) {
	k, err := NewKey()
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("crypt: key file %s exists already; not replacing it", path)
	}
	if err != nil {
		return nil, fmt.Errorf("crypt: %w", err)
	}
	_, err = f.WriteString(k.Hex() + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("crypt: writing key file %s: %w", path, err)
	}
	return k, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Fingerprint names the key without revealing it: 16 hex digits. "" for a
// nil key.
func (k *Key) Fingerprint() string {
	if k == nil {
		return ""
	}
	return k.fp
}

// Hex returns the key itself in its text form, for a key file or to hand
// it to another process. Treat the result as the key.
func (k *Key) Hex() string { return hex.EncodeToString(k.k[:]) }

// String names the key by its fingerprint, so that printing a Key by
// mistake does not reveal it.
func (k *Key) String() string {
	if k == nil {
		return "no key"
	}
	return "key " + k.fp
}
