package erasure

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/klauspost/reedsolomon"
)

// Bounds of a scheme. 32 shards of one block keep a manifest row small and
// are more stores than most desktop pools give one job.
const (
	MaxData   = 16
	MaxParity = 16
	MaxShards = 32
)

// ErrScheme is wrapped by every error about a scheme's text or bounds.
var ErrScheme = errors.New("erasure: invalid scheme")

// ErrTooFewShards is wrapped when fewer than K good shards of a block
// remain: the block is lost.
var ErrTooFewShards = errors.New("erasure: too few shards to reconstruct")

// Scheme is a Reed-Solomon code of Data data shards and Parity parity
// shards. The zero Scheme means no erasure coding (replicas).
type Scheme struct {
	Data, Parity int
}

// Parse reads "rs:K+M".
func Parse(s string) (Scheme, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(s), "rs:")
	if !ok {
		return Scheme{}, fmt.Errorf("%w: %q: want rs:K+M, for example rs:4+2 (4 data and 2 parity shards on 6 stores)", ErrScheme, s)
	}
	ks, ms, ok := strings.Cut(rest, "+")
	if !ok {
		return Scheme{}, fmt.Errorf("%w: %q: want rs:K+M, for example rs:4+2", ErrScheme, s)
	}
	k, err1 := strconv.Atoi(ks)
	m, err2 := strconv.Atoi(ms)
	if err1 != nil || err2 != nil {
		return Scheme{}, fmt.Errorf("%w: %q: K and M must be whole numbers, as in rs:4+2", ErrScheme, s)
	}
	sc := Scheme{Data: k, Parity: m}
	if err := sc.Check(); err != nil {
		return Scheme{}, err
	}
	return sc, nil
}

// Check reports whether s is within bounds.
func (s Scheme) Check() error {
	if s.Data < 1 || s.Data > MaxData || s.Parity < 1 || s.Parity > MaxParity || s.Data+s.Parity > MaxShards {
		return fmt.Errorf("%w: rs:%d+%d: K must be 1 to %d, M 1 to %d, K+M at most %d",
			ErrScheme, s.Data, s.Parity, MaxData, MaxParity, MaxShards)
	}
	return nil
}

// IsZero reports whether s is the zero Scheme (replicas, no coding).
func (s Scheme) IsZero() bool { return s == Scheme{} }

// Shards is K+M: the stores one block needs.
func (s Scheme) Shards() int { return s.Data + s.Parity }

// String is the "rs:K+M" form; "" for the zero Scheme.
func (s Scheme) String() string {
	if s.IsZero() {
		return ""
	}
	return fmt.Sprintf("rs:%d+%d", s.Data, s.Parity)
}

// Overhead is the bytes stored per byte of stored block: (K+M)/K.
func (s Scheme) Overhead() float64 { return float64(s.Shards()) / float64(s.Data) }

// ShardSize is the size of each shard of a block of n stored bytes.
func (s Scheme) ShardSize(n int) int {
	if n == 0 {
		return 0
	}
	return (n + s.Data - 1) / s.Data
}

var (
	encMu    sync.Mutex
	encoders = map[Scheme]reedsolomon.Encoder{}
)

// encoder returns the shared encoder of s (safe for concurrent use: the
// library's encoders keep no per-call state outside their arguments).
func (s Scheme) encoder() (reedsolomon.Encoder, error) {
	if err := s.Check(); err != nil {
		return nil, err
	}
	encMu.Lock()
	defer encMu.Unlock()
	if e := encoders[s]; e != nil {
		return e, nil
	}
	e, err := reedsolomon.New(s.Data, s.Parity)
	if err != nil {
		return nil, fmt.Errorf("erasure: %s: %w", s, err)
	}
	encoders[s] = e
	return e, nil
}

// Split cuts stored into K data shards and computes M parity shards, all
// of ShardSize(len(stored)) bytes, in one new buffer (stored is not kept).
// An empty block has no shards.
func (s Scheme) Split(stored []byte) ([][]byte, error) {
	e, err := s.encoder()
	if err != nil {
		return nil, err
	}
	if len(stored) == 0 {
		return nil, fmt.Errorf("erasure: %s: an empty block has no shards", s)
	}
	size := s.ShardSize(len(stored))
	buf := make([]byte, size*s.Shards())
	copy(buf, stored)
	shards := make([][]byte, s.Shards())
	for i := range shards {
		shards[i] = buf[i*size : (i+1)*size : (i+1)*size]
	}
	if err := e.Encode(shards); err != nil {
		return nil, fmt.Errorf("erasure: %s: encode: %w", s, err)
	}
	return shards, nil
}

// Join returns the n stored bytes of a block from its shards, in shard
// order, nil for each shard that is missing or failed its key. It
// reconstructs missing data shards when needed (the shards slice is
// filled in); at least K must be present. The result is appended to
// dst[:0].
func (s Scheme) Join(dst []byte, shards [][]byte, n int) ([]byte, error) {
	e, err := s.encoder()
	if err != nil {
		return nil, err
	}
	if len(shards) != s.Shards() {
		return nil, fmt.Errorf("erasure: %s: %d shards given, want %d", s, len(shards), s.Shards())
	}
	size := s.ShardSize(n)
	present, dataMissing := 0, false
	for i, sh := range shards {
		switch {
		case sh == nil:
			if i < s.Data {
				dataMissing = true
			}
		case len(sh) != size:
			return nil, fmt.Errorf("erasure: %s: shard %d has %d bytes, want %d for a block of %d", s, i, len(sh), size, n)
		default:
			present++
		}
	}
	if present < s.Data {
		return nil, fmt.Errorf("%w: %s: %d of %d shards, need %d", ErrTooFewShards, s, present, s.Shards(), s.Data)
	}
	if dataMissing {
		if err := e.ReconstructData(shards); err != nil {
			return nil, fmt.Errorf("erasure: %s: reconstruct: %w", s, err)
		}
	}
	dst = dst[:0]
	for _, sh := range shards[:s.Data] {
		take := min(len(sh), n-len(dst))
		dst = append(dst, sh[:take]...)
	}
	return dst, nil
}

// Rebuild fills in every nil shard, data and parity, from at least K
// present ones: what repair puts back on a store.
func (s Scheme) Rebuild(shards [][]byte) error {
	e, err := s.encoder()
	if err != nil {
		return err
	}
	present := 0
	for _, sh := range shards {
		if sh != nil {
			present++
		}
	}
	if len(shards) != s.Shards() || present < s.Data {
		return fmt.Errorf("%w: %s: %d of %d shards, need %d", ErrTooFewShards, s, present, s.Shards(), s.Data)
	}
	if err := e.Reconstruct(shards); err != nil {
		return fmt.Errorf("erasure: %s: reconstruct: %w", s, err)
	}
	return nil
}
