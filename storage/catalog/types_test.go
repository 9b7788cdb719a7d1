package catalog

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ckptio/ckptio/storage"
)

// TestJSONShapes pins the JSON of the types stores and clients exchange
// with the manager: Heartbeat, StoreInfo and storage.Stat embed
// storage.Usage, and their JSON must stay flat, with the same fields as
// before the embedding, so that stores and managers of either side of the
// change understand each other. Fields added since (label, started,
// counters, busy, drain state) come after them; a heartbeat without them
// still decodes.
func TestJSONShapes(t *testing.T) {
	u := storage.Usage{Used: 1, Quota: 2, Blocks: 3, DiskFree: 4}
	when := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		v    any
		want string
	}{
		{Heartbeat{ID: "s1", Addr: "h:1", Usage: u}, `{"id":"s1","addr":"h:1","used":1,"quota":2,"blocks":3,"disk_free":4,"label":"","errors":0,"bytes_in":0,"bytes_out":0,"busy":false}`},
		{Heartbeat{ID: "s1", Addr: "h:1", Usage: u, Label: "Ann's desk", Started: when, Errors: 5, BytesIn: 6, BytesOut: 7, Busy: true, BusyReason: "quiet hours 22:00-07:00"},
			`{"id":"s1","addr":"h:1","used":1,"quota":2,"blocks":3,"disk_free":4,"label":"Ann's desk","started":"2026-01-02T03:04:05Z","errors":5,"bytes_in":6,"bytes_out":7,"busy":true,"busy_reason":"quiet hours 22:00-07:00"}`},
		{StoreInfo{Heartbeat: Heartbeat{ID: "s1", Addr: "h:1", Usage: u}, FirstSeen: when, LastSeen: when, Alive: true, Draining: true, DrainingSince: when},
			`{"id":"s1","addr":"h:1","used":1,"quota":2,"blocks":3,"disk_free":4,"label":"","errors":0,"bytes_in":0,"bytes_out":0,"busy":false,"first_seen":"2026-01-02T03:04:05Z","last_seen":"2026-01-02T03:04:05Z","alive":true,"draining":true,"draining_since":"2026-01-02T03:04:05Z"}`},
		{storage.Stat{ID: "s1", Usage: u, Now: when}, `{"id":"s1","used":1,"quota":2,"blocks":3,"disk_free":4,"now":"2026-01-02T03:04:05Z"}`},
	} {
		got, err := json.Marshal(tc.v)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tc.want {
			t.Errorf("%T:\n got %s\nwant %s", tc.v, got, tc.want)
		}
	}
	var hb Heartbeat
	if err := json.Unmarshal([]byte(`{"id":"s1","addr":"h:1","used":1,"quota":2,"blocks":3,"disk_free":4}`), &hb); err != nil || hb.Usage != u {
		t.Fatalf("decoding a heartbeat: %+v, %v", hb, err)
	}
}

func TestHeartbeatValidatesLabel(t *testing.T) {
	ok := Heartbeat{ID: "s1", Addr: "h:1", Label: "Ann's desk, 2nd floor"}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{"tab\there", "new\nline", string(make([]byte, MaxLabel+1))} {
		hb := ok
		hb.Label = l
		if err := hb.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("label %q: %v", l, err)
		}
	}
}

// TestErrorCodesRoundTrip: every sentinel the API carries classifies to a
// code that maps back to it, so errors.Is works across the wire.
func TestErrorCodesRoundTrip(t *testing.T) {
	for _, e := range apiErrors {
		status, code := Classify(fmt.Errorf("wrapped: %w", e.err))
		if status != e.status || code != e.code || sentinelOf(code) != e.err {
			t.Errorf("%v: status %d code %q maps back to %v", e.err, status, code, sentinelOf(code))
		}
	}
	if s, c := Classify(&AuthError{"wrong cluster token"}); s != 401 || c != CodeUnauthorized {
		t.Errorf("AuthError: %d %q", s, c)
	}
	if s, c := Classify(errors.New("disk on fire")); s != 500 || c != CodeInternal || sentinelOf(c) != nil {
		t.Errorf("other error: %d %q", s, c)
	}
}
