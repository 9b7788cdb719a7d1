package client

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/manifest"
)

// RenewEvery is how often a Version renews its transaction with the
// manager while blocks are being written.
var RenewEvery = 30 * time.Second

// Version is one version being written: a manager transaction plus a Writer.
// Commit or Abort must be called exactly once.
type Version struct {
	cat     Catalog
	job     string
	kind    manifest.Kind
	created time.Time
	txnID   string
	w       *Writer
	log     *zap.Logger

	stopRenew context.CancelFunc
	renewed   sync.WaitGroup
}

// Begin starts a version of job on the live stores of pool. Unless
// opts.Reuse is set, blocks of the job's latest version of the same kind
// are referenced instead of sent again, if that version is not encrypted:
// a writer that encrypts passes its own Reuse, from a previous version
// written with the same key (storage/crypt.SameKey).
func Begin(ctx context.Context, cat Catalog, pool *Pool, job string, kind manifest.Kind, opts WriterOptions) (*Version, error) {
	targets, err := pool.Targets(ctx)
	if err != nil {
		return nil, err
	}
	txn, err := cat.Begin(ctx, job)
	if err != nil {
		return nil, err
	}
	if opts.Reuse == nil {
		// After Begin: the previous version's blocks are confirmed on their
		// stores from now on, which protects them from garbage collection.
		prev, err := cat.Manifest(ctx, job, 0)
		switch {
		case err == nil && prev.Kind == kind && prev.Meta[catalog.MetaEncrypted] == "":
			opts.Reuse = NewIndex(prev)
		case err == nil, errors.Is(err, catalog.ErrNoVersions), errors.Is(err, catalog.ErrUnknownJob):
		default:
			cat.Abort(context.WithoutCancel(ctx), txn.ID)
			return nil, fmt.Errorf("client: reading the previous version of %s: %w", job, err)
		}
	}
	w, err := NewWriter(targets, opts)
	if err != nil {
		cat.Abort(context.WithoutCancel(ctx), txn.ID)
		return nil, err
	}
	v := &Version{cat: cat, job: job, kind: kind, created: time.Now().UTC(), txnID: txn.ID, w: w, log: opts.Logger}
	if v.log == nil {
		v.log = zap.NewNop()
	}
	rctx, cancel := context.WithCancel(context.Background())
	v.stopRenew = cancel
	v.renewed.Add(1)
	go v.renew(rctx)
	return v, nil
}

func (v *Version) renew(ctx context.Context) {
	defer v.renewed.Done()
	t := time.NewTicker(RenewEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := v.cat.Renew(ctx, v.txnID); err != nil && ctx.Err() == nil {
				v.log.Warn("renewing the version's lease failed", zap.String("job", v.job), zap.Error(err))
			}
		}
	}
}

// Writer is where the version's objects are written.
func (v *Version) Writer() *Writer { return v.w }

// Commit waits for every block, then commits the manifest with meta; it
// returns the version number. On any failure the version is aborted, so
// nothing half-written is ever listed.
func (v *Version) Commit(ctx context.Context, meta map[string]string) (int64, *manifest.Manifest, error) {
	res, err := v.w.Close(ctx)
	if err != nil {
		v.Abort(context.WithoutCancel(ctx))
		return 0, nil, err
	}
	if meta == nil {
		meta = map[string]string{}
	}
	meta[catalog.MetaReplicas] = strconv.Itoa(res.Replicas)
	m := &manifest.Manifest{
		Job: v.job, Created: v.created, Kind: v.kind, Meta: meta,
		LogicalBytes: res.Logical, NewBytes: res.NewBytes, SentBytes: res.SentBytes,
		Blocks: res.Blocks,
	}
	v.stopRenew()
	v.renewed.Wait()
	n, err := v.cat.Commit(ctx, v.txnID, m)
	if err != nil {
		v.cat.Abort(context.WithoutCancel(ctx), v.txnID)
		return 0, nil, fmt.Errorf("client: committing version of %s: %w", v.job, err)
	}
	m.Version = n
	return n, m, nil
}

// Abort discards the version. Blocks already on stores stay until garbage
// collection; nothing is listed.
func (v *Version) Abort(ctx context.Context) error {
	v.w.Close(ctx)
	v.stopRenew()
	v.renewed.Wait()
	return v.cat.Abort(ctx, v.txnID)
}
