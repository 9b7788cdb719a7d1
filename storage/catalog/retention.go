package catalog

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Retention is a job's retention policy. A zero field is a rule not set; a
// policy with no rule set keeps every version (and is not stored). A
// version is kept when any rule keeps it, when it is pinned, or when it is
// the job's latest; every other version is deleted. The manager applies
// the policy after each commit of the job and when it is set.
type Retention struct {
	// KeepLast keeps the KeepLast highest-numbered versions held.
	KeepLast int `json:"keep_last"`
	// KeepEvery keeps the versions whose number is a multiple of KeepEvery.
	KeepEvery int64 `json:"keep_every"`
	// KeepWithin keeps the versions committed at most KeepWithin ago.
	KeepWithin Duration `json:"keep_within"`
}

// IsSet reports whether any rule is set.
func (r Retention) IsSet() bool { return r.KeepLast != 0 || r.KeepEvery != 0 || r.KeepWithin != 0 }

func (r Retention) Validate() error {
	if r.KeepLast < 0 || r.KeepEvery < 0 || r.KeepWithin < 0 {
		return fmt.Errorf("%w: retention: keep_last, keep_every and keep_within must not be negative (0 = not set)", ErrInvalid)
	}
	return nil
}

// String describes the policy for people: "keep the last 3, every 10th,
// those committed within 7d", or "keep everything".
func (r Retention) String() string {
	var rules []string
	if r.KeepLast > 0 {
		rules = append(rules, fmt.Sprintf("the last %d", r.KeepLast))
	}
	if r.KeepEvery > 0 {
		rules = append(rules, fmt.Sprintf("every version numbered a multiple of %d", r.KeepEvery))
	}
	if r.KeepWithin > 0 {
		rules = append(rules, "those committed within "+r.KeepWithin.String())
	}
	if len(rules) == 0 {
		return "keep everything (no policy)"
	}
	return "keep " + strings.Join(rules, ", ") + ", the pinned ones and the latest"
}

// Select returns the numbers of the versions the policy deletes among vs,
// at time now, in ascending order. The latest version (highest number) and
// pinned versions are never selected; nothing is when no rule is set.
func (r Retention) Select(vs []VersionInfo, now time.Time) []int64 {
	if !r.IsSet() || len(vs) == 0 {
		return nil
	}
	nums := make([]int64, len(vs))
	for i, v := range vs {
		nums[i] = v.Version
	}
	slices.Sort(nums)
	keep := make(map[int64]bool)
	keep[nums[len(nums)-1]] = true
	if r.KeepLast > 0 {
		for _, n := range nums[max(0, len(nums)-r.KeepLast):] {
			keep[n] = true
		}
	}
	var out []int64
	for _, v := range vs {
		switch {
		case keep[v.Version], v.Pinned:
		case r.KeepEvery > 0 && v.Version%r.KeepEvery == 0:
		case r.KeepWithin > 0 && !v.Committed.Before(now.Add(-time.Duration(r.KeepWithin))):
		default:
			out = append(out, v.Version)
		}
	}
	slices.Sort(out)
	return out
}

// Duration is a time.Duration that reads and writes as text in JSON:
// "72h0m0s" out; Go durations ("90m", "1h30m") and whole days ("7d") in.
type Duration time.Duration

// ParseDuration parses a Go duration ("36h", "90m") or a number of days
// ("7d", "1.5d").
func ParseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		f, err := strconv.ParseFloat(days, 64)
		if err == nil && f >= 0 && f < 1e5 {
			return time.Duration(f * float64(24*time.Hour)), nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("duration %q: want a Go duration like 36h or 90m, or days like 7d", s)
	}
	return d, nil
}

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler; "" is zero.
func (d *Duration) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*d = 0
		return nil
	}
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}
