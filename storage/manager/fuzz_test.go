package manager

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/ckptio/ckptio/storage/catalog"
)

func FuzzHeartbeat(f *testing.F) {
	f.Add([]byte(`{"id":"s1","addr":"10.0.0.1:7000","used":1,"quota":2,"blocks":3,"disk_free":4}`))
	f.Add([]byte(`{"id":"s1","addr":"[::1]:7000"}`))
	f.Add([]byte(`{"id":"","addr":"h"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		hb, err := DecodeHeartbeat(body)
		if err != nil {
			if !errors.Is(err, catalog.ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		if err := hb.Validate(); err != nil {
			t.Fatalf("accepted an invalid heartbeat: %v", err)
		}
	})
}

// FuzzRetention: the body of PUT /v1/jobs/{job}/retention decodes strictly
// to a policy that survives a JSON round trip, or is refused as ErrInvalid.
func FuzzRetention(f *testing.F) {
	f.Add([]byte(`{"keep_last":3,"keep_every":10,"keep_within":"7d"}`))
	f.Add([]byte(`{"keep_within":"1h30m"}`))
	f.Add([]byte(`{"keep_within":"-1.5d"}`))
	f.Add([]byte(`{"keep_last":-1}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var r catalog.Retention
		if err := decodeJSON(body, &r); err != nil {
			if !errors.Is(err, catalog.ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		if err := r.Validate(); err != nil {
			if !errors.Is(err, catalog.ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		data, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var back catalog.Retention
		if err := decodeJSON(data, &back); err != nil || back != r {
			t.Fatalf("round trip of %+v: %+v, %v", r, back, err)
		}
	})
}
