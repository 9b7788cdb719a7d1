package crypt_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand"
	"strings"
	"sync"
	"testing"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/client"
	"github.com/ckptio/ckptio/storage/codec"
	"github.com/ckptio/ckptio/storage/crypt"
	"github.com/ckptio/ckptio/storage/manifest"
	"github.com/ckptio/ckptio/storage/version"
	"github.com/ckptio/ckptio/storage/version/versiontest"
)

// secret is a pattern the checkpoints below hold in clear; no store may
// hold it.
var secret = []byte("PATIENT-RECORD-7731-CONFIDENTIAL")

// objects returns a compressible object full of secret, a random one (kept
// raw under lz4's rule), and one with a block repeated.
func objects() map[string][]byte {
	random := make([]byte, 300_000)
	rand.New(rand.NewSource(1)).Read(random)
	copy(random[1000:], secret)
	rep := bytes.Repeat(random[:4096], 10)
	return map[string][]byte{
		"text.log":  bytes.Repeat(append(bytes.Clone(secret), " step 42 ok\n"...), 20_000),
		"field.bin": random,
		"rep.bin":   rep,
		"empty":     nil,
	}
}

type buf struct {
	mu sync.Mutex
	b  []byte
}

func (w *buf) WriteAt(p []byte, off int64) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if need := int(off) + len(p); need > len(w.b) {
		w.b = append(w.b, make([]byte, need-len(w.b))...)
	}
	copy(w.b[off:], p)
	return len(p), nil
}

// put writes objs as a version of job through the version layer, as ckpt
// put does, encrypting with key (nil = not).
func put(t *testing.T, c *versiontest.Cluster, job string, key *crypt.Key, compress bool, objs map[string][]byte) *manifest.Manifest {
	t.Helper()
	ctx := context.Background()
	opts := client.WriterOptions{BlockSize: 4096, Replicas: 2}
	if compress {
		opts.Encode = codec.Encode
	}
	if key != nil {
		opts.Seal = key.Seal
	}
	done, err := c.Job(job, opts).Write(ctx, version.Files, key.AddMeta(nil), func(w *version.Writer) error {
		for name, data := range objs {
			if _, err := w.WriteObject(ctx, name, -1, bytes.NewReader(data)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.Manifest(ctx, job, done.Version)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// get reads every object of m back with key.
func get(ctx context.Context, c *versiontest.Cluster, m *manifest.Manifest, key *crypt.Key) (map[string][]byte, error) {
	r := client.NewReader(c.Pool().Resolve, client.ReaderOptions{Decode: key.Decode})
	out := map[string][]byte{}
	for _, o := range m.Objects() {
		w := &buf{}
		if err := r.ReadObject(ctx, m.BlocksOf(o.Name, o.Rank), w); err != nil {
			return nil, err
		}
		out[o.Name] = w.b
	}
	return out, nil
}

func mustKey(t *testing.T) *crypt.Key {
	k, err := crypt.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// storedBytes returns every block the cluster's stores hold.
func storedBytes(t *testing.T, c *versiontest.Cluster) [][]byte {
	ctx := context.Background()
	var out [][]byte
	for _, s := range c.Mem {
		keys, err := s.List(ctx, storage.Hash{}, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range keys {
			b, err := s.Get(ctx, h)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, b)
		}
	}
	return out
}

func TestWriterReaderRoundTrip(t *testing.T) {
	ctx := context.Background()
	for _, compress := range []bool{true, false} {
		c := versiontest.New(3)
		key := mustKey(t)
		objs := objects()
		m := put(t, c, "job", key, compress, objs)
		codecs := map[manifest.Codec]int{}
		for _, b := range m.Blocks {
			codecs[b.Codec]++
			if b.Length > 0 && b.Key != storage.Sum(nil) && b.Hash == b.Key {
				t.Fatalf("block of %q at %d: key is the plaintext hash", b.Object, b.Offset)
			}
		}
		if compress && (codecs[manifest.CodecLZ4AESGCM] == 0 || codecs[manifest.CodecAESGCM] == 0) {
			t.Fatalf("codecs %v: want both lz4+aesgcm and aesgcm", codecs)
		}
		if !compress && codecs[manifest.CodecLZ4AESGCM] != 0 {
			t.Fatalf("codecs %v without compression", codecs)
		}
		if m.Meta[catalog.MetaEncrypted] != "aesgcm" || m.Meta[catalog.MetaFingerprint] != key.Fingerprint() {
			t.Fatalf("meta %v", m.Meta)
		}
		got, err := get(ctx, c, m, key)
		if err != nil {
			t.Fatal(err)
		}
		for name, want := range objs {
			if !bytes.Equal(got[name], want) {
				t.Fatalf("compress %v: %s differs after the round trip", compress, name)
			}
		}
		for _, b := range storedBytes(t, c) {
			if bytes.Contains(b, secret[:12]) {
				t.Fatalf("compress %v: a store holds the plaintext", compress)
			}
		}
	}
}

func TestDedupKeptWithTheSameKey(t *testing.T) {
	c := versiontest.New(3)
	key := mustKey(t)
	objs := objects()
	m1 := put(t, c, "job", key, true, objs)
	if m1.NewBytes == 0 {
		t.Fatal("first version stored nothing new")
	}
	// Within a version: rep.bin is one block ten times, stored once.
	keys := map[storage.Hash]bool{}
	for _, b := range m1.BlocksOf("rep.bin", -1) {
		keys[b.Key] = true
	}
	if len(keys) != 1 {
		t.Fatalf("rep.bin: %d distinct stored blocks, want 1", len(keys))
	}

	// The next version with the same key reuses everything.
	v2 := put(t, c, "job", key, true, objs)
	if v2.SentBytes != 0 || v2.NewBytes != 0 {
		t.Fatalf("second version, same key: sent %d, new %d; want nothing", v2.SentBytes, v2.NewBytes)
	}

	// A writer that does not reuse (another job, same key) still stores
	// the same bytes under the same keys: the stores deduplicate them.
	v3 := put(t, c, "other-job", key, true, objs)
	if v3.SentBytes == 0 || v3.NewBytes != 0 {
		t.Fatalf("same blocks sent again: sent %d, new %d; want sent > 0, new 0", v3.SentBytes, v3.NewBytes)
	}
}

func TestNoReuseAcrossKeys(t *testing.T) {
	ctx := context.Background()
	c := versiontest.New(3)
	k1, k2 := mustKey(t), mustKey(t)
	objs := objects()
	put(t, c, "job", k1, true, objs)

	// Another key: nothing is reused, and the new key reads it all.
	v2 := put(t, c, "job", k2, true, objs)
	if v2.NewBytes == 0 {
		t.Fatal("a version under another key reused blocks of the first")
	}
	if _, err := get(ctx, c, v2, k2); err != nil {
		t.Fatalf("reading with its own key: %v", err)
	}

	// No key: the version layer does not reuse encrypted blocks either.
	v3 := put(t, c, "job", nil, true, objs)
	if v3.NewBytes == 0 {
		t.Fatal("an unencrypted version reused encrypted blocks")
	}
	for _, b := range v3.Blocks {
		if b.Codec == manifest.CodecAESGCM || b.Codec == manifest.CodecLZ4AESGCM {
			t.Fatalf("unencrypted version holds an encrypted block of %q", b.Object)
		}
	}
	// And an encrypted version does not reuse its plaintext blocks. (The
	// stores hold its sealed blocks from version 2: they are sent again
	// but are not new.)
	v4 := put(t, c, "job", k2, true, objs)
	for _, b := range v4.Blocks {
		if b.Length > 0 && b.Codec != manifest.CodecAESGCM && b.Codec != manifest.CodecLZ4AESGCM {
			t.Fatalf("encrypted version holds a %s block of %q", b.Codec, b.Object)
		}
	}
	if v4.SentBytes == 0 || v4.NewBytes != 0 {
		t.Fatalf("back to key 2: sent %d, new %d; want sent > 0, new 0", v4.SentBytes, v4.NewBytes)
	}
}

func TestWrongKeyFailsNamingTheBlock(t *testing.T) {
	ctx := context.Background()
	c := versiontest.New(2)
	m := put(t, c, "job", mustKey(t), true, objects())
	_, err := get(ctx, c, m, mustKey(t))
	if !errors.Is(err, crypt.ErrDecrypt) || !strings.Contains(err.Error(), "wrong encryption key or corrupt block") ||
		!strings.Contains(err.Error(), "offset") {
		t.Fatalf("wrong key: %v", err)
	}
	if _, err := get(ctx, c, m, nil); !errors.Is(err, crypt.ErrNoKey) {
		t.Fatalf("no key: %v", err)
	}
	if err := crypt.Check(m, nil); !errors.Is(err, crypt.ErrNoKey) {
		t.Fatalf("Check without a key: %v", err)
	}
}
