package wire

import (
	"bytes"
	"context"
	"slices"
	"testing"

	"github.com/ckptio/ckptio/storage"
)

func FuzzReadFrame(f *testing.F) {
	h := hashOf("x")
	seeds := [][]byte{
		nil,
		encode(f, 1, OpPing, StatusOK),
		encode(f, 2, OpPutBlock, StatusOK, h[:], []byte("x")),
		encode(f, 3, OpGetBlock, StatusOK, h[:]),
		encode(f, 4, OpHas, StatusOK, h[:], h[:]),
		encode(f, 5, OpDelete, StatusOK, make([]byte, 8), h[:]),
		encode(f, 5, OpDelete, StatusOK, []byte{0x17, 0x9a, 0, 0, 0, 0, 0, 1}, h[:], h[:]),
		encode(f, 8, OpList, StatusOK, EncodeList(h, 64)),
		encode(f, 8, OpList, StatusOK, h[:], h[:]),
		encode(f, 6, OpStat, StatusOK, []byte(`{"id":"a","used":1}`)),
		encode(f, 7, OpGetBlock, StatusNotFound, []byte("not found")),
		// Announces 2^64-1 bytes.
		{0xCB, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 1, 2, 0},
		// Announces 100 GiB.
		{0xCB, 2, 0, 0, 0, 0x19, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 0},
		// Announces 16 MiB, sends 3 bytes.
		{0xCB, 2, 0, 0, 0, 0, 0x01, 0x00, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 1, 2, 0, 1, 2, 3},
		// A version 1 header.
		{0xCB, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 0},
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		fr, err := ReadFrame(bytes.NewReader(in), 0)
		if err != nil {
			return
		}
		if len(fr.Payload) != int(fr.Length) || HeaderSize+len(fr.Payload) > len(in) {
			t.Fatalf("payload %d bytes, header says %d, input %d", len(fr.Payload), fr.Length, len(in))
		}
		if got := encode(t, fr.ID, fr.Op, fr.Status, fr.Payload); !bytes.Equal(got, in[:len(got)]) {
			t.Fatal("re-encoding differs from the input")
		}
		// Every decoder must survive any payload.
		_, _, _ = DecodePut(fr.Payload)
		_, _ = DecodeCreated(fr.Payload)
		_, _ = DecodeHash(fr.Payload)
		if hs, err := DecodeHashes(fr.Payload); err == nil {
			if p, err := EncodeHashes(hs); err != nil || !bytes.Equal(p, fr.Payload) {
				t.Fatal("hash list does not round trip")
			}
		}
		_, _ = DecodeHas(fr.Payload, len(fr.Payload))
		if ns, hs, err := DecodeDelete(fr.Payload); err == nil {
			if p, err := EncodeDelete(ns, hs); err != nil || !bytes.Equal(p, fr.Payload) {
				t.Fatal("delete request does not round trip")
			}
		}
		if after, limit, err := DecodeList(fr.Payload); err == nil {
			if limit < 0 || limit > MaxBatch {
				t.Fatalf("list limit %d", limit)
			}
			_ = EncodeList(after, limit)
		}
		if hs, err := DecodeListReply(fr.Payload, storage.Hash{}, MaxBatch); err == nil {
			for i := 1; i < len(hs); i++ {
				if bytes.Compare(hs[i-1][:], hs[i][:]) >= 0 {
					t.Fatal("list reply accepted out of order")
				}
			}
		}
		_, _ = DecodeFreed(fr.Payload)
		_, _ = DecodeStat(fr.Payload)
		if err := ErrorFor(fr.Status, fr.Payload); err != nil {
			_ = err.Error()
		}
	})
}

func FuzzHandshake(f *testing.F) {
	f.Add([]byte(nil))
	f.Add(encode(f, 0, OpHello, StatusOK, make([]byte, NonceSize)))
	f.Add(append(encode(f, 0, OpHello, StatusOK, make([]byte, NonceSize)),
		encode(f, 0, OpHello, StatusOK, make([]byte, MACSize))...))
	f.Add(encode(f, 0, OpHello, StatusOK, make([]byte, NonceSize+MACSize)))
	f.Add(encode(f, 0, OpHello, StatusUnauthorized, []byte(WrongTokenMessage)))
	f.Add(encode(f, 0, OpHello, StatusBusy, []byte("busy")))
	token := []byte("fuzz-token")
	f.Fuzz(func(t *testing.T, in []byte) {
		ctx := context.Background()
		// Random bytes cannot carry a valid proof of the token.
		if err := ServerHandshake(ctx, rwFrom(in), token); err == nil {
			t.Fatal("server accepted a client from random bytes")
		}
		if err := ClientHandshake(ctx, rwFrom(in), token); err == nil {
			t.Fatal("client accepted a server from random bytes")
		}
	})
}

// PutBlocks requests: decoding never panics, and what decodes encodes back
// to the same bytes.
func FuzzDecodePutBlocks(f *testing.F) {
	h := hashOf("x")
	head, _ := EncodePutBlocksHead([]PutItem{{Hash: h, Data: []byte("x")}, {Hash: h, Data: nil}})
	f.Add(append(head, 'x'))
	f.Add(head)
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, p []byte) {
		items, err := DecodePutBlocks(p)
		if err != nil {
			return
		}
		head, err := EncodePutBlocksHead(items)
		if err != nil {
			t.Fatalf("decoded batch does not encode: %v", err)
		}
		out := head
		for _, it := range items {
			out = append(out, it.Data...)
		}
		if !bytes.Equal(out, p) {
			t.Fatalf("re-encoded %x, decoded from %x", out, p)
		}
	})
}

// PutBlocks replies: decoding never panics, and what decodes encodes to
// a reply that decodes the same (messages come back as valid UTF-8).
func FuzzDecodePutBlocksReply(f *testing.F) {
	f.Add(EncodePutBlocksReply([]PutOutcome{{Created: true}, {Status: StatusQuotaExceeded, Message: "full"}}), 2)
	f.Add([]byte{0, 1, 0, 0}, 1)
	f.Add([]byte{0, 2, 0, 0}, 1)
	f.Add([]byte{3, 0, 0xff, 0xff}, 1)
	f.Fuzz(func(t *testing.T, p []byte, n int) {
		if n < 0 || n > MaxPutBatch {
			return
		}
		outs, err := DecodePutBlocksReply(p, n)
		if err != nil {
			return
		}
		again, err := DecodePutBlocksReply(EncodePutBlocksReply(outs), n)
		if err != nil || !slices.Equal(again, outs) {
			t.Fatalf("decoded %+v from %x; re-encoded, %+v, %v", outs, p, again, err)
		}
	})
}
