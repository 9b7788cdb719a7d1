package desktop

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// CPUTimes is the first line of /proc/stat: the time all CPUs spent, in
// clock ticks (USER_HZ).
type CPUTimes struct {
	Total uint64 // user, nice, system, idle, iowait, irq, softirq, steal
	Idle  uint64 // idle and iowait
}

// ParseStat reads the "cpu" line of /proc/stat.
func ParseStat(r io.Reader) (CPUTimes, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] != "cpu" {
			continue
		}
		if len(f) < 5 {
			return CPUTimes{}, fmt.Errorf("desktop: /proc/stat: cpu line has %d fields, want at least 5", len(f))
		}
		var t CPUTimes
		for i, s := range f[1:min(len(f), 9)] {
			v, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return CPUTimes{}, fmt.Errorf("desktop: /proc/stat: cpu field %d: %w", i+1, err)
			}
			t.Total += v
			if i == 3 || i == 4 { // idle, iowait
				t.Idle += v
			}
		}
		return t, nil
	}
	if err := sc.Err(); err != nil {
		return CPUTimes{}, fmt.Errorf("desktop: /proc/stat: %w", err)
	}
	return CPUTimes{}, errors.New("desktop: /proc/stat has no cpu line")
}

// ParseSelfStat reads the CPU time (utime + stime, in clock ticks) of a
// process from its /proc/PID/stat.
func ParseSelfStat(data []byte) (uint64, error) {
	// The command name, in parentheses, may hold spaces and parentheses:
	// the fields that follow start after the last ')'.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, errors.New("desktop: /proc/self/stat: no command name")
	}
	f := strings.Fields(string(data[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("desktop: /proc/self/stat: %d fields after the name, want at least 13", len(f))
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	s, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("desktop: /proc/self/stat: %w", err)
	}
	return u + s, nil
}

// DiskTicks are the milliseconds each block device spent with I/O in
// flight (/proc/diskstats, the 10th statistic: io_ticks), by name. Loop,
// ram and zram devices are left out.
type DiskTicks map[string]uint64

// ParseDiskStats reads /proc/diskstats.
func ParseDiskStats(r io.Reader) (DiskTicks, error) {
	out := DiskTicks{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) < 13 {
			return nil, fmt.Errorf("desktop: /proc/diskstats line %d: %d fields, want at least 13", n, len(f))
		}
		name := f[2]
		if strings.HasPrefix(name, "loop") || strings.HasPrefix(name, "ram") || strings.HasPrefix(name, "zram") {
			continue
		}
		v, err := strconv.ParseUint(f[12], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("desktop: /proc/diskstats line %d (%s): io_ticks: %w", n, name, err)
		}
		out[name] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("desktop: /proc/diskstats: %w", err)
	}
	return out, nil
}
