package storage

import (
	"fmt"
	"strconv"
	"strings"
)

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
	{"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3},
	{"T", 1 << 40}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1},
}

// ParseSize parses a byte count like "10GiB", "512MiB", "1.5G" or "4096".
// Binary suffixes (KiB, MiB, GiB, TiB, and the bare K, M, G, T) are powers
// of 1024; KB, MB, GB, TB are powers of 1000.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(strings.ToUpper(t), strings.ToUpper(u.suffix)) && len(t) > len(u.suffix) {
			// Case-insensitive match, but KiB must not be read as "Ki" + "B".
			if u.suffix == "B" && strings.ContainsAny(t[len(t)-2:len(t)-1], "iIkKmMgGtT") {
				continue
			}
			mult = u.mult
			t = strings.TrimSpace(t[:len(t)-len(u.suffix)])
			break
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("size %q: want a number with an optional unit, like 10GiB or 512MiB", s)
	}
	v := f * float64(mult)
	if v > 1<<62 {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return int64(v), nil
}

// ParseRate parses a byte rate like "20MiB/s" or "500KB/s": a size as
// ParseSize reads it, per second, with or without the "/s". It must be
// more than 0.
func ParseRate(s string) (int64, error) {
	t := strings.TrimSpace(s)
	t = strings.TrimSuffix(strings.TrimSuffix(t, "/s"), "/S")
	n, err := ParseSize(t)
	if err != nil {
		return 0, fmt.Errorf("rate %q: want bytes a second, like 20MiB/s or 500KB/s", s)
	}
	if n <= 0 {
		return 0, fmt.Errorf("rate %q: want more than 0 bytes a second", s)
	}
	return n, nil
}

// FormatSize renders n bytes with a binary unit, like "1.5 GiB".
func FormatSize(n int64) string {
	if n < 1024 && n > -1024 {
		return fmt.Sprintf("%d B", n)
	}
	f := float64(n)
	for _, u := range []string{"KiB", "MiB", "GiB", "TiB", "PiB"} {
		f /= 1024
		if f < 1024 && f > -1024 {
			return fmt.Sprintf("%.1f %s", f, u)
		}
	}
	return fmt.Sprintf("%.1f EiB", f/1024)
}
