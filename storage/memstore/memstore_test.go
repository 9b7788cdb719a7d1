package memstore_test

import (
	"testing"
	"time"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/memstore"
	"github.com/ckptio/ckptio/storage/storetest"
)

func TestConformance(t *testing.T) {
	storetest.RunWithClock(t, func(t *testing.T, quota int64, now func() time.Time) storage.BlockStore {
		return memstore.NewWithClock("mem-"+t.Name(), quota, now)
	})
}

// TestConformanceWallClock runs the suite on the real clock too, which is
// how stores that cannot take a clock are checked (storetest.Run).
func TestConformanceWallClock(t *testing.T) {
	storetest.Run(t, func(t *testing.T, quota int64) storage.BlockStore {
		return memstore.New("mem-"+t.Name(), quota)
	})
}
