package disk

import (
	"time"
)

// Kinds of sync an Observer is told of.
const (
	SyncData = "data" // fdatasync of a pack or block file
	SyncDir  = "dir"  // fsync of a directory, after creates, renames, removes
)

// Observer is told of the store's syncs, for metrics (storage/metrics
// implements it with Prometheus). Synced is called after every sync the
// store makes, from the goroutine that made it (the group commit, Open,
// compaction), possibly concurrently; it must be quick and must not block.
type Observer interface {
	// Synced reports one sync: SyncData or SyncDir, how long it took, and
	// whether it failed.
	Synced(kind string, took time.Duration, err error)
}

// observedFS is a fileSystem whose syncs are reported to an Observer.
type observedFS struct {
	fileSystem
	obs Observer
}

func (o observedFS) Create(name string) (fsFile, error) { return o.file(o.fileSystem.Create(name)) }
func (o observedFS) Open(name string) (fsFile, error)   { return o.file(o.fileSystem.Open(name)) }
func (o observedFS) OpenReadWrite(name string) (fsFile, error) {
	return o.file(o.fileSystem.OpenReadWrite(name))
}

func (o observedFS) file(f fsFile, err error) (fsFile, error) {
	if err != nil {
		return f, err
	}
	return observedFile{f, o.obs}, nil
}

func (o observedFS) SyncDir(name string) error {
	start := time.Now()
	err := o.fileSystem.SyncDir(name)
	o.obs.Synced(SyncDir, time.Since(start), err)
	return err
}

// observedFile is a file of an observedFS.
type observedFile struct {
	fsFile
	obs Observer
}

func (f observedFile) SyncData() error {
	start := time.Now()
	err := f.fsFile.SyncData()
	f.obs.Synced(SyncData, time.Since(start), err)
	return err
}
