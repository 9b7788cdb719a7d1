package main

import (
	"strings"
	"testing"
	"time"
)

func TestOwnerFlagsParse(t *testing.T) {
	o, err := (&ownerFlags{label: "Ann's desk", maxBandwidth: "20MiB/s", quietHours: "22:00-07:00", threshold: 50}).parse()
	if err != nil || o.label != "Ann's desk" || o.bandwidth != 20<<20 || o.monitor == nil {
		t.Fatalf("parse = %+v, %v", o, err)
	}
	if o, err := (&ownerFlags{threshold: 50}).parse(); err != nil || o.monitor != nil || o.bandwidth != 0 || o.scrubRate != 8<<20 {
		t.Fatalf("no owner flags: %+v, %v; want no monitor and no limit", o, err)
	}
	for _, tc := range []struct {
		f    ownerFlags
		want string
	}{
		{ownerFlags{label: "a\tb", threshold: 50}, "--label"},
		{ownerFlags{maxBandwidth: "lots", threshold: 50}, "--max-bandwidth"},
		{ownerFlags{maxBandwidth: "100KiB/s", threshold: 50}, "below 512.0 KiB/s"},
		{ownerFlags{quietHours: "22-7", threshold: 50}, "--quiet-hours"},
		{ownerFlags{whenBusy: true, threshold: 0}, "--busy-threshold"},
		{ownerFlags{whenBusy: true, threshold: 150}, "--busy-threshold"},
		{ownerFlags{scrubRate: "fast", threshold: 50}, "--scrub-rate"},
		{ownerFlags{scrubEvery: -time.Hour, threshold: 50}, "--scrub-every"},
	} {
		if _, err := tc.f.parse(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error naming %s", tc.f, err, tc.want)
		}
	}
}
