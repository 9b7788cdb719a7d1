package wire

import (
	"bytes"
	"testing"
)

// FuzzRecordPayloads feeds arbitrary bytes to every catalog-record
// decoder: none may panic, and whatever one accepts must encode back to the
// same bytes.
func FuzzRecordPayloads(f *testing.F) {
	put, _ := EncodePutRecord("v/job/00000000000000000001", []byte("record"))
	names, _ := EncodeRecordNames([]string{"j/a", "j/b", "v/a/1"})
	f.Add(put)
	f.Add(names)
	f.Add(EncodeListRecords("j/a", 10))
	f.Add([]byte{3, 'a', '/', '.'})
	f.Add([]byte{0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		if name, data, err := DecodePutRecord(in); err == nil {
			back, err := EncodePutRecord(name, data)
			if err != nil || !bytes.Equal(back, in) {
				t.Fatalf("put-record %q: re-encoded %q, %v", in, back, err)
			}
		}
		if name, err := DecodeRecordName(in); err == nil && name != string(in) {
			t.Fatalf("record name %q decoded as %q", in, name)
		}
		if after, limit, err := DecodeListRecords(in); err == nil {
			if limit > MaxRecordList {
				t.Fatalf("list-records limit %d above %d", limit, MaxRecordList)
			}
			if after != string(in[4:]) {
				t.Fatalf("list-records cursor %q from %q", after, in)
			}
		}
		if ns, err := DecodeRecordNames(in, "", MaxRecordList); err == nil {
			back, err := EncodeRecordNames(ns)
			if err != nil || !bytes.Equal(back, in) {
				t.Fatalf("record names %q: re-encoded %q, %v", in, back, err)
			}
		}
	})
}

func TestRecordNames(t *testing.T) {
	for _, ok := range []string{"v/job/1", "j/a.b_c-d", "x", "v/a..b/1"} {
		if err := ValidRecordName(ok); err != nil {
			t.Errorf("ValidRecordName(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", "/abs", "a/../b", "a//b", "a/", ".", "a b", "a\x00", string(make([]byte, 256))} {
		if err := ValidRecordName(bad); err == nil {
			t.Errorf("ValidRecordName(%q) = nil, want an error", bad)
		}
	}
	if _, err := DecodeRecordNames([]byte{1, 'b', 1, 'a'}, "", 10); err == nil {
		t.Error("a list-records reply out of order was accepted")
	}
	if _, err := DecodeRecordNames([]byte{1, 'a', 1, 'b'}, "", 1); err == nil {
		t.Error("a list-records reply longer than asked was accepted")
	}
}
