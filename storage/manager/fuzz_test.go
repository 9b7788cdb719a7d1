package manager

import (
	"errors"
	"testing"
)

func FuzzHeartbeat(f *testing.F) {
	f.Add([]byte(`{"id":"s1","addr":"10.0.0.1:7000","used":1,"quota":2,"blocks":3,"disk_free":4}`))
	f.Add([]byte(`{"id":"s1","addr":"[::1]:7000"}`))
	f.Add([]byte(`{"id":"","addr":"h"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		hb, err := DecodeHeartbeat(body)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		if err := hb.validate(); err != nil {
			t.Fatalf("accepted an invalid heartbeat: %v", err)
		}
	})
}
