package workload

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Breakdown is where one ckptio operation's time went (the full
// checkpoint or the restore): counters read on rank 0 before and after it,
// and the leader's own time split. CPU figures are CPU-seconds.
type Breakdown struct {
	Wall  float64 `json:"wall_s"` // the slowest rank
	Cores int     `json:"cores"`
	// Every process on the machine: user+nice+system+irq+softirq, and
	// time the cores sat idle waiting for disk I/O.
	MachineBusy   float64 `json:"machine_busy_cpu_s"`
	MachineIOWait float64 `json:"machine_iowait_cpu_s"`
	RanksCPU      float64 `json:"ranks_cpu_s"`   // all ranks (getrusage), leaders included
	LeaderCPU     float64 `json:"leader_cpu_s"`  // rank 0, a leader
	StoresCPU     float64 `json:"stores_cpu_s"`  // the store daemons (/proc/PID/stat)
	ManagerCPU    float64 `json:"manager_cpu_s"` // the manager daemon
	// Minor page faults (first touches of memory, which cost about
	// 1.6 s per GiB on this machine's VM): the stores', all ranks'.
	StoresFaults int64 `json:"stores_minor_faults"`
	RanksFaults  int64 `json:"ranks_minor_faults"`
	// The stores' fdatasyncs (their ckpt_store_sync_duration_seconds,
	// kind data), summed over stores: time and count.
	Fdatasync  float64 `json:"stores_fdatasync_s"`
	Fdatasyncs int64   `json:"stores_fdatasyncs"`
	// Rank 0's wall time in the rounds' Gatherv or Scatterv, and waiting
	// for the stores (collective.Stages).
	LeaderMPI    float64 `json:"leader_mpi_s"`
	LeaderStores float64 `json:"leader_store_wait_s"`
	// The slowest rank's time finding the changed blocks (checkpoint).
	Hash float64 `json:"hash_s,omitempty"`
}

// Daemons names the cluster's daemons, for Counters: the harness passes
// them to the benchmark in the environment (DaemonsEnv).
type Daemons struct {
	Manager      int
	Stores       []int
	StoreMetrics []string // host:port of each store's /metrics
}

// The environment variables that carry Daemons.
const (
	managerPidEnv   = "CKPT_BENCH_MANAGER_PID"
	storePidsEnv    = "CKPT_BENCH_STORE_PIDS"
	storeMetricsEnv = "CKPT_BENCH_STORE_METRICS"
)

// Env returns d as environment variables for the benchmark program.
func (d Daemons) Env() []string {
	pids := make([]string, len(d.Stores))
	for i, p := range d.Stores {
		pids[i] = strconv.Itoa(p)
	}
	return []string{managerPidEnv + "=" + strconv.Itoa(d.Manager),
		storePidsEnv + "=" + strings.Join(pids, ","),
		storeMetricsEnv + "=" + strings.Join(d.StoreMetrics, ",")}
}

// DaemonsFromEnv reads what Env wrote; zero when unset.
func DaemonsFromEnv() Daemons {
	var d Daemons
	d.Manager, _ = strconv.Atoi(os.Getenv(managerPidEnv))
	for _, f := range strings.Split(os.Getenv(storePidsEnv), ",") {
		if p, err := strconv.Atoi(f); err == nil {
			d.Stores = append(d.Stores, p)
		}
	}
	if v := os.Getenv(storeMetricsEnv); v != "" {
		d.StoreMetrics = strings.Split(v, ",")
	}
	return d
}

// Counters is one reading of what Breakdown subtracts.
type Counters struct {
	busy, iowait    float64
	self            float64
	selfFaults      int64
	stores, manager float64
	storeFaults     int64
	fdatasync       float64
	fdatasyncs      int64
	missing         []string // counters that could not be read
}

// Read takes a reading. self is this process's CPU; the machine's and
// the daemons' are read only when all is set (rank 0).
func (d Daemons) Read(all bool) Counters {
	var c Counters
	c.self, c.selfFaults = SelfCPU()
	if !all {
		return c
	}
	var err error
	if c.busy, c.iowait, err = machineCPU(); err != nil {
		c.missing = append(c.missing, err.Error())
	}
	if d.Manager > 0 {
		if c.manager, _, err = processCPU(d.Manager); err != nil {
			c.missing = append(c.missing, err.Error())
		}
	}
	for _, p := range d.Stores {
		v, faults, err := processCPU(p)
		if err != nil {
			c.missing = append(c.missing, err.Error())
		}
		c.stores += v
		c.storeFaults += faults
	}
	for _, addr := range d.StoreMetrics {
		s, n, err := scrapeSyncs(addr)
		if err != nil {
			c.missing = append(c.missing, err.Error())
		}
		c.fdatasync += s
		c.fdatasyncs += n
	}
	return c
}

// Sub is the Breakdown between readings a (before) and b (after), on rank
// 0; the ranks' and the slowest rank's figures are filled in by the caller.
func Sub(a, b Counters) (Breakdown, []string) {
	return Breakdown{
		Cores:         runtime.NumCPU(),
		MachineBusy:   b.busy - a.busy,
		MachineIOWait: b.iowait - a.iowait,
		LeaderCPU:     b.self - a.self,
		StoresCPU:     b.stores - a.stores,
		StoresFaults:  b.storeFaults - a.storeFaults,
		ManagerCPU:    b.manager - a.manager,
		Fdatasync:     b.fdatasync - a.fdatasync,
		Fdatasyncs:    b.fdatasyncs - a.fdatasyncs,
	}, append(a.missing, b.missing...)
}

// SelfDelta is this process's CPU-seconds and minor page faults between
// a and b.
func SelfDelta(a, b Counters) (float64, int64) { return b.self - a.self, b.selfFaults - a.selfFaults }

// SelfCPU is this process's user and system CPU-seconds, and its minor
// page faults (getrusage).
func SelfCPU() (float64, int64) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0
	}
	return tv(ru.Utime) + tv(ru.Stime), ru.Minflt
}

func tv(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }

// clockTicks is USER_HZ, the unit of /proc's CPU times: 100 on every
// Linux architecture Go runs on.
const clockTicks = 100

// machineCPU reads the first line of /proc/stat: busy and iowait
// CPU-seconds of all cores since boot.
func machineCPU() (busy, iowait float64, err error) {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	v := make([]float64, 8)
	for i := 1; i < 8; i++ {
		n, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/stat: %w", err)
		}
		v[i] = n / clockTicks
	}
	// user nice system idle iowait irq softirq
	return v[1] + v[2] + v[3] + v[6] + v[7], v[5], nil
}

// processCPU is utime+stime of process pid, and its minor page faults.
func processCPU(pid int) (float64, int64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// The command name, in parentheses, may hold spaces: fields count
	// from after its closing one. utime and stime are fields 14 and 15.
	s := string(raw)
	// minflt is field 10.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	faults, err0 := strconv.ParseInt(f[7], 10, 64)
	u, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err0 != nil || err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("/proc/%d/stat: minflt %q utime %q stime %q", pid, f[7], f[11], f[12])
	}
	return (u + st) / clockTicks, faults, nil
}

var metricsClient = &http.Client{Timeout: 5 * time.Second}

// scrapeSyncs reads a store's fdatasync time and count from its metrics.
func scrapeSyncs(addr string) (float64, int64, error) {
	resp, err := metricsClient.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	var sum float64
	var n int64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		switch name {
		case `ckpt_store_sync_duration_seconds_sum{kind="data"}`:
			sum, _ = strconv.ParseFloat(val, 64)
		case `ckpt_store_sync_duration_seconds_count{kind="data"}`:
			n, _ = strconv.ParseInt(val, 10, 64)
		}
	}
	return sum, n, sc.Err()
}
