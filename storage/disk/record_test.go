package disk

import (
	"bytes"
	"testing"

	"github.com/ckptio/ckptio/storage"
)

func TestRecordRoundTrip(t *testing.T) {
	data := []byte("block bytes")
	for _, r := range []recHeader{
		{kind: recPut, length: uint32(len(data)), hash: storage.Sum(data), dcrc: crc32c(data)},
		{kind: recDel, tpack: 7, toff: 1 << 40, hash: storage.Sum(data)},
	} {
		b := make([]byte, recHeaderSize)
		r.marshal(b)
		got, err := parseHeader(b)
		if err != nil || got != r {
			t.Fatalf("round trip of %+v: %+v, %v", r, got, err)
		}
		if r.kind == recPut {
			if err := got.checkData(data); err != nil {
				t.Fatal(err)
			}
			if err := got.checkData(bytes.ToUpper(data)); err == nil {
				t.Fatal("changed data passed its checksum")
			}
		}
		for i := range b {
			bad := bytes.Clone(b)
			bad[i] ^= 1
			if i < 60 { // bytes 60..64 are the data CRC, checked with the data
				if _, err := parseHeader(bad); err == nil {
					t.Fatalf("header with byte %d flipped parsed", i)
				}
			}
		}
	}
}

// FuzzParseHeader: no input makes parseHeader panic, and what it accepts
// marshals back to the same bytes.
func FuzzParseHeader(f *testing.F) {
	b := make([]byte, recHeaderSize)
	(&recHeader{kind: recPut, length: 5, hash: storage.Sum([]byte("hello")), dcrc: crc32c([]byte("hello"))}).marshal(b)
	f.Add(b)
	d := make([]byte, recHeaderSize)
	(&recHeader{kind: recDel, tpack: 1, toff: 64}).marshal(d)
	f.Add(d)
	f.Add([]byte("CKR1"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := parseHeader(in)
		if err != nil {
			return
		}
		out := make([]byte, recHeaderSize)
		r.marshal(out)
		if !bytes.Equal(out, in[:recHeaderSize]) {
			t.Fatalf("accepted %x, marshals to %x", in[:recHeaderSize], out)
		}
		_ = r.checkData(in[recHeaderSize:])
	})
}
