package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ckptio/ckptio/storage"
)

// The sink protocol: the client's first byte picks the mode. 'e' echoes
// every following byte back (round-trip times); 'd' discards everything up
// to the client's half-close, then answers the byte count as 8 bytes little
// endian, so the sender's clock stops only once the bytes have arrived.
const (
	modeEcho    = 'e'
	modeDiscard = 'd'
)

// sinkCmd serves the sink protocol on --listen until --for has passed.
func sinkCmd(args []string) error {
	fs := flag.NewFlagSet("sink", flag.ExitOnError)
	listen := fs.String("listen", "", "address to serve on, HOST:PORT")
	life := fs.Duration("for", 2*time.Minute, "stop after this long")
	fs.Parse(args)
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	defer ln.Close()
	deadline := time.Now().Add(*life)
	ln.(*net.TCPListener).SetDeadline(deadline)
	fmt.Printf("listening on %s\n", ln.Addr())
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return nil
			}
			return err
		}
		c.SetDeadline(deadline)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			serveSink(c)
		}()
	}
}

func serveSink(c net.Conn) {
	var mode [1]byte
	if _, err := io.ReadFull(c, mode[:]); err != nil {
		return
	}
	switch mode[0] {
	case modeEcho:
		io.Copy(c, c)
	case modeDiscard:
		n, err := io.Copy(io.Discard, c)
		if err != nil {
			return
		}
		var ack [8]byte
		binary.LittleEndian.PutUint64(ack[:], uint64(n))
		c.Write(ack[:])
	}
}

// LinkResult is one raw TCP measurement from the client's namespace.
type LinkResult struct {
	Label     string   `json:"label"`
	To        []string `json:"to"`
	RTTMicros float64  `json:"rtt_us"` // median of 200 one-byte round trips to To[0]
	Bytes     int64    `json:"bytes"`  // sent in all, split evenly over one stream per address
	Seconds   float64  `json:"seconds"`
	MBps      float64  `json:"mbps"`
}

// tcpCmd measures the round-trip time to the first sink and the raw TCP
// rate to all of them at once (one stream each), the ceiling the put runs
// are judged against.
func tcpCmd(args []string) error {
	fs := flag.NewFlagSet("tcp", flag.ExitOnError)
	to := fs.String("to", "", "sink addresses, comma-separated")
	sizeS := fs.String("size", "256MiB", "bytes to send in all")
	label := fs.String("label", "", "name of this measurement in the report")
	out := fs.String("out", "", "JSON Lines file to append the result to")
	timeout := fs.Duration("timeout", time.Minute, "give up after this long")
	fs.Parse(args)
	size, err := storage.ParseSize(*sizeS)
	if err != nil {
		return err
	}
	addrs := strings.Split(*to, ",")
	deadline := time.Now().Add(*timeout)
	rtt, err := roundTrip(addrs[0], deadline)
	if err != nil {
		return err
	}
	per := size / int64(len(addrs))
	buf := make([]byte, 1<<20)
	rand.New(rand.NewSource(1)).Read(buf)
	conns := make([]net.Conn, len(addrs))
	for i, a := range addrs {
		c, err := net.DialTimeout("tcp", a, 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(deadline)
		conns[i] = c
	}
	errs := make([]error, len(conns))
	var wg sync.WaitGroup
	start := time.Now()
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = discard(c, buf, per)
		}()
	}
	wg.Wait()
	took := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return err
	}
	r := LinkResult{Label: *label, To: addrs, RTTMicros: rtt, Bytes: per * int64(len(addrs)),
		Seconds: took.Seconds(), MBps: mbps(per*int64(len(addrs)), took)}
	fmt.Printf("tcp %-28s %d stream(s): %7.1f MB/s, rtt %.0f us\n", *label, len(addrs), r.MBps, r.RTTMicros)
	return appendJSON(*out, r)
}

// discard sends n bytes to a sink in discard mode and waits for its count.
func discard(c net.Conn, buf []byte, n int64) error {
	if _, err := c.Write([]byte{modeDiscard}); err != nil {
		return err
	}
	for sent := int64(0); sent < n; {
		k := min(int64(len(buf)), n-sent)
		if _, err := c.Write(buf[:k]); err != nil {
			return err
		}
		sent += k
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return err
	}
	var ack [8]byte
	if _, err := io.ReadFull(c, ack[:]); err != nil {
		return fmt.Errorf("waiting for the sink's count: %w", err)
	}
	if got := int64(binary.LittleEndian.Uint64(ack[:])); got != n {
		return fmt.Errorf("sink counted %d bytes, sent %d", got, n)
	}
	return nil
}

// roundTrip is the median time, in microseconds, of 200 one-byte round
// trips to a sink in echo mode.
func roundTrip(addr string, deadline time.Time) (float64, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(deadline)
	if _, err := c.Write([]byte{modeEcho}); err != nil {
		return 0, err
	}
	var b [1]byte
	var rtts []float64
	for range 200 {
		start := time.Now()
		if _, err := c.Write(b[:]); err != nil {
			return 0, err
		}
		if _, err := io.ReadFull(c, b[:]); err != nil {
			return 0, err
		}
		rtts = append(rtts, float64(time.Since(start).Nanoseconds())/1e3)
	}
	slices.Sort(rtts)
	return rtts[len(rtts)/2], nil
}

// DiskResult is the rate of this machine's disk, where the stores keep
// their blocks.
type DiskResult struct {
	Bytes   int64   `json:"bytes"`
	Seconds float64 `json:"seconds"`
	MBps    float64 `json:"mbps"`
}

// diskCmd writes --size bytes to a file in --dir and fdatasyncs it.
func diskCmd(args []string) error {
	fs := flag.NewFlagSet("disk", flag.ExitOnError)
	dir := fs.String("dir", "", "directory on the disk the stores use")
	sizeS := fs.String("size", "512MiB", "bytes to write")
	out := fs.String("out", "", "JSON file to write the result to")
	fs.Parse(args)
	size, err := storage.ParseSize(*sizeS)
	if err != nil {
		return err
	}
	pool := make([]byte, 64<<20)
	rand.New(rand.NewSource(2)).Read(pool)
	path := filepath.Join(*dir, "disk.bin")
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer os.Remove(path)
	defer f.Close()
	start := time.Now()
	for w := int64(0); w < size; w += int64(len(pool)) {
		if _, err := f.Write(pool[:min(int64(len(pool)), size-w)]); err != nil {
			return err
		}
	}
	if err := f.Sync(); err != nil {
		return err
	}
	took := time.Since(start)
	r := DiskResult{Bytes: size, Seconds: took.Seconds(), MBps: mbps(size, took)}
	fmt.Printf("disk write + fdatasync: %.0f MB/s\n", r.MBps)
	return writeJSON(*out, r)
}
