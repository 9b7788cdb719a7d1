package chunk

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/ckptio/ckptio/storage"
)

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

func mustNew(t testing.TB, o Options) Chunker {
	t.Helper()
	c, err := o.New()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// testChunkers are small enough that a few hundred KiB make many chunks.
func testChunkers(t testing.TB) map[string]Chunker {
	return map[string]Chunker{
		"fixed-4K":     mustNew(t, Options{Kind: KindFixed, Size: 4096}),
		"fixed-1000":   mustNew(t, Options{Size: 1000}),
		"cdc-1K":       mustNew(t, Options{Kind: KindCDC, Size: 1024}),
		"cdc-64-4K-8K": mustNew(t, Options{Kind: KindCDC, Min: 64, Size: 4096, Max: 8192}),
		"cdc-default":  mustNew(t, Options{Kind: KindCDC}),
	}
}

// randomReader returns between 0 and max bytes per Read, at random.
type randomReader struct {
	data []byte
	r    *rand.Rand
	max  int
}

func (rr *randomReader) Read(p []byte) (int, error) {
	if len(rr.data) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), len(rr.data), rr.r.IntN(rr.max+1))
	copy(p, rr.data[:n])
	rr.data = rr.data[n:]
	return n, nil
}

// readAll cuts r with c and returns the chunk lengths, checking that the
// chunks are the bytes of want in order.
func readAll(t *testing.T, c Chunker, r io.Reader, want []byte) []int {
	t.Helper()
	cr := NewReader(r, c)
	var lens []int
	off := 0
	for {
		chunk, err := cr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		if !bytes.Equal(chunk, want[off:off+len(chunk)]) {
			t.Fatalf("chunk at %d: bytes differ from the input", off)
		}
		off += len(chunk)
		lens = append(lens, len(chunk))
	}
	if off != len(want) {
		t.Fatalf("reader returned %d bytes, want %d", off, len(want))
	}
	if _, err := cr.Next(); err != io.EOF {
		t.Fatalf("Next after the end: %v, want io.EOF", err)
	}
	return lens
}

func TestReaderMatchesCut(t *testing.T) {
	sizes := []int{0, 1, 63, 64, 4095, 4096, 4097, 100_000, 3 << 20}
	for name, c := range testChunkers(t) {
		t.Run(name, func(t *testing.T) {
			for i, n := range sizes {
				data := randomBytes(uint64(i), n)
				want := c.Cut(data, nil)
				readers := map[string]io.Reader{
					"whole":     bytes.NewReader(data),
					"random":    &randomReader{data: data, r: rand.New(rand.NewPCG(uint64(n), 2)), max: 3 * c.Max() / 2},
					"smallread": &randomReader{data: data, r: rand.New(rand.NewPCG(uint64(n), 3)), max: 97},
					"dataerr":   iotest.DataErrReader(bytes.NewReader(data)),
				}
				if n <= 100_000 {
					readers["onebyte"] = iotest.OneByteReader(bytes.NewReader(data))
				}
				for rn, r := range readers {
					if got := readAll(t, c, r, data); !slices.Equal(got, want) {
						t.Errorf("%d bytes, %s reader: %d chunks %v..., Cut gave %d", n, rn, len(got), head(got), len(want))
					}
				}
			}
		})
	}
}

func head(s []int) []int { return s[:min(len(s), 8)] }

func TestBounds(t *testing.T) {
	data := randomBytes(7, 4<<20)
	// Long runs of one byte make the CDC hash constant: chunks must still
	// stop at Max.
	copy(data[1<<20:], make([]byte, 1<<20))
	for name, c := range testChunkers(t) {
		t.Run(name, func(t *testing.T) {
			checkLengths(t, c, len(data), c.Cut(data, nil))
		})
	}
}

func checkLengths(t testing.TB, c Chunker, total int, lens []int) {
	t.Helper()
	sum := 0
	for i, n := range lens {
		sum += n
		last := i == len(lens)-1
		if n > c.Max() || n < 1 || (!last && n < c.Min()) {
			t.Fatalf("chunk %d of %d has length %d, outside [%d, %d]", i, len(lens), n, c.Min(), c.Max())
		}
	}
	if sum != total {
		t.Fatalf("chunk lengths sum to %d, want %d", sum, total)
	}
}

func TestEmpty(t *testing.T) {
	for name, c := range testChunkers(t) {
		if got := c.Cut(nil, nil); len(got) != 0 {
			t.Errorf("%s: Cut(nil) = %v, want no chunk", name, got)
		}
		if got := c.First(nil); got != 0 {
			t.Errorf("%s: First(nil) = %d, want 0", name, got)
		}
		if _, err := NewReader(strings.NewReader(""), c).Next(); err != io.EOF {
			t.Errorf("%s: Next on an empty stream: %v, want io.EOF", name, err)
		}
	}
}

func TestCutAppends(t *testing.T) {
	c := mustNew(t, Options{Size: 10})
	got := c.Cut(make([]byte, 25), []int{7})
	if want := []int{7, 10, 10, 5}; !slices.Equal(got, want) {
		t.Fatalf("Cut = %v, want %v", got, want)
	}
}

func TestReaderErrorIsSticky(t *testing.T) {
	boom := errors.New("disk on fire")
	data := randomBytes(1, 10_000)
	r := io.MultiReader(bytes.NewReader(data), iotest.ErrReader(boom))
	cr := NewReader(r, mustNew(t, Options{Size: 4096}))
	var err error
	for range 10 {
		if _, err = cr.Next(); err != nil {
			break
		}
	}
	if !errors.Is(err, boom) {
		t.Fatalf("Next: %v, want %v", err, boom)
	}
	if _, err := cr.Next(); !errors.Is(err, boom) {
		t.Fatalf("Next after the error: %v, want %v again", err, boom)
	}
}

type zeroReader struct{}

func (zeroReader) Read([]byte) (int, error) { return 0, nil }

func TestReaderNoProgress(t *testing.T) {
	cr := NewReader(zeroReader{}, mustNew(t, Options{Size: 4096}))
	if _, err := cr.Next(); !errors.Is(err, io.ErrNoProgress) {
		t.Fatalf("Next: %v, want io.ErrNoProgress", err)
	}
}

func TestCDCAverage(t *testing.T) {
	data := randomBytes(3, 32<<20)
	for _, avg := range []int{4 << 10, 64 << 10} {
		c := mustNew(t, Options{Kind: KindCDC, Size: avg})
		lens := c.Cut(data, nil)
		mean := float64(len(data)) / float64(len(lens))
		if mean < 0.75*float64(avg) || mean > 1.5*float64(avg) {
			t.Errorf("avg %d: mean chunk length %.0f, want within [0.75, 1.5] x avg", avg, mean)
		}
	}
}

// TestCDCShiftStable inserts and deletes a few bytes near the start of a
// large random buffer: the chunks after the edit must be found again.
func TestCDCShiftStable(t *testing.T) {
	size := 64 << 20
	if testing.Short() {
		size = 8 << 20
	}
	data := randomBytes(11, size)
	c := mustNew(t, Options{Kind: KindCDC})
	orig := chunkHashes(c, data)

	edits := []struct {
		name string
		at   int
		ins  []byte
		del  int
	}{
		{"insert 1 at 100", 100, []byte{0x42}, 0},
		{"insert 7 at 5000", 5000, []byte("ckptio!"), 0},
		{"insert 1 at 0", 0, []byte{1}, 0},
		{"delete 1 at 100", 100, nil, 1},
		{"delete 13 at 70000", 70000, nil, 13},
		{"replace 3 at 300000", 300000, []byte{1, 2, 3}, 3},
		{"insert 4096 at 200000", 200000, randomBytes(99, 4096), 0},
	}
	for _, e := range edits {
		t.Run(e.name, func(t *testing.T) {
			edited := slices.Concat(data[:e.at], e.ins, data[e.at+e.del:])
			got := chunkHashes(c, edited)
			changed := 0
			for h := range got {
				if _, ok := orig[h]; !ok {
					changed++
				}
			}
			if changed > 3 {
				t.Errorf("%d of %d chunks changed, want <= 3", changed, len(got))
			}
		})
	}
}

func chunkHashes(c Chunker, data []byte) map[storage.Hash]struct{} {
	set := make(map[storage.Hash]struct{})
	for _, n := range c.Cut(data, nil) {
		set[storage.Sum(data[:n])] = struct{}{}
		data = data[n:]
	}
	return set
}

func TestFixedShiftMovesEverything(t *testing.T) {
	// The reason CDC exists: with fixed blocks, one inserted byte near the
	// start changes every later block.
	data := randomBytes(12, 1<<20)
	c := mustNew(t, Options{Size: 4096})
	orig := chunkHashes(c, data)
	got := chunkHashes(c, slices.Concat(data[:100], []byte{0}, data[100:]))
	same := 0
	for h := range got {
		if _, ok := orig[h]; ok {
			same++
		}
	}
	if same != 0 {
		t.Errorf("%d fixed blocks survived a 1-byte insert, want 0", same)
	}
}

func TestGearTableIsPinned(t *testing.T) {
	// The table decides every CDC boundary; see the package comment before
	// changing these values.
	if gearTable[0] != 0xa45450ad357dc585 || gearTable[255] != 0xbc2d53c9534367aa {
		t.Fatalf("gear table changed: [0]=%#x [255]=%#x", gearTable[0], gearTable[255])
	}
	c := mustNew(t, Options{Kind: KindCDC, Size: 4096})
	lens := c.Cut(randomBytes(5, 64<<10), nil)
	if want := []int{4902, 4580, 5057, 4312, 1149, 2599, 4473, 2769, 4937, 4709, 4389, 5627, 6408, 6686, 2939}; !slices.Equal(lens, want) {
		t.Fatalf("boundaries changed: %#v", lens)
	}
}

func TestParseKind(t *testing.T) {
	for in, want := range map[string]Kind{"": KindFixed, "fixed": KindFixed, " CDC ": KindCDC, "cdc": KindCDC} {
		got, err := ParseKind(in)
		if err != nil || got != want {
			t.Errorf("ParseKind(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	_, err := ParseKind("fastcdc")
	if err == nil || !strings.Contains(err.Error(), `"fastcdc"`) || !strings.Contains(err.Error(), `"cdc"`) {
		t.Errorf("ParseKind(fastcdc): %v, want an error naming the value and the choices", err)
	}
}

func TestOptions(t *testing.T) {
	c := mustNew(t, Options{})
	if c.Min() != DefaultSize || c.Max() != DefaultSize {
		t.Errorf("zero Options: [%d, %d], want fixed %d", c.Min(), c.Max(), DefaultSize)
	}
	c = mustNew(t, Options{Kind: KindCDC})
	if c.Min() != DefaultSize/4 || c.Max() != DefaultSize*4 {
		t.Errorf("cdc defaults: [%d, %d], want [%d, %d]", c.Min(), c.Max(), DefaultSize/4, DefaultSize*4)
	}
	c = mustNew(t, Options{Kind: KindCDC, Size: 8 << 20})
	if c.Max() != storage.MaxBlockSize {
		t.Errorf("cdc 8MiB: max %d, want capped at %d", c.Max(), storage.MaxBlockSize)
	}
	for _, o := range []Options{
		{Size: -1},
		{Size: storage.MaxBlockSize + 1},
		{Kind: "rabin"},
		{Kind: KindCDC, Size: 32},
		{Kind: KindCDC, Size: 4096, Min: 8192},
		{Kind: KindCDC, Size: 4096, Max: 2048},
		{Kind: KindCDC, Size: 4096, Max: storage.MaxBlockSize + 1},
	} {
		if _, err := o.New(); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
}
