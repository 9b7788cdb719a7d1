package crypt

import (
	"bytes"
	"testing"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/manifest"
)

// FuzzDecode hands Decode arbitrary stored bytes for a block of either
// encrypted codec: it must return exactly the block's length or an error,
// never panic, and never change stored. Each input is also sealed and
// opened back.
func FuzzDecode(f *testing.F) {
	k := testKey(f, 7)
	for _, data := range [][]byte{text(300), random(1, 300), {}, []byte("x")} {
		stored, _ := encode(f, k, data, true)
		f.Add(stored, uint32(len(data)), false, data)
		raw, _ := encode(f, k, data, false)
		f.Add(raw, uint32(len(data)), true, data)
	}
	f.Add([]byte{formatV1}, uint32(0), true, []byte{})
	f.Add(bytes.Repeat([]byte{2}, Overhead), uint32(0), true, []byte{})
	f.Fuzz(func(t *testing.T, stored []byte, length uint32, raw bool, plain []byte) {
		c := manifest.CodecLZ4AESGCM
		if raw {
			c = manifest.CodecAESGCM
		}
		n := int(length % (1 << 20))
		b := manifest.Block{Object: "f", Rank: -1, Length: int64(n), Hash: storage.Sum(plain), Codec: c}
		before := bytes.Clone(stored)
		got, err := k.Decode(b, stored)
		if err == nil && len(got) != n {
			t.Fatalf("Decode returned %d bytes without error, want %d", len(got), n)
		}
		if !bytes.Equal(stored, before) {
			t.Fatal("Decode changed the stored bytes")
		}

		enc, ec := encode(t, k, plain, true)
		b = manifest.Block{Object: "f", Rank: -1, Length: int64(len(plain)), Hash: storage.Sum(plain), Codec: ec}
		dec, err := k.Decode(b, enc)
		if err != nil || !bytes.Equal(dec, plain) {
			t.Fatalf("round trip of %d bytes (%s): %v", len(plain), ec, err)
		}
	})
}
