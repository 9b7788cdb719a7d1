package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/ckptio/ckptio/bench/internal/workload"
	"github.com/ckptio/ckptio/storage"
)

// posixRun is what posixbench measured over the steps.
type posixRun struct {
	Steps     []workload.Step   `json:"steps"`
	Read      workload.ReadBack `json:"read"`
	PeakKiB   int64             `json:"peak_rss_kib"` // largest over ranks and steps
	Checksums []string          `json:"checksums"`    // of the full state, per rank
}

// mpiioRun is mpiiobench's RESULT line.
type mpiioRun struct {
	Steps     []workload.Step   `json:"steps"`
	Read      workload.ReadBack `json:"read"`
	Memory    workload.Memory   `json:"memory"`
	Checksums []string          `json:"checksums"`
}

// resticStep is one backup: its wall time is the time to durable (restic
// fsyncs its pack files); the application is not blocked by it, but the
// files it reads were first written as in POSIX N-N.
type resticStep struct {
	Name     string  `json:"name"`
	Durable  float64 `json:"durable_s"`
	Logical  int64   `json:"logical_bytes"`
	Written  int64   `json:"written_bytes"` // growth of the repository on disk
	Snapshot string  `json:"snapshot"`
}

type resticRun struct {
	Version string            `json:"version"`
	Steps   []resticStep      `json:"steps"`
	Restore workload.ReadBack `json:"restore"`
}

type systems struct {
	Posix       *posixRun        `json:"posix_nn"`
	MPIIO       *mpiioRun        `json:"mpiio"`
	Restic      *resticRun       `json:"restic,omitempty"`
	CkptioSync  *workload.Ckptio `json:"ckptio_sync"`
	CkptioAsync *workload.Ckptio `json:"ckptio_async"`
}

type setting struct {
	Label         string    `json:"label"`
	Ranks         int       `json:"ranks"`
	BytesPerRank  int64     `json:"bytes_per_rank"`
	TotalBytes    int64     `json:"total_bytes"`
	PieceBytes    int       `json:"changed_piece_bytes"`
	Steps         []string  `json:"steps"`
	Fractions     []float64 `json:"fractions_changed"`
	Stores        int       `json:"ckptio_stores"`
	ReplicasAsked int       `json:"ckptio_replicas_asked"`
	Seed          uint64    `json:"seed"`
	DropCaches    bool      `json:"page_cache_dropped_before_reads"`
	Work          string    `json:"work_dir"`
	GOGC          string    `json:"gogc"`       // as the ranks see it; "" = Go's default (100)
	GOMEMLIMIT    string    `json:"gomemlimit"` // "" = none
}

type machine struct {
	CPU       string `json:"cpu"`
	Cores     int    `json:"cores"`
	MemoryGiB int64  `json:"memory_gib"`
	Kernel    string `json:"kernel"`
	Go        string `json:"go"`
	MPI       string `json:"mpi"`
	DiskFree  string `json:"disk_free"`
	Date      string `json:"date"`
	Root      bool   `json:"root"`
	Limits    limits `json:"limits"` // measured at the start of the run
}

// target is one of the goals in docs/benchmarks.md.
type target struct {
	Name    string   `json:"name"`
	Field   string   `json:"field"`
	Limit   float64  `json:"limit"`
	Value   *float64 `json:"value"`
	Met     *bool    `json:"met"`
	Applies bool     `json:"applies"` // false when the setting is not the one the target is stated for
}

// report is results.json. The top-level ratios use ckptio's default,
// asynchronous mode; ratios holds every figure's ratio to POSIX N-N.
type report struct {
	AsyncBlockedVsPosix   *float64 `json:"async_blocked_vs_posix"`
	FullDurableVsPosix    *float64 `json:"full_durable_vs_posix"`
	FullDurableVsMPIIO    *float64 `json:"full_durable_vs_mpiio"`
	Incr10DurableVsFull   *float64 `json:"incr10_durable_vs_full"`
	Incr10DurableVsRestic *float64 `json:"incr10_durable_vs_restic"`
	LeaderRSSOverBoundMiB *float64 `json:"leader_rss_over_bound_mib"`
	// Incr10HashSeconds: the slowest rank's time finding what changed
	// in the 10%-changed checkpoint; FullHashSeconds the same in the
	// full one (every block hashed).
	Incr10HashSeconds *float64 `json:"incr10_hash_seconds"`
	FullHashSeconds   *float64 `json:"full_hash_seconds"`
	// RestoreVsPosixRead: Restore of the full version against the POSIX
	// N-N read-back, the page cache dropped before both.
	RestoreVsPosixRead *float64 `json:"restore_vs_posix_read"`

	Targets    []target            `json:"targets"`
	Ratios     map[string]*float64 `json:"ratios"`
	Leader     []leaderMemory      `json:"leader_memory"`
	Identical  bool                `json:"workload_identical"` // every program's full state had the same checksums
	Setting    setting             `json:"setting"`
	Machine    machine             `json:"machine"`
	Systems    systems             `json:"systems"`
	ProfileTop map[string]string   `json:"profile_top,omitempty"`
	Notes      []string            `json:"notes"`
	Seconds    float64             `json:"run_seconds"`
}

// leaderMemory is the leader RSS figure of one ckptio mode, in MiB.
type leaderMemory struct {
	Mode         string  `json:"mode"`
	Rank         int     `json:"rank"`
	PeakMiB      float64 `json:"peak_rss_mib"`        // VmHWM over checkpoints and restore
	WritePeakMiB float64 `json:"checkpoint_peak_mib"` // VmHWM over the three checkpoints
	ReadPeakMiB  float64 `json:"restore_peak_mib"`    // VmHWM during the restore
	BaselineMiB  float64 `json:"baseline_rss_mib"`    // RSS after generating the data, before Open
	HeldMiB      float64 `json:"held_mib"`            // its regions plus its asynchronous copy
	BoundMiB     float64 `json:"bound_mib"`           // CKPT_LEADER_MEMORY
	OverBoundMiB float64 `json:"over_bound_mib"`      // PeakMiB - HeldMiB - BoundMiB
	VsPosix      float64 `json:"peak_vs_posix_rank"`  // PeakMiB / the largest POSIX rank's peak
}

const mib = 1 << 20

func ratio(a, b float64) *float64 {
	if b <= 0 || math.IsNaN(a) || math.IsNaN(b) {
		return nil
	}
	r := math.Round(a/b*1000) / 1000
	return &r
}

func val(v float64) *float64 { r := math.Round(v*100) / 100; return &r }

func (r *report) compute() {
	s := r.Systems
	p := s.Posix
	r.Ratios = map[string]*float64{}
	for _, c := range []*workload.Ckptio{s.CkptioSync, s.CkptioAsync} {
		if c == nil {
			continue
		}
		for i, st := range c.Steps {
			pre := c.Mode + "_" + st.Name
			r.Ratios[pre+"_blocked_vs_posix"] = ratio(st.Blocked, p.Steps[i].Durable)
			r.Ratios[pre+"_durable_vs_posix"] = ratio(st.Durable, p.Steps[i].Durable)
			r.Ratios[pre+"_durable_vs_mpiio"] = ratio(st.Durable, s.MPIIO.Steps[i].Durable)
			r.Ratios[pre+"_written_vs_posix"] = ratio(float64(st.Written), float64(p.Steps[i].Written))
			if s.Restic != nil {
				r.Ratios[pre+"_durable_vs_restic"] = ratio(st.Durable, s.Restic.Steps[i].Durable)
			}
		}
		r.Ratios[c.Mode+"_restore_vs_posix_read"] = ratio(c.Restore.Seconds, p.Read.Seconds)
		r.Ratios[c.Mode+"_incr10_durable_vs_full"] = ratio(c.Steps[1].Durable, c.Steps[0].Durable)
		r.Ratios[c.Mode+"_incr1_durable_vs_full"] = ratio(c.Steps[2].Durable, c.Steps[0].Durable)
		r.Leader = append(r.Leader, leaderOf(c, p))
	}
	for i, st := range s.MPIIO.Steps {
		r.Ratios["mpiio_"+st.Name+"_durable_vs_posix"] = ratio(st.Durable, p.Steps[i].Durable)
	}
	r.Ratios["mpiio_read_vs_posix_read"] = ratio(s.MPIIO.Read.Seconds, p.Read.Seconds)
	if s.Restic != nil {
		for i, st := range s.Restic.Steps {
			r.Ratios["restic_"+st.Name+"_durable_vs_posix"] = ratio(st.Durable, p.Steps[i].Durable)
			r.Ratios["restic_"+st.Name+"_written_vs_posix"] = ratio(float64(st.Written), float64(p.Steps[i].Written))
		}
		r.Ratios["restic_restore_vs_posix_read"] = ratio(s.Restic.Restore.Seconds, p.Read.Seconds)
	}
	a := s.CkptioAsync
	if a != nil {
		r.AsyncBlockedVsPosix = ratio(a.Steps[0].Blocked, p.Steps[0].Durable)
		r.FullDurableVsPosix = ratio(a.Steps[0].Durable, p.Steps[0].Durable)
		r.FullDurableVsMPIIO = ratio(a.Steps[0].Durable, s.MPIIO.Steps[0].Durable)
		r.Incr10DurableVsFull = ratio(a.Steps[1].Durable, a.Steps[0].Durable)
		r.FullHashSeconds, r.Incr10HashSeconds = val(a.Steps[0].HashSeconds), val(a.Steps[1].HashSeconds)
		r.RestoreVsPosixRead = ratio(a.Restore.Seconds, p.Read.Seconds)
		if s.Restic != nil {
			r.Incr10DurableVsRestic = ratio(a.Steps[1].Durable, s.Restic.Steps[1].Durable)
		}
	}
	for _, l := range r.Leader {
		if r.LeaderRSSOverBoundMiB == nil || l.OverBoundMiB > *r.LeaderRSSOverBoundMiB {
			r.LeaderRSSOverBoundMiB = val(l.OverBoundMiB)
		}
	}
	r.Identical = p.Checksums != nil && equal(p.Checksums, s.MPIIO.Checksums)
	for _, c := range []*workload.Ckptio{s.CkptioSync, s.CkptioAsync} {
		if c != nil {
			r.Identical = r.Identical && equal(p.Checksums, c.Checksums)
		}
	}
	at4 := r.Setting.TotalBytes >= 4<<30
	r.Targets = []target{
		newTarget("asynchronous checkpoint blocks the application <= 0.1x POSIX write+fsync", "async_blocked_vs_posix", 0.1, r.AsyncBlockedVsPosix, true),
		newTarget("full checkpoint durable <= 1.1x POSIX N-N", "full_durable_vs_posix", 1.1, r.FullDurableVsPosix, true),
		newTarget("full checkpoint durable <= 1.0x MPI-IO", "full_durable_vs_mpiio", 1.0, r.FullDurableVsMPIIO, true),
		newTarget("restore <= 1.5x the POSIX N-N read-back", "restore_vs_posix_read", 1.5, r.RestoreVsPosixRead, true),
		newTarget("10%-changed checkpoint durable <= 0.2x the full one", "incr10_durable_vs_full", 0.2, r.Incr10DurableVsFull, true),
		newTarget("10%-changed checkpoint durable <= 0.5x restic's incremental backup", "incr10_durable_vs_restic", 0.5, r.Incr10DurableVsRestic, true),
		newTarget("leader peak RSS <= bound + 64 MiB (beyond the data it holds) at 4 GiB", "leader_rss_over_bound_mib", 64, r.LeaderRSSOverBoundMiB, at4),
	}
}

func newTarget(name, field string, limit float64, v *float64, applies bool) target {
	t := target{Name: name, Field: field, Limit: limit, Value: v, Applies: applies}
	if v != nil {
		met := *v <= limit
		t.Met = &met
	}
	return t
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// leaderOf computes the leader figure of one ckptio run: the leader with
// the largest peak.
func leaderOf(c *workload.Ckptio, p *posixRun) leaderMemory {
	best := leaderMemory{Mode: c.Mode, Rank: -1, OverBoundMiB: math.Inf(-1)}
	for _, r := range c.Leaders {
		if r >= len(c.PeakKiB) || r >= len(c.RestorePeak) {
			continue
		}
		l := leaderMemory{Mode: c.Mode, Rank: r,
			WritePeakMiB: float64(c.PeakKiB[r]) / 1024, ReadPeakMiB: float64(c.RestorePeak[r]) / 1024,
			HeldMiB: float64(c.RegionBytes+c.StagingBytes) / mib, BoundMiB: float64(c.LeaderMemory) / mib}
		if r < len(c.BaselineKiB) {
			l.BaselineMiB = float64(c.BaselineKiB[r]) / 1024
		}
		l.PeakMiB = max(l.WritePeakMiB, l.ReadPeakMiB)
		l.OverBoundMiB = l.PeakMiB - l.HeldMiB - l.BoundMiB
		if p.PeakKiB > 0 {
			l.VsPosix = math.Round(l.PeakMiB/(float64(p.PeakKiB)/1024)*1000) / 1000
		}
		if l.OverBoundMiB > best.OverBoundMiB {
			best = l
		}
	}
	if best.Rank < 0 {
		best.OverBoundMiB = 0
	}
	return best
}

func (r *report) json() []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	enc.Encode(r)
	return b.Bytes()
}

func f3(v float64) string { return fmt.Sprintf("%.3f", v) }
func x(v *float64) string {
	if v == nil {
		return "—"
	}
	return fmt.Sprintf("%.2fx", *v)
}
func mb(n int64) string { return fmt.Sprintf("%.1f", float64(n)/mib) }

// markdown is results.md: the tables the README can include.
func (r *report) markdown() string {
	var b strings.Builder
	s, p := r.Systems, r.Systems.Posix
	st := r.Setting
	fmt.Fprintf(&b, "<!-- generated by bench/harness (make %s); see docs/benchmarks.md -->\n", st.Label)
	fmt.Fprintf(&b, "One run of `make %s`: %d MPI ranks x %s = %s per checkpoint; full, then %.0f%% and %.0f%% of the 64 KiB pieces changed. "+
		"%s, %d cores, %d GiB; %s. Page cache dropped before read-backs: %v. Ratios are to POSIX N-N in the same run.\n\n",
		st.Label, st.Ranks, storage.FormatSize(st.BytesPerRank), storage.FormatSize(st.TotalBytes), st.Fractions[1]*100, st.Fractions[2]*100,
		r.Machine.CPU, r.Machine.Cores, r.Machine.MemoryGiB, r.Machine.MPI, st.DropCaches)
	b.WriteString("| system | step | app blocked (s) | vs POSIX | durable (s) | vs POSIX | to disk (MiB) | vs POSIX |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|\n")
	for i, ps := range p.Steps {
		fmt.Fprintf(&b, "| POSIX N-N | %s | %s | 1.00x | %s | 1.00x | %s | 1.00x |\n", ps.Name, f3(ps.Blocked), f3(ps.Durable), mb(ps.Written))
		m := s.MPIIO.Steps[i]
		fmt.Fprintf(&b, "| MPI-IO | %s | %s | %s | %s | %s | %s | %s |\n", m.Name, f3(m.Blocked), x(ratio(m.Blocked, ps.Durable)),
			f3(m.Durable), x(ratio(m.Durable, ps.Durable)), mb(m.Written), x(ratio(float64(m.Written), float64(ps.Written))))
		if s.Restic != nil {
			rs := s.Restic.Steps[i]
			fmt.Fprintf(&b, "| restic (after the N-N write) | %s | — | — | %s | %s | %s | %s |\n", rs.Name,
				f3(rs.Durable), x(ratio(rs.Durable, ps.Durable)), mb(rs.Written), x(ratio(float64(rs.Written), float64(ps.Written))))
		}
		for _, c := range []*workload.Ckptio{s.CkptioSync, s.CkptioAsync} {
			if c == nil {
				continue
			}
			cs := c.Steps[i]
			fmt.Fprintf(&b, "| ckptio %s | %s | %s | %s | %s | %s | %s | %s |\n", c.Mode, cs.Name, f3(cs.Blocked), x(ratio(cs.Blocked, ps.Durable)),
				f3(cs.Durable), x(ratio(cs.Durable, ps.Durable)), mb(cs.Written), x(ratio(float64(cs.Written), float64(ps.Written))))
		}
	}
	if a := s.CkptioAsync; a != nil && len(a.Steps) > 1 {
		fmt.Fprintf(&b, "\nFinding what changed (ckptio, slowest rank): %ss in the full checkpoint (every block hashed), %ss in the 10%%-changed one (fingerprints, and a hash of the changed blocks only).\n",
			f3(a.Steps[0].HashSeconds), f3(a.Steps[1].HashSeconds))
	}
	b.WriteString("\n| read-back | of | seconds | vs POSIX | page cache dropped | data matches |\n|---|---|---:|---:|---|---|\n")
	fmt.Fprintf(&b, "| POSIX N-N read | %s | %s | 1.00x | %v | %v |\n", p.Read.Of, f3(p.Read.Seconds), p.Read.Dropped, p.Read.Matches)
	fmt.Fprintf(&b, "| MPI-IO read_at_all | %s | %s | %s | %v | %v |\n", s.MPIIO.Read.Of, f3(s.MPIIO.Read.Seconds), x(ratio(s.MPIIO.Read.Seconds, p.Read.Seconds)), s.MPIIO.Read.Dropped, s.MPIIO.Read.Matches)
	if s.Restic != nil {
		rr := s.Restic.Restore
		fmt.Fprintf(&b, "| restic restore | %s | %s | %s | %v | %v |\n", rr.Of, f3(rr.Seconds), x(ratio(rr.Seconds, p.Read.Seconds)), rr.Dropped, rr.Matches)
	}
	for _, c := range []*workload.Ckptio{s.CkptioSync, s.CkptioAsync} {
		if c != nil {
			fmt.Fprintf(&b, "| ckptio %s Restore | %s | %s | %s | %v | %v |\n", c.Mode, c.Restore.Of, f3(c.Restore.Seconds), x(ratio(c.Restore.Seconds, p.Read.Seconds)), c.Restore.Dropped, c.Restore.Matches)
		}
	}
	b.WriteString(stagesTable(s, p, r.Machine.Limits))
	b.WriteString("\n| memory | peak RSS (MiB) | vs POSIX rank | data held (MiB) | bound (MiB) | over bound (MiB) |\n|---|---:|---:|---:|---:|---:|\n")
	fmt.Fprintf(&b, "| POSIX N-N, largest rank | %.1f | 1.00x | %s | | |\n", float64(p.PeakKiB)/1024, mb(st.BytesPerRank))
	for _, l := range r.Leader {
		fmt.Fprintf(&b, "| ckptio %s, leader (rank %d) | %.1f | %.2fx | %.1f | %.0f | %.1f |\n", l.Mode, l.Rank, l.PeakMiB, l.VsPosix, l.HeldMiB, l.BoundMiB, l.OverBoundMiB)
	}
	b.WriteString("\n| target | measured | met |\n|---|---:|---|\n")
	for _, t := range r.Targets {
		met := "—"
		if t.Met != nil {
			met = map[bool]string{true: "yes", false: "no"}[*t.Met]
		}
		if !t.Applies {
			met += " (stated for 4 GiB; this run is " + storage.FormatSize(st.TotalBytes) + ")"
		}
		v := "—"
		if t.Value != nil {
			v = fmt.Sprintf("%.3g", *t.Value)
			if t.Field == "leader_rss_over_bound_mib" {
				v += " MiB"
			} else {
				v += "x"
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", t.Name, v, met)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "\nNote: %s\n", n)
	}
	return b.String()
}

func describeMachine(ctx context.Context, work string) machine {
	m := machine{Cores: runtime.NumCPU(), Go: runtime.Version(), Date: time.Now().UTC().Format(time.RFC3339), Root: os.Geteuid() == 0}
	var err error
	if m.Limits, err = measureLimits(256 << 20); err != nil {
		fmt.Println("harness: measuring the machine's limits:", err)
	}
	if raw, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(raw), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				m.CPU = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if raw, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(raw))
	}
	if raw, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kib int64
		fmt.Sscanf(string(raw), "MemTotal: %d kB", &kib)
		m.MemoryGiB = (kib + 1<<19) >> 20
	}
	if out, err := capture(ctx, 30*time.Second, os.Environ(), "mpirun", "--version"); err == nil {
		m.MPI = strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	}
	var fs syscall.Statfs_t
	if syscall.Statfs(work, &fs) == nil {
		m.DiskFree = storage.FormatSize(int64(fs.Bavail) * int64(fs.Bsize))
	}
	return m
}

// profileTops summarizes the leaders' CPU profiles with go tool pprof -top
// and saves each summary beside its profile.
func profileTops(ctx context.Context, dir string, runs ...*workload.Ckptio) map[string]string {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "go" // reported by the first pprof run
	}
	out := map[string]string{}
	for _, c := range runs {
		if c == nil {
			continue
		}
		for _, r := range c.Leaders {
			if r >= len(c.ProfileFiles) {
				continue
			}
			prof := c.ProfileFiles[r]
			top, err := capture(ctx, 2*time.Minute, os.Environ(), goBin, "tool", "pprof", "-top", "-nodecount=30", prof)
			if err != nil {
				fmt.Println("    pprof:", err)
				continue
			}
			top = bytes.TrimSpace(top)
			name := fmt.Sprintf("%s-rank-%d", c.Mode, r)
			out[name] = string(top)
			os.WriteFile(filepath.Join(dir, "top-"+name+".txt"), append(top, '\n'), 0o644)
		}
	}
	return out
}

// stagesTable is where the time of ckptio's full checkpoint and restore
// went, with the machine's limits beside it: cores x wall is all the CPU
// there was, POSIX N-N the disk's write and read time for the same bytes.
func stagesTable(s systems, p *posixRun, l limits) string {
	var b strings.Builder
	b.WriteString("\nWhere the time goes (ckptio; CPU in CPU-seconds, rank 0 is the leader):\n\n" +
		"| operation | wall (s) | CPU there was (cores x wall) | machine busy | iowait | ranks | leader | stores | manager | page faults (stores, ranks) | store fdatasync (s, count) | leader in MPI (s) | leader waiting for stores (s) |\n" +
		"|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, c := range []*workload.Ckptio{s.CkptioSync, s.CkptioAsync} {
		if c == nil {
			continue
		}
		for _, op := range []struct {
			name string
			d    workload.Breakdown
		}{{"full checkpoint", c.FullStages}, {"10%-changed checkpoint", c.Incr10Stages}, {"restore", c.RestoreStages}} {
			d := op.d
			fmt.Fprintf(&b, "| %s %s | %s | %s | %s | %s | %s | %s | %s | %s | %d, %d | %s, %d | %s | %s |\n", c.Mode, op.name,
				f3(d.Wall), f2(float64(d.Cores)*d.Wall), f2(d.MachineBusy), f2(d.MachineIOWait), f2(d.RanksCPU), f2(d.LeaderCPU),
				f2(d.StoresCPU), f2(d.ManagerCPU), d.StoresFaults, d.RanksFaults, f2(d.Fdatasync), d.Fdatasyncs, f3(d.LeaderMPI), f3(d.LeaderStores))
		}
	}
	fmt.Fprintf(&b, "\nThe machine, for the same bytes (%s): the disk (POSIX N-N) wrote and fsynced them in %ss and read them back in %ss; "+
		"loopback TCP moves them in %ss at %s CPU-s (%.2f GB/s, %.2f CPU-s per GiB, both ends); BLAKE3 hashes them in %ss on one core (%.2f GB/s), memcpy copies them in %ss (%.1f GB/s), or in %ss into memory touched for the first time (%.2f GB/s, page faults).\n",
		mb(p.Steps[0].Logical)+" MiB", f3(p.Steps[0].Durable), f3(p.Read.Seconds),
		f3(per(p.Steps[0].Logical, l.TCPGBs)), f2(l.TCPCPUPerGiB*float64(p.Steps[0].Logical)/(1<<30)), l.TCPGBs, l.TCPCPUPerGiB,
		f3(per(p.Steps[0].Logical, l.Blake3GBs)), l.Blake3GBs, f3(per(p.Steps[0].Logical, l.MemcpyGBs)), l.MemcpyGBs,
		f3(per(p.Steps[0].Logical, l.FirstTouchGBs)), l.FirstTouchGBs)
	return b.String()
}

func f2(v float64) string { return fmt.Sprintf("%.2f", v) }

// per is the seconds n bytes take at gbs GB/s (0 when unmeasured).
func per(n int64, gbs float64) float64 {
	if gbs <= 0 {
		return 0
	}
	return float64(n) / gbs / 1e9
}
