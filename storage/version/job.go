package version

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/client"
	"github.com/ckptio/ckptio/storage/manifest"
)

// Catalog is what the version layer needs of the manager; *catalog.Client
// implements it. Every method may block on the network.
type Catalog interface {
	Begin(ctx context.Context, job string) (catalog.Txn, error)
	Renew(ctx context.Context, txnID string) error
	// Commit takes the encoded manifest and returns the version number.
	Commit(ctx context.Context, txnID string, manifest []byte) (int64, error)
	Abort(ctx context.Context, txnID string) error
	// ManifestBytes returns a version's encoded manifest (0 = the latest)
	// and its number; catalog.ErrUnknownJob or ErrNoVersions when the job
	// has none.
	ManifestBytes(ctx context.Context, job string, version int64) ([]byte, int64, error)
}

// Kind is what a version holds (manifest.Kind).
type Kind = manifest.Kind

// The kinds of versions.
const (
	Files = manifest.KindFiles // files, put with 'ckpt put'
	MPI   = manifest.KindMPI   // the regions of every rank of an MPI job
)

// DefaultRenewEvery is how often a transaction's lease is renewed while a
// version is written; the manager's default lease is 10 minutes.
const DefaultRenewEvery = 30 * time.Second

// Job is one job's versions on one cluster: where versions are begun,
// written and read. Its fields are set once, before use; it is safe for
// concurrent use after.
type Job struct {
	Name    string
	Catalog Catalog      // the manager; used by Begin and Open
	Pool    *client.Pool // the stores; used by writers and readers
	// Writer holds the options of every Writer of the job: replicas,
	// write mode, compression, encryption. NewWriter's Hints add the
	// sizes of one writer.
	Writer client.WriterOptions
	// Reader holds the options of the job's readers (Decode: the key of
	// an encrypted job).
	Reader client.ReaderOptions
	// RenewEvery is how often a transaction's lease is renewed; 0 =
	// DefaultRenewEvery.
	RenewEvery time.Duration
	Logger     *zap.Logger // nil = no logging
}

func (j *Job) log() *zap.Logger {
	if j.Logger == nil {
		return zap.NewNop()
	}
	return j.Logger
}
