package crypt

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/codec"
	"github.com/ckptio/ckptio/storage/manifest"
)

// testKey returns a fixed key made from seed.
func testKey(t testing.TB, seed byte) *Key {
	t.Helper()
	b := make([]byte, KeySize)
	for i := range b {
		b[i] = seed + byte(i)
	}
	k, err := ParseKey([]byte(hex.EncodeToString(b)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func random(seed int64, n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

func text(n int) []byte {
	line := []byte("step 1234: residual 1.0e-06, dt 0.001, all ranks in sync\n")
	return bytes.Repeat(line, n/len(line)+1)[:n]
}

// block is the manifest row a writer records for data stored as stored.
func block(data, stored []byte, c manifest.Codec) manifest.Block {
	return manifest.Block{Object: "state.bin", Rank: -1, Offset: 4096, Length: int64(len(data)),
		Hash: storage.Sum(data), Key: storage.Sum(stored), StoredLength: int64(len(stored)), Codec: c}
}

// encode stores data as a client.Writer with k does: lz4-compressed when
// compress is set and that saves space, then sealed.
func encode(t testing.TB, k *Key, data []byte, compress bool) ([]byte, manifest.Codec) {
	t.Helper()
	msg, c := data, manifest.CodecRaw
	if compress {
		msg, c = codec.Encode(nil, data)
	}
	stored, sc, err := k.Seal(storage.Sum(data), c, msg)
	if err != nil {
		t.Fatal(err)
	}
	return stored, sc
}

func TestRoundTrip(t *testing.T) {
	k := testKey(t, 1)
	for _, tc := range []struct {
		name     string
		data     []byte
		compress bool
		want     manifest.Codec
	}{
		{"text", text(100_000), true, manifest.CodecLZ4AESGCM},
		{"zeros", make([]byte, 65536), true, manifest.CodecLZ4AESGCM},
		{"random", random(1, 65536), true, manifest.CodecAESGCM},
		{"small", []byte("x"), true, manifest.CodecAESGCM},
		{"text, no compression", text(100_000), false, manifest.CodecAESGCM},
		{"max block", text(storage.MaxBlockSize), true, manifest.CodecLZ4AESGCM},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stored, c := encode(t, k, tc.data, tc.compress)
			if c != tc.want {
				t.Fatalf("codec %q, want %q", c, tc.want)
			}
			if c == manifest.CodecAESGCM && len(stored) != len(tc.data)+Overhead {
				t.Fatalf("%d stored bytes for %d: want %d of overhead", len(stored), len(tc.data), Overhead)
			}
			b := block(tc.data, stored, c)
			if err := (&manifest.Manifest{Job: "j", Blocks: []manifest.Block{{Object: "a", Length: b.Length, StoredLength: b.StoredLength, Codec: c}}}).Validate(); err != nil {
				t.Fatalf("manifest with codec %q: %v", c, err)
			}
			got, err := k.Decode(b, stored)
			if err != nil || !bytes.Equal(got, tc.data) {
				t.Fatalf("round trip: %v", err)
			}
		})
	}
}

func TestConvergent(t *testing.T) {
	k1, k2 := testKey(t, 1), testKey(t, 2)
	data := text(65536)
	a, _ := encode(t, k1, data, true)
	b, _ := encode(t, k1, bytes.Clone(data), true)
	if !bytes.Equal(a, b) {
		t.Fatal("the same block under the same key is stored as different bytes: stores cannot dedupe it")
	}
	if c, _ := encode(t, k2, data, true); bytes.Equal(a, c) {
		t.Fatal("two keys store a block as the same bytes")
	}
	other := bytes.Clone(data)
	other[100] ^= 1
	if d, _ := encode(t, k1, other, true); bytes.Equal(a[:1+nonceSize], d[:1+nonceSize]) {
		t.Fatal("two blocks share a nonce")
	}
	// The raw and lz4 forms of one block are two messages under one block
	// key: they must not share a nonce.
	raw, _ := encode(t, k1, data, false)
	if bytes.Equal(a[1:1+nonceSize], raw[1:1+nonceSize]) {
		t.Fatal("the raw and lz4 forms of a block share a nonce")
	}
}

func TestSealCodecs(t *testing.T) {
	data := []byte("abc")
	if got, c, err := (*Key)(nil).Seal(storage.Sum(data), manifest.CodecRaw, data); err != nil || c != manifest.CodecRaw || &got[0] != &data[0] {
		t.Fatalf("nil key: %q, %v; want data itself, raw", c, err)
	}
	if _, _, err := testKey(t, 1).Seal(storage.Sum(data), manifest.CodecAESGCM, data); err == nil {
		t.Fatal("sealed a block twice")
	}
}

func TestNoPlaintextStored(t *testing.T) {
	k := testKey(t, 1)
	secret := []byte("TOP-SECRET-PATTERN-0123456789")
	data := bytes.Repeat(secret, 3000)
	for _, compress := range []bool{true, false} {
		stored, c := encode(t, k, data, compress)
		if bytes.Contains(stored, secret[:8]) {
			t.Fatalf("%s: stored bytes contain the plaintext", c)
		}
	}
}

func TestWrongKeyOrTampering(t *testing.T) {
	k := testKey(t, 1)
	data := text(20000)
	stored, c := encode(t, k, data, true)
	b := block(data, stored, c)
	check := func(name string, k *Key, b manifest.Block, stored []byte, want error) {
		t.Helper()
		_, err := k.Decode(b, stored)
		if !errors.Is(err, want) {
			t.Fatalf("%s: %v, want %v", name, err, want)
		}
		if !strings.Contains(err.Error(), `"state.bin" offset 4096`) {
			t.Fatalf("%s: error does not name the block: %v", name, err)
		}
	}
	check("wrong key", testKey(t, 2), b, stored, ErrDecrypt)
	if _, err := testKey(t, 2).Decode(b, stored); !strings.Contains(err.Error(), "wrong encryption key or corrupt block") {
		t.Fatalf("wrong key: %v", err)
	}
	check("no key", nil, b, stored, ErrNoKey)
	for _, i := range []int{0, 1, 1 + nonceSize, len(stored) / 2, len(stored) - 1} {
		bad := bytes.Clone(stored)
		bad[i] ^= 0x40
		check(fmt.Sprintf("byte %d flipped", i), k, b, bad, ErrDecrypt)
	}
	check("truncated", k, b, stored[:Overhead-1], ErrDecrypt)
	other := b
	other.Hash[0] ^= 1
	check("another block's hash", k, other, stored, ErrDecrypt)
	other = b
	other.Codec = manifest.CodecAESGCM
	check("read as the other codec", k, other, stored, ErrDecrypt)

	// Without a key, an unencrypted block still reads.
	plain, pc := codec.Encode(nil, data)
	if got, err := (*Key)(nil).Decode(block(data, plain, pc), plain); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("unencrypted block without a key: %v", err)
	}
	// And codec.Decode alone says the block is encrypted.
	if _, err := codec.Decode(nil, c, stored, len(data)); !errors.Is(err, codec.ErrEncrypted) {
		t.Fatalf("codec.Decode of a sealed block: %v", err)
	}
}

// TestGolden pins the sealed format: a change here makes every encrypted
// version unreadable, or stops new blocks from deduplicating with old ones.
// The values were checked against an independent implementation of the
// format in doc.go (Python's hmac and cryptography's AESGCM).
func TestGolden(t *testing.T) {
	k := testKey(t, 0)
	if fp := k.Fingerprint(); fp != goldenFingerprint {
		t.Errorf("fingerprint %s, want %s", fp, goldenFingerprint)
	}
	stored, c := encode(t, k, []byte("ckptio"), false)
	if got := hex.EncodeToString(stored); c != manifest.CodecAESGCM || got != goldenSealed {
		t.Errorf("sealed %q: %s, want %s", c, got, goldenSealed)
	}
}

const (
	goldenFingerprint = "31e466b1520db993"
	goldenSealed      = "01c4501e1a5528db742ea959cf32ef7b46bd70fa7fff14def29d6f919330b96b85710b"
)

func TestKeyFiles(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "job.key")
	k, err := NewKeyFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", st.Mode().Perm())
	}
	if _, err := NewKeyFile(p); err == nil || !strings.Contains(err.Error(), "exists already") {
		t.Fatalf("second NewKeyFile: %v", err)
	}
	got, err := ReadKeyFile(p)
	if err != nil || got.Fingerprint() != k.Fingerprint() || got.Hex() != k.Hex() {
		t.Fatalf("ReadKeyFile: %v, %v", got, err)
	}
	if strings.Contains(k.String(), k.Hex()[:8]) {
		t.Fatal("String reveals the key")
	}

	// xxd -p output, wrapped at 60 digits, reads too.
	wrapped := filepath.Join(dir, "wrapped")
	os.WriteFile(wrapped, []byte(k.Hex()[:60]+"\n"+k.Hex()[60:]+"\n"), 0o600)
	if got, err := ReadKeyFile(wrapped); err != nil || got.Hex() != k.Hex() {
		t.Fatalf("wrapped key file: %v", err)
	}
	for _, bad := range []string{"", "abcd", k.Hex() + "00", strings.Repeat("zz", KeySize)} {
		if _, err := ParseKey([]byte(bad)); !errors.Is(err, ErrBadKey) {
			t.Errorf("ParseKey(%q): %v, want ErrBadKey", bad, err)
		}
	}

	t.Setenv(EnvKeyFile, "")
	if k, err := Resolve(""); k != nil || err != nil {
		t.Fatalf("Resolve with nothing set: %v, %v", k, err)
	}
	t.Setenv(EnvKeyFile, wrapped)
	if got, err := Resolve(""); err != nil || got.Hex() != k.Hex() {
		t.Fatalf("Resolve from %s: %v", EnvKeyFile, err)
	}
	if _, err := Resolve(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("Resolve of a missing file succeeded")
	}
}

func TestCheck(t *testing.T) {
	k1, k2 := testKey(t, 1), testKey(t, 2)
	m := &manifest.Manifest{Job: "heat", Version: 3, Meta: k1.AddMeta(nil)}
	if err := Check(m, k1); err != nil {
		t.Fatalf("right key: %v", err)
	}
	err := Check(m, nil)
	want := "version 3 of heat is encrypted with key " + k1.Fingerprint() + "; give it with --encrypt-key-file or CKPT_ENCRYPT_KEY_FILE"
	if !errors.Is(err, ErrNoKey) || err.Error() != want {
		t.Fatalf("no key: %v", err)
	}
	var ke *KeyError
	if err := Check(m, k2); !errors.Is(err, ErrDecrypt) || !errors.As(err, &ke) || ke.Got != k2.Fingerprint() {
		t.Fatalf("wrong key: %v", err)
	}
	plain := &manifest.Manifest{Job: "heat", Version: 2, Meta: map[string]string{"replicas": "2"}}
	if Check(plain, nil) != nil || Check(plain, k1) != nil {
		t.Fatal("an unencrypted version needs no key")
	}
	future := &manifest.Manifest{Job: "heat", Version: 4, Meta: map[string]string{catalog.MetaEncrypted: "xchacha"}}
	if err := Check(future, k1); err == nil || !strings.Contains(err.Error(), "does not know") {
		t.Fatalf("unknown scheme: %v", err)
	}

	if !SameKey(m.Meta, k1.AddMeta(map[string]string{"step": "9"})) || SameKey(m.Meta, k2.AddMeta(nil)) ||
		SameKey(m.Meta, nil) || !SameKey(plain.Meta, nil) {
		t.Fatal("SameKey")
	}
}
