package manifest

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// parts cuts m's blocks into n manifests of their own, encoded, with
// figures of their own (which Splice must drop).
func parts(t testing.TB, m *Manifest, n int) [][]byte {
	t.Helper()
	var out [][]byte
	per := (len(m.Blocks) + n - 1) / n
	for i := 0; i < n; i++ {
		lo, hi := min(i*per, len(m.Blocks)), min((i+1)*per, len(m.Blocks))
		p := &Manifest{Job: "part", Kind: "x", Meta: map[string]string{"part": "yes"}, NewBytes: 99, Blocks: m.Blocks[lo:hi]}
		b, err := Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func TestSpliceEqualsOneEncoding(t *testing.T) {
	m := sample()
	// More rows than a batch, so parts hold several batches and
	// dictionaries.
	for i := 0; i < BatchRows+10; i++ {
		m.Blocks = append(m.Blocks, object("many", int32(i), 1, 1, "s9")...)
	}
	m.LogicalBytes = m.Size()
	hdr := *m
	hdr.Blocks = nil
	for _, n := range []int{1, 2, 5} {
		data, err := Splice(&hdr, parts(t, m, n)...)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Unmarshal(data)
		if err != nil {
			t.Fatalf("%d parts: %v", n, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("%d parts: spliced manifest differs:\n got %+v\nwant %+v", n, got.Meta, m.Meta)
		}
		h, err := Header(data)
		if err != nil || h.Job != m.Job || h.Version != m.Version || h.NewBytes != m.NewBytes || h.Blocks != nil {
			t.Fatalf("Header = %+v, %v", h, err)
		}
	}
	// No part: a manifest without blocks.
	data, err := Splice(&Manifest{Job: "j", Kind: KindFiles})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Unmarshal(data); err != nil || got.Job != "j" || len(got.Blocks) != 0 {
		t.Fatalf("empty splice: %+v, %v", got, err)
	}
}

// TestSpliceRestamps: splicing one stored manifest with a new header is
// how the manager stamps the version number without re-encoding blocks.
func TestSpliceRestamps(t *testing.T) {
	m := sample()
	m.Version = 0
	data, err := Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	hdr := *m
	hdr.Blocks, hdr.Version = nil, 42
	out, err := Splice(&hdr, data)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Unmarshal(out)
	if err != nil || got.Version != 42 || len(got.Blocks) != len(m.Blocks) {
		t.Fatalf("restamped: version %d, %d blocks, %v", got.Version, len(got.Blocks), err)
	}
}

func TestSpliceRefusesBrokenParts(t *testing.T) {
	good := parts(t, sample(), 1)[0]
	two := append(append([]byte(nil), good[:len(good)-len(eos)]...), good...)
	for name, p := range map[string][]byte{
		"empty":        {},
		"only eos":     eos,
		"truncated":    good[:len(good)-3],
		"no eos":       good[:len(good)-len(eos)],
		"trailing":     append(append([]byte(nil), good...), 1),
		"two schemas":  two,
		"not arrow":    bytes.Repeat([]byte{7}, 64),
		"huge message": {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
	} {
		if _, err := Splice(&Manifest{Job: "j"}, good, p); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: Splice error %v, want ErrCorrupt", name, err)
		}
	}
	if _, err := Header([]byte{1, 2}); err == nil {
		t.Error("Header of garbage succeeded")
	}
}

func FuzzSplice(f *testing.F) {
	for _, p := range parts(f, sample(), 2) {
		f.Add(p)
	}
	f.Add([]byte{})
	f.Add(eos)
	f.Fuzz(func(t *testing.T, part []byte) {
		hdr := &Manifest{Job: "j", Kind: KindMPI}
		out, err := Splice(hdr, part)
		pm, perr := Unmarshal(part)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			if perr == nil {
				t.Fatalf("Splice refused a part that decodes: %v", err)
			}
			return
		}
		if perr != nil {
			return // framing is fine, the blocks are not: decoding the result must say so
		}
		got, err := Unmarshal(out)
		if err != nil {
			t.Fatalf("splice of a valid part does not decode: %v", err)
		}
		if len(got.Blocks) != len(pm.Blocks) || got.Job != "j" {
			t.Fatalf("splice changed the blocks: %d, want %d", len(got.Blocks), len(pm.Blocks))
		}
		Header(part) // must not panic
	})
}
