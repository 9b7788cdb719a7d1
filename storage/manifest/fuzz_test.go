package manifest

import (
	"bytes"
	"errors"
	"testing"
)

func FuzzDecode(f *testing.F) {
	for _, m := range []*Manifest{
		sample(),
		treeSample(),
		erasureSample(),
		{Job: "j"},
		{Job: "j", Blocks: object("e", -1, 0, 1)},
		{Job: "j", Kind: "files", Meta: map[string]string{"k": "v"}, Blocks: object("x", 3, 50, 7, "a", "b")},
	} {
		b, err := Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Unmarshal(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			return
		}
		// What decodes is valid and survives a round trip.
		if err := m.Validate(); err != nil {
			t.Fatalf("decoded an invalid manifest: %v", err)
		}
		b, err := Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if len(m2.Blocks) != len(m.Blocks) || m2.Job != m.Job {
			t.Fatalf("round trip changed the manifest")
		}
	})
}
