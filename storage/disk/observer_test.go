package disk

import (
	"context"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ckptio/ckptio/storage/storetest"
)

// syncRecorder is an Observer counting syncs by kind and outcome.
type syncRecorder struct {
	mu     sync.Mutex
	ok     map[string]int
	failed map[string]int
}

func (r *syncRecorder) Synced(kind string, took time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ok == nil {
		r.ok, r.failed = map[string]int{}, map[string]int{}
	}
	if err != nil {
		r.failed[kind]++
	} else {
		r.ok[kind]++
	}
}

func (r *syncRecorder) counts(kind string) (ok, failed int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ok[kind], r.failed[kind]
}

// TestObserverHearsEverySync: each fdatasync and directory fsync the
// store makes, in both layouts, reaches the observer, failed ones with
// their error, and only those (the fault-injecting file system counts
// them underneath).
func TestObserverHearsEverySync(t *testing.T) {
	for _, layout := range []Layout{LayoutPack, LayoutFiles} {
		t.Run(string(layout), func(t *testing.T) {
			ffs := newFaultyFS(false, syscall.EIO)
			rec := &syncRecorder{}
			s := openT(t, t.TempDir(), Options{Layout: layout, fs: ffs, Observer: rec})
			put(t, s, 1, 5000)
			put(t, s, 2, 5000)
			ffs.on.Store(true)
			data, h := storetest.Block(3, 5000)
			if _, err := s.Put(context.Background(), h, data); err == nil {
				t.Fatal("a put whose fdatasync failed was acknowledged")
			}
			s.Close() // no sync runs after this
			ok, failed := rec.counts(SyncData)
			if ok+failed != int(ffs.fileSyncs.Load()) || ok < 2 || failed < 1 {
				t.Errorf("observer heard %d data syncs and %d failed ones; the file system saw %d, 2 puts and a failed one", ok, failed, ffs.fileSyncs.Load())
			}
			dirOK, dirFailed := rec.counts(SyncDir)
			if dirOK+dirFailed != int(ffs.dirSyncs.Load()) || dirOK == 0 {
				t.Errorf("observer heard %d directory syncs (%d failed); the file system saw %d", dirOK, dirFailed, ffs.dirSyncs.Load())
			}
		})
	}
}
