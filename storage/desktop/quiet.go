package desktop

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// QuietHours is a daily window of local time, like 09:00-17:30, that may
// wrap past midnight (22:00-07:00). The start minute is inside, the end
// minute is not.
type QuietHours struct {
	start, end int // minutes after midnight
}

// ParseQuietHours parses "HH:MM-HH:MM" (24-hour clock).
func ParseQuietHours(s string) (QuietHours, error) {
	a, b, ok := strings.Cut(strings.TrimSpace(s), "-")
	if !ok {
		return QuietHours{}, fmt.Errorf("quiet hours %q: want HH:MM-HH:MM, like 09:00-17:30 or 22:00-07:00", s)
	}
	start, err := parseClock(a)
	if err != nil {
		return QuietHours{}, fmt.Errorf("quiet hours %q: %w", s, err)
	}
	end, err := parseClock(b)
	if err != nil {
		return QuietHours{}, fmt.Errorf("quiet hours %q: %w", s, err)
	}
	if start == end {
		return QuietHours{}, fmt.Errorf("quiet hours %q: start and end are the same minute; give a window like 22:00-07:00", s)
	}
	return QuietHours{start: start, end: end}, nil
}

func parseClock(s string) (int, error) {
	h, m, ok := strings.Cut(strings.TrimSpace(s), ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || len(m) != 2 || hh < 0 || hh > 23 || mm < 0 || mm > 59 {
		return 0, fmt.Errorf("%q is not a time of day HH:MM (00:00 to 23:59)", s)
	}
	return hh*60 + mm, nil
}

// Contains reports whether t, in its own location (time.Local for
// time.Now), falls in the window.
func (q QuietHours) Contains(t time.Time) bool {
	m := t.Hour()*60 + t.Minute()
	if q.start < q.end {
		return m >= q.start && m < q.end
	}
	return m >= q.start || m < q.end // wraps past midnight
}

// String renders the window as ParseQuietHours reads it.
func (q QuietHours) String() string {
	return fmt.Sprintf("%02d:%02d-%02d:%02d", q.start/60, q.start%60, q.end/60, q.end%60)
}
