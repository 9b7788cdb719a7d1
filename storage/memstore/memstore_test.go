package memstore_test

import (
	"testing"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/memstore"
	"github.com/ckptio/ckptio/storage/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, quota int64) storage.BlockStore {
		return memstore.New("mem-"+t.Name(), quota)
	})
}
