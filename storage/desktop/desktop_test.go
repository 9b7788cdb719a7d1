package desktop_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/ckptio/ckptio/storage/desktop"
)

func TestQuietHours(t *testing.T) {
	at := func(hm string) time.Time {
		tm, err := time.ParseInLocation("15:04", hm, time.Local)
		if err != nil {
			t.Fatal(err)
		}
		return time.Date(2026, 3, 14, tm.Hour(), tm.Minute(), 30, 0, time.Local)
	}
	for _, c := range []struct {
		window string
		in     []string
		out    []string
	}{
		{"09:00-17:30", []string{"09:00", "12:00", "17:29"}, []string{"08:59", "17:30", "23:00", "00:00"}},
		{"22:00-07:00", []string{"22:00", "23:59", "00:00", "06:59"}, []string{"07:00", "12:00", "21:59"}},
		{"00:00-00:01", []string{"00:00"}, []string{"00:01", "23:59"}},
	} {
		q, err := desktop.ParseQuietHours(c.window)
		if err != nil {
			t.Fatalf("%s: %v", c.window, err)
		}
		if q.String() != c.window {
			t.Errorf("String() = %s, want %s", q, c.window)
		}
		for _, hm := range c.in {
			if !q.Contains(at(hm)) {
				t.Errorf("%s does not contain %s", c.window, hm)
			}
		}
		for _, hm := range c.out {
			if q.Contains(at(hm)) {
				t.Errorf("%s contains %s", c.window, hm)
			}
		}
	}
}

func TestParseQuietHoursRefuses(t *testing.T) {
	for _, s := range []string{"", "22:00", "22-07", "24:00-07:00", "22:60-07:00", "22:00-22:00", "9:5-10:00", "a:00-b:00"} {
		if _, err := desktop.ParseQuietHours(s); err == nil || !strings.Contains(err.Error(), "quiet hours") {
			t.Errorf("ParseQuietHours(%q) = %v, want an error naming the quiet hours", s, err)
		}
	}
}

const statFile = `cpu  100 0 100 700 100 0 0 0 0 0
cpu0 50 0 50 350 50 0 0 0 0 0
intr 1234
`

const diskFile = `   7       0 loop0 9 0 0 0 0 0 0 0 0 0 900 0 0
   8       0 sda 10 0 80 5 20 0 160 10 0 %d 15 0 0 0 0
   8       1 sda1 10 0 80 5 20 0 160 10 0 %d 15 0 0 0 0
 259       0 nvme0n1 1 0 8 1 1 0 8 1 0 %d 2
`

func TestParsers(t *testing.T) {
	cpu, err := desktop.ParseStat(strings.NewReader(statFile))
	if err != nil || cpu.Total != 1000 || cpu.Idle != 800 {
		t.Fatalf("ParseStat = %+v, %v; want total 1000, idle 800", cpu, err)
	}
	self, err := desktop.ParseSelfStat([]byte("42 (ckpt (store) x) S 1 2 3 4 5 6 7 8 9 10 70 30 0 0 20 0 1 0"))
	if err != nil || self != 100 {
		t.Fatalf("ParseSelfStat = %d, %v; want 100", self, err)
	}
	disks, err := desktop.ParseDiskStats(strings.NewReader(fmt.Sprintf(diskFile, 100, 100, 5)))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := disks["loop0"]; ok || disks["sda"] != 100 || disks["nvme0n1"] != 5 {
		t.Fatalf("ParseDiskStats = %v; want sda 100, nvme0n1 5, no loop0", disks)
	}
	for _, bad := range []string{"", "intr 1\n", "cpu 1 2 x 4 5\n", "cpu 1 2\n"} {
		if _, err := desktop.ParseStat(strings.NewReader(bad)); err == nil {
			t.Errorf("ParseStat(%q) took it", bad)
		}
	}
	if _, err := desktop.ParseDiskStats(strings.NewReader("8 0 sda 1 2\n")); err == nil {
		t.Error("ParseDiskStats took a short line")
	}
	if _, err := desktop.ParseSelfStat([]byte("42 (x) S 1 2")); err == nil {
		t.Error("ParseSelfStat took a short line")
	}
}

// fakeProc is a /proc whose counters a test moves.
type fakeProc struct {
	fs                  fstest.MapFS
	total, idle, self   uint64
	sdaTicks, nvmeTicks uint64
}

func (p *fakeProc) write() {
	p.fs["stat"] = &fstest.MapFile{Data: []byte("cpu  " + strconv.FormatUint(p.total-p.idle, 10) + " 0 0 " + strconv.FormatUint(p.idle, 10) + " 0 0 0 0 0 0\n")}
	p.fs["self/stat"] = &fstest.MapFile{Data: []byte("1 (ckpt-store) S 1 1 1 0 -1 0 0 0 0 0 " + strconv.FormatUint(p.self, 10) + " 0 0 0 20 0 1 0\n")}
	p.fs["diskstats"] = &fstest.MapFile{Data: []byte(fmt.Sprintf(diskFile, p.sdaTicks, p.sdaTicks, p.nvmeTicks))}
}

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func TestMonitorBusyFromProc(t *testing.T) {
	p := &fakeProc{fs: fstest.MapFS{}, total: 1000, idle: 500}
	p.write()
	clk := &fakeClock{t: time.Date(2026, 3, 14, 12, 0, 0, 0, time.Local)}
	m := desktop.NewMonitor(desktop.Options{WhenBusy: true, Threshold: 0.5, Now: clk.now, Proc: p.fs})
	check := func(wantBusy bool, wantReason string) {
		t.Helper()
		busy, reason, err := m.Check()
		if err != nil || busy != wantBusy || !strings.Contains(reason, wantReason) {
			t.Fatalf("Check = %v %q %v; want %v %q", busy, reason, err, wantBusy, wantReason)
		}
	}
	check(false, "") // no interval yet

	// 2s: 200 ticks, 150 busy, of which the store's own 60: 45% busy.
	clk.t = clk.t.Add(2 * time.Second)
	p.total, p.idle, p.self = p.total+200, p.idle+50, p.self+60
	p.sdaTicks += 400 // 20% of 2000ms
	p.write()
	check(false, "")

	// 2s: 200 ticks, 180 busy, none the store's: 90%.
	clk.t = clk.t.Add(2 * time.Second)
	p.total, p.idle = p.total+200, p.idle+20
	p.write()
	check(true, "cpu 90% busy (threshold 50%)")

	// CPU idle, nvme0n1 busy 1500ms of 2000ms.
	clk.t = clk.t.Add(2 * time.Second)
	p.total, p.idle = p.total+200, p.idle+190
	p.nvmeTicks += 1500
	p.write()
	check(true, "disk nvme0n1 75% busy")

	// Both idle again.
	clk.t = clk.t.Add(2 * time.Second)
	p.total, p.idle = p.total+200, p.idle+190
	p.write()
	check(false, "")
}

func TestMonitorQuietHours(t *testing.T) {
	q, err := desktop.ParseQuietHours("22:00-07:00")
	if err != nil {
		t.Fatal(err)
	}
	clk := &fakeClock{t: time.Date(2026, 3, 14, 21, 59, 0, 0, time.Local)}
	// No /proc at all: quiet hours alone never read it.
	m := desktop.NewMonitor(desktop.Options{Quiet: &q, Now: clk.now, Proc: fstest.MapFS{}})
	if busy, _, err := m.Check(); busy || err != nil {
		t.Fatalf("21:59: busy %v, %v", busy, err)
	}
	clk.t = clk.t.Add(time.Minute)
	if busy, reason, err := m.Check(); !busy || reason != "quiet hours 22:00-07:00" || err != nil {
		t.Fatalf("22:00: busy %v %q %v", busy, reason, err)
	}
	clk.t = clk.t.Add(9 * time.Hour)
	if busy, _, _ := m.Check(); busy {
		t.Fatal("07:00: still busy")
	}
}

func TestMonitorReportsUnreadableProc(t *testing.T) {
	m := desktop.NewMonitor(desktop.Options{WhenBusy: true, Proc: fstest.MapFS{}})
	if busy, _, err := m.Check(); busy || err == nil {
		t.Fatalf("Check without /proc = %v, %v; want not busy and an error", busy, err)
	}
}

func TestMonitorOnThisMachine(t *testing.T) {
	m := desktop.NewMonitor(desktop.Options{WhenBusy: true})
	for range 2 {
		if _, _, err := m.Check(); err != nil {
			t.Fatalf("reading this machine's /proc: %v", err)
		}
	}
}
