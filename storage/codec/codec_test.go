package codec

import (
	"bytes"
	"errors"
	"sync"
	"testing"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/manifest"
)

var engines = []*engine{ccompatEngine, fastEngine}

func roundTrip(t *testing.T, e *engine, src []byte) manifest.Codec {
	t.Helper()
	stored, c := e.encode(make([]byte, 0, len(src)), src)
	switch c {
	case manifest.CodecRaw:
		if len(src) > 0 && &stored[0] != &src[0] {
			t.Fatalf("raw: stored is not src itself")
		}
	case manifest.CodecLZ4:
		if len(stored) > len(src)-len(src)/minSaving {
			t.Fatalf("lz4 kept for %d bytes from %d: saves under 1/%d", len(stored), len(src), minSaving)
		}
	default:
		t.Fatalf("codec %q", c)
	}
	got, err := Decode(nil, c, stored, len(src))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if !bytes.Equal(got, src) {
		t.Fatalf("round trip of %d bytes (%s) differs", len(src), c)
	}
	return c
}

func TestRoundTrip(t *testing.T) {
	for _, e := range engines {
		for _, k := range dataKinds {
			for _, n := range []int{0, 1, 63, 64, 65, 1000, 4096, 128 << 10, 1 << 20} {
				roundTrip(t, e, k.gen(uint64(n), n))
			}
		}
	}
}

func TestChoice(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			n := 256 << 10
			for _, tc := range []struct {
				data []byte
				want manifest.Codec
			}{
				{zeros(0, n), manifest.CodecLZ4},
				{text(1, n), manifest.CodecLZ4},
				{randomData(2, n), manifest.CodecRaw},
				{randomData(3, 100), manifest.CodecRaw},
				{zeros(0, minCompress-1), manifest.CodecRaw},
			} {
				if got := roundTrip(t, e, tc.data); got != tc.want {
					t.Errorf("%d bytes: codec %q, want %q", len(tc.data), got, tc.want)
				}
			}
		})
	}
}

func TestEncodeMaxBlock(t *testing.T) {
	src := text(9, storage.MaxBlockSize)
	if c := roundTrip(t, defaultEngine, src); c != manifest.CodecLZ4 {
		t.Fatalf("16 MiB of text stored %q", c)
	}
}

func TestEncodeSmallDst(t *testing.T) {
	src := zeros(0, 10000)
	stored, c := Encode(make([]byte, 10), src)
	if c != manifest.CodecLZ4 {
		t.Fatalf("codec %q", c)
	}
	if got, err := Decode(make([]byte, 5), c, stored, len(src)); err != nil || !bytes.Equal(got, src) {
		t.Fatalf("Decode: %v", err)
	}
}

func TestEncodeAllocs(t *testing.T) {
	src := text(1, 128<<10)
	dst := make([]byte, len(src))
	Encode(dst, src) // fill the pool
	if a := testing.AllocsPerRun(20, func() { Encode(dst, src) }); a > 0 && !raceEnabled {
		t.Errorf("Encode allocates %v times with a large enough dst", a)
	}
}

func TestConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			dst := make([]byte, 64<<10)
			var out []byte
			for i := range 20 {
				src := dataKinds[(g+i)%len(dataKinds)].gen(uint64(g*100+i), 64<<10)
				stored, c := Encode(dst, src)
				got, err := Decode(out, c, stored, len(src))
				if err != nil || !bytes.Equal(got, src) {
					t.Errorf("goroutine %d block %d: round trip failed: %v", g, i, err)
					return
				}
				out = got[:0]
			}
		})
	}
	wg.Wait()
}

func TestDecodeErrors(t *testing.T) {
	src := text(1, 10000)
	stored, c := Encode(nil, src)
	if c != manifest.CodecLZ4 {
		t.Fatalf("codec %q", c)
	}
	for _, tc := range []struct {
		name   string
		codec  manifest.Codec
		stored []byte
		length int
		want   error
	}{
		{"unknown codec", "zstd", stored, len(src), ErrUnknownCodec},
		{"encrypted", manifest.CodecAESGCM, stored, len(src), ErrEncrypted},
		{"compressed and encrypted", manifest.CodecLZ4AESGCM, stored, len(src), ErrEncrypted},
		{"raw too short", manifest.CodecRaw, src[:10], 11, ErrCorrupt},
		{"raw too long", manifest.CodecRaw, src[:10], 9, ErrCorrupt},
		{"empty codec with bytes", "", src[:10], 0, ErrCorrupt},
		{"negative length", manifest.CodecLZ4, stored, -1, ErrCorrupt},
		{"length over the block limit", manifest.CodecRaw, nil, storage.MaxBlockSize + 1, ErrCorrupt},
		{"lz4 truncated", manifest.CodecLZ4, stored[:len(stored)/2], len(src), ErrCorrupt},
		{"lz4 longer than length", manifest.CodecLZ4, stored, len(src) - 1, ErrCorrupt},
		{"lz4 shorter than length", manifest.CodecLZ4, stored, len(src) + 1, ErrCorrupt},
		{"lz4 empty", manifest.CodecLZ4, nil, 10, ErrCorrupt},
		{"lz4 garbage", manifest.CodecLZ4, []byte{0xff, 0xff, 0xff, 0x01}, 100, ErrCorrupt},
	} {
		_, err := Decode(nil, tc.codec, tc.stored, tc.length)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	for _, tc := range []struct {
		c      manifest.Codec
		stored []byte
	}{{"", nil}, {manifest.CodecRaw, nil}, {manifest.CodecLZ4, nil}, {manifest.CodecLZ4, []byte{0}}} {
		if got, err := Decode(nil, tc.c, tc.stored, 0); err != nil || len(got) != 0 {
			t.Errorf("Decode(%q, %v, 0) = %q, %v; want no bytes", tc.c, tc.stored, got, err)
		}
	}
	// FuzzDecode found that the lz4 decoder panics on a nil dst.
	if _, err := Decode(nil, manifest.CodecLZ4, []byte("000000000000000000"), 0); !errors.Is(err, ErrCorrupt) {
		t.Errorf("lz4 bytes for an empty block: %v, want ErrCorrupt", err)
	}
}
