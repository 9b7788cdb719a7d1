package chunk

import (
	"fmt"
	"strings"

	"github.com/ckptio/ckptio/storage"
)

// DefaultSize is the fixed block size, and the CDC average, that a job uses
// when it sets none. Chosen by BenchmarkBlockSize; docs/incremental.md has
// the figures.
const DefaultSize = 64 << 10

// Chunker cuts bytes into chunks. Implementations hold no state between
// calls and are safe for concurrent use by many goroutines.
type Chunker interface {
	// Cut appends to dst the lengths of the chunks data is cut into, in
	// order, and returns the extended slice. The lengths sum to len(data);
	// empty data adds nothing. Cut neither copies nor retains data.
	Cut(data []byte, dst []int) []int

	// First returns the length of the chunk that begins at data[0]. data
	// must hold at least Max() bytes, or all the bytes left in the stream:
	// the result depends on no byte beyond that. It is 0 only for empty
	// data.
	First(data []byte) int

	// Min and Max bound the length of every chunk but the last of a stream,
	// which is at least 1 byte and at most Max.
	Min() int
	Max() int
}

// Kind names a chunking algorithm, as written in a job's configuration and
// in CKPT_CHUNKING.
type Kind string

const (
	KindFixed Kind = "fixed" // blocks of Options.Size bytes
	KindCDC   Kind = "cdc"   // content-defined (FastCDC), about Options.Size on average
)

// ParseKind parses "fixed" or "cdc", ignoring case and surrounding spaces.
// The empty string means the default, KindFixed.
func ParseKind(s string) (Kind, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", string(KindFixed):
		return KindFixed, nil
	case string(KindCDC):
		return KindCDC, nil
	}
	return "", fmt.Errorf("chunk: unknown chunking %q: want %q (fixed-size blocks) or %q (content-defined chunking)", s, KindFixed, KindCDC)
}

// Options choose a Chunker. The zero value means fixed blocks of
// DefaultSize bytes.
type Options struct {
	// Kind is the algorithm; "" means KindFixed.
	Kind Kind
	// Size is the fixed block size, or the average CDC chunk length;
	// 0 means DefaultSize.
	Size int
	// Min and Max bound CDC chunk lengths; 0 means Size/4 and Size*4 (at
	// most storage.MaxBlockSize). Fixed chunking ignores them.
	Min, Max int
}

// New returns the Chunker the options describe, or an error naming the
// option that is out of range.
func (o Options) New() (Chunker, error) {
	size := o.Size
	if size == 0 {
		size = DefaultSize
	}
	switch o.Kind {
	case "", KindFixed:
		return Fixed(size)
	case KindCDC:
		lo, hi := o.Min, o.Max
		if lo == 0 {
			lo = max(1, size/4)
		}
		if hi == 0 {
			hi = min(size*4, storage.MaxBlockSize)
		}
		return CDC(lo, size, hi)
	}
	return nil, fmt.Errorf("chunk: unknown chunking %q: want %q or %q", o.Kind, KindFixed, KindCDC)
}
