package storage

import "testing"

func TestParseSize(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"10GiB", 10 << 30, true}, {"512MiB", 512 << 20, true}, {"64KiB", 64 << 10, true},
		{"1.5G", 3 << 29, true}, {"4096", 4096, true}, {"4096B", 4096, true},
		{"1GB", 1e9, true}, {"2 mib", 2 << 20, true}, {"", 0, false}, {"ten", 0, false},
		{"-1GiB", 0, false}, {"1ZiB", 0, false},
	} {
		got, err := ParseSize(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d ok=%v", c.in, got, err, c.want, c.ok)
		}
	}
	if s := FormatSize(3 << 29); s != "1.5 GiB" {
		t.Errorf("FormatSize = %q", s)
	}
}
