package main

import (
	"fmt"
	"io"
	"net"
	"time"

	"github.com/ckptio/ckptio/bench/internal/workload"
	"github.com/ckptio/ckptio/storage"
)

// limits is what this machine's parts can do, measured at the start of
// the run, for the breakdown of where ckptio's time goes: each stage's
// rate and what it costs in CPU.
type limits struct {
	// Loopback TCP, one stream, 1 MiB writes: rate, and CPU-seconds
	// per GiB for both ends together.
	TCPGBs       float64 `json:"tcp_loopback_gb_s"`
	TCPCPUPerGiB float64 `json:"tcp_loopback_cpu_s_per_gib"`
	// BLAKE3 of 64 KiB blocks and memcpy, one core; and memcpy into
	// memory never touched before, page faults included.
	Blake3GBs     float64 `json:"blake3_64k_gb_s"`
	MemcpyGBs     float64 `json:"memcpy_gb_s"`
	FirstTouchGBs float64 `json:"first_touch_gb_s"`
}

// measureLimits measures limits over size bytes each.
func measureLimits(size int) (limits, error) {
	var l limits
	buf := make([]byte, size)
	for i := range buf {
		buf[i] = byte(i*7 + i>>9)
	}
	// memcpy
	dst := make([]byte, size)
	t := time.Now()
	copy(dst, buf)
	l.FirstTouchGBs = gbs(size, time.Since(t))
	t = time.Now()
	for range 4 {
		copy(dst, buf)
	}
	l.MemcpyGBs = gbs(4*size, time.Since(t))
	// BLAKE3, in blocks as the ranks and stores hash them
	t = time.Now()
	for off := 0; off < size; off += 64 << 10 {
		storage.Sum(buf[off:min(off+64<<10, size)])
	}
	l.Blake3GBs = gbs(size, time.Since(t))
	// loopback TCP
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return l, err
	}
	defer ln.Close()
	got := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- err
			return
		}
		defer c.Close()
		_, err = io.CopyBuffer(io.Discard, c, make([]byte, 1<<20))
		got <- err
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return l, err
	}
	cpu0, _ := workload.SelfCPU()
	t = time.Now()
	for off := 0; off < size; off += 1 << 20 {
		if _, err := c.Write(buf[off:min(off+1<<20, size)]); err != nil {
			c.Close()
			return l, err
		}
	}
	c.Close()
	if err := <-got; err != nil {
		return l, fmt.Errorf("loopback TCP: %w", err)
	}
	took := time.Since(t)
	l.TCPGBs = gbs(size, took)
	cpu1, _ := workload.SelfCPU()
	l.TCPCPUPerGiB = (cpu1 - cpu0) / (float64(size) / (1 << 30))
	return l, nil
}

func gbs(n int, d time.Duration) float64 { return float64(n) / d.Seconds() / 1e9 }
