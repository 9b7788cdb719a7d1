package client

import (
	"bytes"
	"context"
	"testing"

	"github.com/ckptio/ckptio/storage/erasure"
)

// BenchmarkWriteRedundancy compares the client's CPU cost of writing
// 16 MiB as 2 replicas and as rs:4+2 to memory stores (no network):
// what erasure coding adds on the writer.
func BenchmarkWriteRedundancy(b *testing.B) {
	data := randBytes(1, 16<<20)
	for _, c := range []struct {
		name string
		opts WriterOptions
	}{
		{"replicas=2", WriterOptions{Replicas: 2}},
		{"rs:4+2", WriterOptions{Redundancy: erasure.Scheme{Data: 4, Parity: 2}}},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for range b.N {
				targets, _ := memTargets(6, 0)
				w, err := NewWriter(targets, c.opts)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := w.WriteObject(context.Background(), "o", -1, bytes.NewReader(data)); err != nil {
					b.Fatal(err)
				}
				if _, err := w.Close(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
