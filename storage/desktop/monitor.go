package desktop

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"time"
)

// DefaultThreshold is the share of CPU or disk time above which the
// desktop counts as busy.
const DefaultThreshold = 0.5

// Options configure a Monitor. The zero value never reports busy.
type Options struct {
	// Quiet, when not nil, makes the desktop busy during those hours.
	Quiet *QuietHours
	// WhenBusy makes the desktop busy while its CPU or a disk is busier
	// than Threshold.
	WhenBusy bool
	// Threshold is a share in (0, 1]; 0 means DefaultThreshold.
	Threshold float64
	// Now is the clock; nil means time.Now. Quiet hours are read in its
	// times' location.
	Now func() time.Time
	// Proc is where /proc/stat, /proc/diskstats and /proc/self/stat are
	// read from; nil means the real /proc (os.DirFS("/proc")). Tests give
	// an fstest.MapFS.
	Proc fs.FS
}

// Monitor says whether the desktop is busy now. Check is safe for
// concurrent use; each call measures the interval since the previous one.
type Monitor struct {
	opts Options

	mu   sync.Mutex
	prev *sample
}

// sample is one reading of /proc.
type sample struct {
	at   time.Time
	cpu  CPUTimes
	self uint64
	disk DiskTicks
}

// NewMonitor returns a Monitor.
func NewMonitor(opts Options) *Monitor {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Threshold <= 0 {
		opts.Threshold = DefaultThreshold
	}
	if opts.Proc == nil {
		opts.Proc = os.DirFS("/proc")
	}
	return &Monitor{opts: opts}
}

// Check reports whether the desktop is busy and, if so, why, in words for
// people ("quiet hours 22:00-07:00", "cpu 83% busy (threshold 50%)"). An
// error reading /proc is returned with busy false: the store keeps working
// as if the desktop were idle, and says so.
func (m *Monitor) Check() (busy bool, reason string, err error) {
	now := m.opts.Now()
	if q := m.opts.Quiet; q != nil && q.Contains(now) {
		return true, "quiet hours " + q.String(), nil
	}
	if !m.opts.WhenBusy {
		return false, "", nil
	}
	cur, err := m.read(now)
	if err != nil {
		return false, "", err
	}
	m.mu.Lock()
	prev := m.prev
	m.prev = cur
	m.mu.Unlock()
	if prev == nil {
		return false, "", nil
	}
	return m.compare(prev, cur)
}

func (m *Monitor) compare(prev, cur *sample) (bool, string, error) {
	th := m.opts.Threshold
	if dt := sub(cur.cpu.Total, prev.cpu.Total); dt > 0 {
		busyTicks := sub(dt, sub(cur.cpu.Idle, prev.cpu.Idle))
		busyTicks = sub(busyTicks, sub(cur.self, prev.self))
		if share := float64(busyTicks) / float64(dt); share >= th {
			return true, fmt.Sprintf("cpu %.0f%% busy (threshold %.0f%%)", 100*share, 100*th), nil
		}
	}
	wall := cur.at.Sub(prev.at).Milliseconds()
	if wall <= 0 {
		return false, "", nil
	}
	var worst string
	var worstShare float64
	for name, t := range cur.disk {
		p, ok := prev.disk[name]
		if !ok {
			continue
		}
		if share := float64(sub(t, p)) / float64(wall); share > worstShare || (share == worstShare && name < worst) {
			worst, worstShare = name, share
		}
	}
	if worst != "" && worstShare >= th {
		return true, fmt.Sprintf("disk %s %.0f%% busy (threshold %.0f%%)", worst, 100*min(worstShare, 1), 100*th), nil
	}
	return false, "", nil
}

// sub is a - b, 0 when a counter went backwards.
func sub(a, b uint64) uint64 {
	if a < b {
		return 0
	}
	return a - b
}

func (m *Monitor) read(now time.Time) (*sample, error) {
	s := &sample{at: now}
	data, err := fs.ReadFile(m.opts.Proc, "stat")
	if err != nil {
		return nil, fmt.Errorf("desktop: %w", err)
	}
	if s.cpu, err = ParseStat(bytes.NewReader(data)); err != nil {
		return nil, err
	}
	if data, err = fs.ReadFile(m.opts.Proc, "self/stat"); err != nil {
		return nil, fmt.Errorf("desktop: %w", err)
	}
	if s.self, err = ParseSelfStat(data); err != nil {
		return nil, err
	}
	if data, err = fs.ReadFile(m.opts.Proc, "diskstats"); err != nil {
		return nil, fmt.Errorf("desktop: %w", err)
	}
	if s.disk, err = ParseDiskStats(bytes.NewReader(data)); err != nil {
		return nil, err
	}
	return s, nil
}
