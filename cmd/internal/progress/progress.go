// Package progress shows how far a long ckpt command has got: on a
// terminal a bar with bytes, rate and ETA (github.com/schollz/progressbar),
// otherwise a plain line every few seconds, nothing when quiet. A Meter
// counts bytes from any goroutine; the command prints its own last line
// with the Meter's Result (bytes, elapsed time, MB/s).
package progress

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/ckptio/ckptio/storage"
)

// Mode is how a Meter shows progress.
type Mode int

const (
	// Auto is Bar when Options.Out is a terminal, else Plain.
	Auto Mode = iota
	// Bar redraws one line in place: label, percent, bar, bytes, rate, ETA.
	Bar
	// Plain writes a line every Options.Interval.
	Plain
	// Off shows nothing (--quiet).
	Off
)

// barEvery is how often a Bar is redrawn.
const barEvery = 150 * time.Millisecond

// DefaultInterval is how often Plain writes a line.
const DefaultInterval = 5 * time.Second

// EnvInterval names the variable that overrides DefaultInterval (a Go
// duration such as "200ms"), for logs and tests.
const EnvInterval = "CKPT_PROGRESS_INTERVAL"

// Clock is the time a Meter measures with; tests inject a fake one.
type Clock interface {
	Now() time.Time
	NewTicker(d time.Duration) Ticker
}

// Ticker delivers Plain's ticks, as time.Ticker does.
type Ticker interface {
	C() <-chan time.Time
	Stop()
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }
func (realClock) NewTicker(d time.Duration) Ticker {
	return realTicker{time.NewTicker(d)}
}

type realTicker struct{ t *time.Ticker }

func (t realTicker) C() <-chan time.Time { return t.t.C }
func (t realTicker) Stop()               { t.t.Stop() }

// Options control a Meter. The zero value shows a bar on a terminal
// stderr and a line every DefaultInterval (or $CKPT_PROGRESS_INTERVAL)
// otherwise, measured by the real clock.
type Options struct {
	Out      io.Writer     // nil = os.Stderr
	Mode     Mode          // Auto = by whether Out is a terminal
	Interval time.Duration // Plain's period; 0 = $CKPT_PROGRESS_INTERVAL, else DefaultInterval
	Clock    Clock         // nil = the real clock
}

// Interval returns the period of Plain lines from $CKPT_PROGRESS_INTERVAL,
// or DefaultInterval when it is unset.
func Interval() (time.Duration, error) {
	v := os.Getenv(EnvInterval)
	if v == "" {
		return DefaultInterval, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s=%q: want a positive duration such as 2s or 200ms", EnvInterval, v)
	}
	return d, nil
}

// IsTerminal reports whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// Meter counts the bytes a command has moved and shows them. Add and Set
// may be called from any goroutine; Stop once, from the owner.
type Meter struct {
	label string
	out   io.Writer
	clock Clock
	start time.Time
	done  atomic.Int64
	total atomic.Int64 // 0 = unknown

	bar    *progressbar.ProgressBar
	ticker Ticker
	quit   chan struct{}
	wg     sync.WaitGroup
	once   sync.Once
	res    Result
}

// Start begins measuring work of total bytes (0 when not known yet; see
// SetTotal) named label, "put heat" say.
func Start(label string, total int64, opts Options) *Meter {
	m := &Meter{label: label, out: opts.Out, clock: opts.Clock, quit: make(chan struct{})}
	if m.out == nil {
		m.out = os.Stderr
	}
	if m.clock == nil {
		m.clock = realClock{}
	}
	m.start = m.clock.Now()
	m.total.Store(max(total, 0))
	mode := opts.Mode
	if mode == Auto {
		mode = Plain
		if IsTerminal(m.out) {
			mode = Bar
		}
	}
	every := barEvery
	switch mode {
	case Off:
		return m
	case Bar:
		m.bar = progressbar.NewOptions64(barMax(total),
			progressbar.OptionSetWriter(m.out),
			progressbar.OptionSetDescription("ckpt: "+label),
			progressbar.OptionShowBytes(true),
			progressbar.OptionShowCount(),
			progressbar.OptionUseIECUnits(true),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetWidth(30),
			progressbar.OptionSetRenderBlankState(true),
		)
	default:
		if every = opts.Interval; every <= 0 {
			var err error
			if every, err = Interval(); err != nil {
				fmt.Fprintf(m.out, "ckpt: %v; using %s\n", err, DefaultInterval)
				every = DefaultInterval
			}
		}
	}
	m.ticker = m.clock.NewTicker(every)
	m.wg.Add(1)
	go m.show()
	return m
}

func barMax(total int64) int64 {
	if total <= 0 {
		return -1 // a spinner until the total is known
	}
	return total
}

// Add counts n more bytes done. It only adds to a counter: the display
// is redrawn by the Meter's own goroutine.
func (m *Meter) Add(n int64) { m.done.Add(n) }

// Set says that n bytes are done in all (a count polled from elsewhere).
func (m *Meter) Set(n int64) { m.done.Store(n) }

// SetTotal changes the bytes the work is expected to take.
func (m *Meter) SetTotal(n int64) {
	if m.total.Swap(n) == n {
		return
	}
	if m.bar != nil {
		m.bar.ChangeMax64(barMax(n))
	}
}

// show redraws the bar, or writes a Plain line, at every tick.
func (m *Meter) show() {
	defer m.wg.Done()
	for {
		select {
		case <-m.quit:
			return
		case <-m.ticker.C():
			if m.bar != nil {
				// Below the total until Stop: a bar that reaches it is
				// finished for good, and a total may still grow.
				v := m.done.Load()
				if t := m.total.Load(); t > 0 {
					v = min(v, t-1)
				}
				m.bar.Set64(v)
			} else {
				fmt.Fprintln(m.out, m.Line())
			}
		}
	}
}

// Line is the Plain line for the count so far: "ckpt: put heat: 120.0 MiB
// of 300.0 MiB (40%), 85.2 MB/s, ETA 2s".
func (m *Meter) Line() string {
	done, total := m.done.Load(), m.total.Load()
	elapsed := m.clock.Now().Sub(m.start)
	s := "ckpt: " + m.label + ": " + storage.FormatSize(done)
	if total > 0 {
		s += fmt.Sprintf(" of %s (%d%%)", storage.FormatSize(total), min(100, done*100/total))
	}
	s += ", " + Rate(done, elapsed)
	if total > 0 && done > 0 && done < total && elapsed > 0 {
		left := time.Duration(float64(elapsed) * float64(total-done) / float64(done))
		s += ", ETA " + roundETA(left).String()
	}
	return s
}

func roundETA(d time.Duration) time.Duration {
	if d < 10*time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Second)
}

// Stop ends the display (a bar keeps its last state on its line) and
// returns what was measured. Later calls return the same Result.
func (m *Meter) Stop() Result {
	m.once.Do(func() {
		if m.ticker != nil {
			m.ticker.Stop()
			close(m.quit)
			m.wg.Wait()
		}
		m.res = Result{Bytes: m.done.Load(), Elapsed: m.clock.Now().Sub(m.start)}
		if m.bar != nil {
			// Never throttled: the bar has no throttle of its own.
			if t := m.total.Load(); t > 0 && m.res.Bytes >= t {
				m.bar.Finish()
			} else {
				m.bar.Set64(m.res.Bytes)
				m.bar.Exit()
			}
			fmt.Fprintln(m.out)
		}
	})
	return m.res
}

// Result is what a Meter measured.
type Result struct {
	Bytes   int64
	Elapsed time.Duration
}

// Rate is the Result's average rate, "85.2 MB/s".
func (r Result) Rate() string { return Rate(r.Bytes, r.Elapsed) }

// Took is the elapsed time, rounded for people: "310ms", "3.5s", "42s".
func (r Result) Took() time.Duration {
	if r.Elapsed < time.Second {
		return r.Elapsed.Round(time.Millisecond)
	}
	return roundETA(r.Elapsed)
}

// String is "300.0 MiB in 3.5s, 89.9 MB/s".
func (r Result) String() string {
	return fmt.Sprintf("%s in %s, %s", storage.FormatSize(r.Bytes), r.Took(), r.Rate())
}

// Rate formats bytes per elapsed time in decimal megabytes per second.
func Rate(bytes int64, elapsed time.Duration) string {
	if elapsed <= 0 {
		return "0.0 MB/s"
	}
	return fmt.Sprintf("%.1f MB/s", float64(bytes)/1e6/elapsed.Seconds())
}
