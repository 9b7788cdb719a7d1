package erasure

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Scheme
		ok   bool
	}{
		{"rs:4+2", Scheme{4, 2}, true},
		{" rs:1+1 ", Scheme{1, 1}, true},
		{"rs:16+16", Scheme{16, 16}, true},
		{"rs:0+2", Scheme{}, false},
		{"rs:4+0", Scheme{}, false},
		{"rs:17+1", Scheme{}, false},
		{"rs:4", Scheme{}, false},
		{"4+2", Scheme{}, false},
		{"rs:a+b", Scheme{}, false},
	} {
		got, err := Parse(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("Parse(%q) = %v, %v; want %v ok=%v", c.in, got, err, c.want, c.ok)
		}
		if err != nil && !errors.Is(err, ErrScheme) {
			t.Errorf("Parse(%q) error %v does not wrap ErrScheme", c.in, err)
		}
		if c.ok && got.String() != strings.TrimSpace(c.in) {
			t.Errorf("String of %v = %q, want %q", got, got.String(), strings.TrimSpace(c.in))
		}
	}
	if s := (Scheme{4, 2}); s.String() != "rs:4+2" || s.Overhead() != 1.5 || s.Shards() != 6 {
		t.Errorf("rs:4+2: String %q Overhead %v Shards %d", s.String(), s.Overhead(), s.Shards())
	}
}

// Every way of losing up to M shards gives the block back; losing M+1
// is reported, never a wrong block.
func TestSplitJoinEveryLoss(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, s := range []Scheme{{1, 1}, {2, 1}, {4, 2}, {3, 3}} {
		for _, n := range []int{1, 2, 3, 7, 64 << 10, 64<<10 + 1} {
			block := make([]byte, n)
			for i := range block {
				block[i] = byte(rng.Uint32())
			}
			shards, err := s.Split(block)
			if err != nil {
				t.Fatal(err)
			}
			if len(shards) != s.Shards() || len(shards[0]) != s.ShardSize(n) {
				t.Fatalf("%s n=%d: %d shards of %d bytes", s, n, len(shards), len(shards[0]))
			}
			for mask := 0; mask < 1<<s.Shards(); mask++ {
				lost := 0
				given := make([][]byte, s.Shards())
				for i := range given {
					if mask&(1<<i) != 0 {
						lost++
						continue
					}
					given[i] = append([]byte(nil), shards[i]...)
				}
				got, err := s.Join(nil, given, n)
				if lost > s.Parity {
					if !errors.Is(err, ErrTooFewShards) {
						t.Fatalf("%s n=%d lost mask %b: err = %v, want ErrTooFewShards", s, n, mask, err)
					}
					continue
				}
				if err != nil || !bytes.Equal(got, block) {
					t.Fatalf("%s n=%d lost mask %b: err %v, equal %v", s, n, mask, err, bytes.Equal(got, block))
				}
			}
		}
	}
}

func TestRebuildRestoresParity(t *testing.T) {
	s := Scheme{4, 2}
	block := bytes.Repeat([]byte("checkpoint"), 1000)
	shards, err := s.Split(block)
	if err != nil {
		t.Fatal(err)
	}
	given := make([][]byte, len(shards))
	copy(given, shards)
	given[1], given[5] = nil, nil
	if err := s.Rebuild(given); err != nil {
		t.Fatal(err)
	}
	for i := range shards {
		if !bytes.Equal(given[i], shards[i]) {
			t.Fatalf("shard %d differs after Rebuild", i)
		}
	}
	given[0], given[1], given[2] = nil, nil, nil
	if err := s.Rebuild(given); !errors.Is(err, ErrTooFewShards) {
		t.Fatalf("Rebuild with 3 of 6: err = %v", err)
	}
}

func TestJoinRefusesWrongSizes(t *testing.T) {
	s := Scheme{2, 1}
	shards, _ := s.Split([]byte("hello"))
	shards[0] = shards[0][:1]
	if _, err := s.Join(nil, shards, 5); err == nil {
		t.Fatal("a short shard was accepted")
	}
	if _, err := s.Split(nil); err == nil {
		t.Fatal("an empty block was split")
	}
}
