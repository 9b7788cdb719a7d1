package codec

import (
	"bytes"
	"testing"

	"github.com/ckptio/ckptio/storage/manifest"
)

// FuzzDecode feeds Decode arbitrary lz4 blocks and lengths: it must return
// exactly length bytes or an error, and never panic. Each input is also
// encoded and decoded back, to check the round trip on arbitrary bytes.
func FuzzDecode(f *testing.F) {
	for i, k := range dataKinds {
		src := k.gen(uint64(i), 300)
		stored, _ := Encode(nil, src)
		f.Add(stored, uint32(len(src)))
	}
	f.Add([]byte{}, uint32(0))
	f.Add([]byte{0x1f, 0x61, 0x01, 0x00, 0x50, 0x61, 0x61, 0x61, 0x61, 0x61}, uint32(24))
	f.Fuzz(func(t *testing.T, stored []byte, length uint32) {
		n := int(length % (1 << 20))
		got, err := Decode(nil, manifest.CodecLZ4, stored, n)
		if err == nil && len(got) != n {
			t.Fatalf("Decode returned %d bytes without error, want %d", len(got), n)
		}
		// A dst of the wrong size or holding garbage changes nothing.
		again, err2 := Decode(bytes.Repeat([]byte{0xaa}, 7), manifest.CodecLZ4, stored, n)
		if (err == nil) != (err2 == nil) || !bytes.Equal(got, again) {
			t.Fatalf("Decode depends on dst: %v / %v", err, err2)
		}

		enc, c := Encode(nil, stored)
		dec, err := Decode(nil, c, enc, len(stored))
		if err != nil || !bytes.Equal(dec, stored) {
			t.Fatalf("round trip of %d bytes (%s): %v", len(stored), c, err)
		}
	})
}
