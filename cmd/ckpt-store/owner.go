package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/desktop"
	"github.com/ckptio/ckptio/storage/disk"
	"github.com/ckptio/ckptio/storage/store"
)

// ownerFlags are the desktop owner's say in what the store may take
// (docs/stores.md).
type ownerFlags struct {
	label        string
	maxBandwidth string
	quietHours   string
	whenBusy     bool
	threshold    float64
	scrubEvery   time.Duration
	scrubRate    string
}

func (o *ownerFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&o.label, "label", "", "a name for this store that 'ckpt stores' shows, like \"Ann's desk\" (at most 64 bytes)")
	fs.StringVar(&o.maxBandwidth, "max-bandwidth", "", "most bytes a second the store moves to and from its clients, puts and gets together, like 20MiB/s (default unlimited)")
	fs.StringVar(&o.quietHours, "quiet-hours", "", "daily local time window HH:MM-HH:MM (may wrap past midnight, like 22:00-07:00) during which the store is busy: repair, garbage collection and compaction on it wait (checkpoints go on)")
	fs.BoolVar(&o.whenBusy, "pause-when-busy", false, "defer repair, garbage collection and compaction while this desktop's own CPU or a disk is busier than --busy-threshold (read from /proc)")
	fs.DurationVar(&o.scrubEvery, "scrub-every", 24*time.Hour, "read every block back this often and drop those whose bytes no longer match their hash, so that repair replaces them from another store (0 = never)")
	fs.StringVar(&o.scrubRate, "scrub-rate", defaultScrubRate, "most bytes a second a scrub reads; a scrub also waits while the store is busy (--quiet-hours, --pause-when-busy)")
	fs.Float64Var(&o.threshold, "busy-threshold", 100*desktop.DefaultThreshold, "with --pause-when-busy: percent of CPU time (all CPUs, the store's own left out) or of a disk's time with I/O in flight, over one --heartbeat interval, that counts as busy")
}

// defaultScrubRate is --scrub-rate's default.
const defaultScrubRate = "8MiB/s"

// minBandwidth is the lowest --max-bandwidth: a 16 MiB frame (the
// largest block a client sends) moves within the clients' one-minute
// write timeout.
const minBandwidth = 512 << 10

// owner is the parsed ownerFlags.
type owner struct {
	label      string
	bandwidth  int64 // 0: unlimited
	monitor    *desktop.Monitor
	scrubEvery time.Duration // 0: never
	scrubRate  int64
}

func (o *ownerFlags) parse() (*owner, error) {
	if err := catalog.ValidLabel(o.label); err != nil {
		return nil, fmt.Errorf("--label: %w", err)
	}
	out := &owner{label: o.label, scrubEvery: o.scrubEvery}
	if o.scrubEvery < 0 {
		return nil, fmt.Errorf("--scrub-every %v: want a positive interval, or 0 for never", o.scrubEvery)
	}
	rate := o.scrubRate
	if rate == "" {
		rate = defaultScrubRate
	}
	if n, err := storage.ParseRate(rate); err != nil || n <= 0 {
		return nil, fmt.Errorf("--scrub-rate %q: want a rate like 8MiB/s", o.scrubRate)
	} else {
		out.scrubRate = n
	}
	if o.maxBandwidth != "" {
		n, err := storage.ParseRate(o.maxBandwidth)
		if err != nil {
			return nil, fmt.Errorf("--max-bandwidth: %w", err)
		}
		if n < minBandwidth {
			return nil, fmt.Errorf("--max-bandwidth %s is below %s/s: clients give up on a store that does not take one request within a minute, and a block may be 16 MiB; give at least %s/s",
				o.maxBandwidth, storage.FormatSize(minBandwidth), storage.FormatSize(minBandwidth))
		}
		out.bandwidth = n
	}
	opts := desktop.Options{WhenBusy: o.whenBusy}
	if o.quietHours != "" {
		q, err := desktop.ParseQuietHours(o.quietHours)
		if err != nil {
			return nil, fmt.Errorf("--quiet-hours: %w", err)
		}
		opts.Quiet = &q
	}
	if o.threshold <= 0 || o.threshold > 100 {
		return nil, fmt.Errorf("--busy-threshold %g: want a percent above 0 and at most 100", o.threshold)
	}
	opts.Threshold = o.threshold / 100
	if opts.Quiet != nil || opts.WhenBusy {
		out.monitor = desktop.NewMonitor(opts)
	}
	return out, nil
}

// reporter fills the owner's part of each heartbeat: label, counters and
// whether the desktop is busy, and pauses the store's compaction while it
// is. Called from the heartbeat goroutine only.
type reporter struct {
	o   *owner
	srv *store.Server
	bs  *disk.Store
	log *zap.Logger

	busy     bool
	procWarn bool
}

func (r *reporter) fill(hb *catalog.Heartbeat) {
	st := r.srv.Stats()
	hb.Label, hb.Started, hb.Errors, hb.BytesIn, hb.BytesOut = r.o.label, st.Started, st.Errors, st.BytesIn, st.BytesOut
	if r.o.monitor == nil {
		return
	}
	busy, reason, err := r.o.monitor.Check()
	if err != nil && !r.procWarn {
		r.log.Warn("cannot tell whether the desktop is busy; working as if it were idle", zap.Error(err))
		r.procWarn = true
	}
	hb.Busy, hb.BusyReason = busy, reason
	if busy != r.busy {
		r.busy = busy
		if busy {
			r.log.Info("desktop busy: background work deferred", zap.String("reason", reason))
		} else {
			r.log.Info("desktop idle again: background work resumes")
		}
		r.bs.PauseCompaction(busy)
	}
}

// scrub runs a scrub of bs every o.scrubEvery until ctx ends. A scrub
// waits while the store's background work is paused (the desktop busy).
func (o *owner) scrub(ctx context.Context, bs *disk.Store, log *zap.Logger) {
	if o.scrubEvery <= 0 {
		return
	}
	t := time.NewTicker(o.scrubEvery)
	defer t.Stop()
	wait := func(ctx context.Context) error {
		for bs.CompactionPaused() {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Second): // the heartbeat resumes it
			}
		}
		return ctx.Err()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		started := time.Now()
		rep, err := bs.Scrub(ctx, o.scrubRate, wait)
		fields := []zap.Field{zap.Int64("checked", rep.Checked), zap.Int64("bytes", rep.Bytes), zap.Int64("corrupt", rep.Corrupt),
			zap.Duration("took", time.Since(started).Round(time.Millisecond))}
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("scrub stopped", append(fields, zap.Error(err))...)
		case rep.Corrupt > 0:
			log.Warn("scrub dropped corrupt blocks; the manager's repair replaces them", fields...)
		case err == nil:
			log.Info("scrub done", fields...)
		}
	}
}
