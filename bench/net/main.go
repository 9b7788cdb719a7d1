// Command netbench measures ckptio's write path over emulated 1 Gbit/s
// links, the setting of stdchk's evaluation: one writer and N stores, each
// in its own network namespace, every link shaped with tc. run.sh builds
// the namespaces and starts the daemons; this program is what runs inside
// them:
//
//	netbench sink   --listen ADDR --for 2m          (in a store's namespace)
//	netbench tcp    --to A,B,... --size 256MiB --out F   (in the client's)
//	netbench disk   --dir D --size 512MiB --out F
//	netbench put    --manager ADDR --token-file F --stores N --windows 1,4,16,64 --replicas 1,2 --out F
//	netbench report --work DIR --out bench/net
//
// put reports two rates per run: application-perceived (bytes handed to the
// writer over the time until the last PutBlock returned, i.e. until the data
// was handed off) and durable (until the version committed, every copy
// acknowledged durable by its store). report turns the files the other
// commands wrote into results.md, results.json and the gnuplot data behind
// bandwidth.png.
//
//	make bench-net          # 512 MiB per run
//	QUICK=1 make bench-net  # 128 MiB per run
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: netbench sink|tcp|disk|put|report [flags] (see bench/net/main.go)")
		os.Exit(2)
	}
	var err error
	args := os.Args[2:]
	switch os.Args[1] {
	case "sink":
		err = sinkCmd(args)
	case "tcp":
		err = tcpCmd(args)
	case "disk":
		err = diskCmd(args)
	case "put":
		err = putCmd(args)
	case "report":
		err = reportCmd(args)
	default:
		err = fmt.Errorf("unknown command %q (want sink, tcp, disk, put or report)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "netbench %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

// mbps is n bytes over d in MB/s (10^6 bytes per second, as link rates are
// counted).
func mbps(n int64, d time.Duration) float64 { return float64(n) / 1e6 / d.Seconds() }

// ints parses a comma-separated list of positive integers.
func ints(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q: want positive integers separated by commas", s)
		}
		out = append(out, n)
	}
	return out, nil
}

// writeJSON writes v to path, indented.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// appendJSON appends v to path as one line (JSON Lines).
func appendJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
