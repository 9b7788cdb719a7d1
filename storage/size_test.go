package storage

import (
	"strings"
	"testing"
)

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

func TestParseRate(t *testing.T) {
	for in, want := range map[string]int64{"20MiB/s": 20 << 20, "20MiB": 20 << 20, "500KB/s": 500e3, "1G/s": 1 << 30, " 4096/s ": 4096} {
		if got, err := ParseRate(in); err != nil || got != want {
			t.Errorf("ParseRate(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "/s", "fast", "0/s", "-1MiB/s", "20MiB/h"} {
		if _, err := ParseRate(in); err == nil || !strings.Contains(err.Error(), "rate") {
			t.Errorf("ParseRate(%q) = %v, want an error naming the rate", in, err)
		}
	}
}
