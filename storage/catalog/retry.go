package catalog

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"time"

	"go.uber.org/zap"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/manifest"
)

// DefaultRetryFor is how long a Retrying client keeps trying an
// unreachable manager when RetryOptions.For is not set.
const DefaultRetryFor = 3 * time.Minute

// ErrCommitUnknown: a commit was sent and the manager did not answer
// again within RetryOptions.For, so whether the version committed is not
// known ('ckpt versions' tells). Either way nothing half-written is listed.
var ErrCommitUnknown = errors.New("catalog: the commit's outcome is unknown")

// MetaTxn is the meta key a version's transaction ID is committed under,
// so that a commit whose answer was lost can be found again
// (Retrying.Commit).
const MetaTxn = "txn"

// RetryOptions configure NewRetrying. The zero value retries for
// DefaultRetryFor with waits from 100ms to 5s.
type RetryOptions struct {
	// For is how long a call keeps retrying an unreachable manager after
	// its first failure; 0 = DefaultRetryFor, negative = no retry (fail at
	// once).
	For time.Duration
	// Min and Max bound the wait between attempts, which doubles from Min
	// up to Max, each wait drawn between half and all of it (jitter). 0 =
	// 100ms and 5s.
	Min, Max time.Duration
	// Now and Sleep are the clock; nil = the real one. Sleep returns
	// ctx's error when ctx ends first.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
	// Logger says when the manager is unreachable and when it answers
	// again. Nil = no logging.
	Logger *zap.Logger
}

// Retried is the part of the manager's API a checkpoint writer calls;
// *Client implements it, and Retrying wraps one.
type Retried interface {
	Begin(ctx context.Context, job string) (Txn, error)
	Renew(ctx context.Context, txnID string) error
	Commit(ctx context.Context, txnID string, body []byte) (int64, error)
	Abort(ctx context.Context, txnID string) error
	ManifestBytes(ctx context.Context, job string, version int64) ([]byte, int64, error)
	Versions(ctx context.Context, job string) ([]VersionInfo, error)
	Stores(ctx context.Context) ([]StoreInfo, error)
}

// Retrying is a manager client that survives outages: each call that
// fails because the manager is unreachable (ErrUnreachable: refused,
// reset, timed out; not a TLS mismatch) is tried again with capped
// exponential backoff and jitter for RetryOptions.For, then fails with the
// last error. Any answer of the manager (a refusal, ErrUnknownTxn, ...) is
// returned at once. Safe for concurrent use.
//
// Begin, Renew, Abort and the reads are safe to repeat (a Begin whose
// answer was lost leaves a transaction that expires). Commit is not:
// a commit whose answer was lost may have happened, and repeating it
// gets ErrUnknownTxn. Retrying.Commit then looks for a version of the
// manifest's job committed with the transaction's ID under MetaTxn
// (version.Txn.Commit records it) and returns its number, so a version
// is never committed twice nor reported failed when it committed.
type Retrying struct {
	c    Retried
	opts RetryOptions
}

// NewRetrying wraps c.
func NewRetrying(c Retried, opts RetryOptions) *Retrying {
	if opts.For == 0 {
		opts.For = DefaultRetryFor
	}
	if opts.Min <= 0 {
		opts.Min = 100 * time.Millisecond
	}
	if opts.Max <= 0 {
		opts.Max = 5 * time.Second
	}
	opts.Max = max(opts.Max, opts.Min)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Sleep == nil {
		opts.Sleep = sleep
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	return &Retrying{c: c, opts: opts}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// retryable reports whether err means the manager was not reached (and
// may be again): not a TLS or scheme mismatch, which retrying cannot cure.
// sent reports whether a request that failed with err may have reached
// the manager: anything but a failure to connect.
func sent(err error) bool {
	var oe *net.OpError
	return !(errors.As(err, &oe) && oe.Op == "dial")
}

func retryable(err error) bool {
	var ue *UnreachableError
	return errors.As(err, &ue) || errors.Is(err, errNoneAlive)
}

// errNoneAlive is a list of stores none of which is alive, which Stores
// retries like an unreachable manager.
var errNoneAlive = errors.New("the manager lists no live store (all away, or the manager restarted and has not heard their heartbeats yet)")

// retry runs call until it succeeds, fails otherwise than unreachable,
// ctx ends or the time is up. It returns the number of attempts made.
func (r *Retrying) retry(ctx context.Context, what string, call func() error) (int, error) {
	err := call()
	if err == nil || !retryable(err) || r.opts.For < 0 {
		return 1, err
	}
	start := r.opts.Now()
	deadline := start.Add(r.opts.For)
	wait := r.opts.Min
	r.opts.Logger.Warn("retrying the manager",
		zap.String("call", what), zap.Duration("for up to", r.opts.For), zap.Error(err))
	for n := 2; ; n++ {
		left := deadline.Sub(r.opts.Now())
		if left <= 0 {
			return n - 1, fmt.Errorf("gave up after %d attempts over %s (CKPT_RETRY_FOR=%s): %w",
				n-1, r.opts.Now().Sub(start).Round(time.Millisecond), r.opts.For, err)
		}
		d := wait/2 + rand.N(wait/2+1)
		if d > left {
			d = left
		}
		if serr := r.opts.Sleep(ctx, d); serr != nil {
			return n - 1, fmt.Errorf("%w (while retrying: %v)", serr, err)
		}
		wait = min(2*wait, r.opts.Max)
		if err = call(); err == nil || !retryable(err) {
			if err == nil {
				r.opts.Logger.Info("the manager answers again", zap.String("call", what),
					zap.Int("attempts", n), zap.Duration("after", r.opts.Now().Sub(start).Round(time.Millisecond)))
			}
			return n, err
		}
	}
}

// Begin is Client.Begin, retried.
func (r *Retrying) Begin(ctx context.Context, job string) (Txn, error) {
	var t Txn
	_, err := r.retry(ctx, "begin", func() (err error) { t, err = r.c.Begin(ctx, job); return })
	return t, err
}

// Renew is Client.Renew, retried: a transaction survives an outage shorter
// than the manager's transaction timeout (the manager keeps it on disk).
func (r *Retrying) Renew(ctx context.Context, txnID string) error {
	_, err := r.retry(ctx, "renew", func() error { return r.c.Renew(ctx, txnID) })
	return err
}

// abortRetryFor bounds the retries of Abort: an abort that does not reach
// the manager is harmless (the transaction expires), so a failed
// checkpoint does not wait another RetryOptions.For for it.
const abortRetryFor = 5 * time.Second

// Abort is Client.Abort, retried for at most abortRetryFor.
func (r *Retrying) Abort(ctx context.Context, txnID string) error {
	short := *r
	if short.opts.For > abortRetryFor {
		short.opts.For = abortRetryFor
	}
	_, err := short.retry(ctx, "abort", func() error { return r.c.Abort(ctx, txnID) })
	return err
}

// ManifestBytes is Client.ManifestBytes, retried.
func (r *Retrying) ManifestBytes(ctx context.Context, job string, version int64) ([]byte, int64, error) {
	var raw []byte
	var v int64
	_, err := r.retry(ctx, "manifest", func() (err error) { raw, v, err = r.c.ManifestBytes(ctx, job, version); return })
	return raw, v, err
}

// Versions is Client.Versions, retried.
func (r *Retrying) Versions(ctx context.Context, job string) ([]VersionInfo, error) {
	var vs []VersionInfo
	_, err := r.retry(ctx, "versions", func() (err error) { vs, err = r.c.Versions(ctx, job); return })
	return vs, err
}

// Stores is Client.Stores, retried; a list of stores none of which is
// alive is retried too, since a writer can do nothing with it: the stores
// are away, or the manager came back from an outage and has not heard
// their heartbeats yet. When the time is up that list is returned.
func (r *Retrying) Stores(ctx context.Context) ([]StoreInfo, error) {
	var ss []StoreInfo
	_, err := r.retry(ctx, "stores", func() (err error) {
		if ss, err = r.c.Stores(ctx); err != nil || len(ss) == 0 {
			return err
		}
		for _, s := range ss {
			if s.Alive {
				return nil
			}
		}
		return errNoneAlive
	})
	if errors.Is(err, errNoneAlive) {
		err = nil
	}
	return ss, err
}

// Commit is Client.Commit, retried; see Retrying for how a commit whose
// answer was lost is told from one that did not happen.
func (r *Retrying) Commit(ctx context.Context, txnID string, body []byte) (int64, error) {
	var v int64
	ambiguous := false // an attempt may have reached the manager
	_, err := r.retry(ctx, "commit", func() (err error) {
		v, err = r.c.Commit(ctx, txnID, body)
		if err != nil && retryable(err) && sent(err) {
			ambiguous = true
		}
		if err != nil && ambiguous && errors.Is(err, ErrUnknownTxn) {
			found, ok, ferr := r.committed(ctx, txnID, body)
			switch {
			case ferr != nil:
				return ferr
			case ok:
				v = found
				return nil
			}
		}
		return err
	})
	if err != nil && ambiguous && retryable(err) {
		// The manager never answered again: the commit may or may not have
		// happened. Either way nothing half-written is listed.
		return 0, fmt.Errorf("%w (the manager did not answer again; "+
			"'ckpt versions' shows whether transaction %s committed): %w", ErrCommitUnknown, txnID, err)
	}
	return v, err
}

// committed finds the version transaction txnID committed, after a
// repeated commit was told the transaction is unknown; false when there is
// none.
func (r *Retrying) committed(ctx context.Context, txnID string, body []byte) (int64, bool, error) {
	hdr, err := manifest.Header(body)
	if err != nil {
		return 0, false, nil
	}
	vs, err := r.c.Versions(ctx, hdr.Job)
	if err != nil {
		if errors.Is(err, ErrUnknownJob) || errors.Is(err, ErrNoVersions) {
			return 0, false, nil
		}
		return 0, false, err
	}
	for i := len(vs) - 1; i >= 0; i-- {
		if vs[i].Meta[MetaTxn] == txnID {
			r.opts.Logger.Info("the commit happened although its answer was lost",
				zap.String("job", hdr.Job), zap.Int64("version", vs[i].Version))
			return vs[i].Version, true, nil
		}
	}
	return 0, false, nil
}

// ReportCorrupt passes a report of corrupt copies on (Client.ReportCorrupt)
// once, without retrying: it is advice, and the stores' own drops and the
// next repair pass cover a report lost.
func (r *Retrying) ReportCorrupt(ctx context.Context, job string, copies []CorruptCopy) (CorruptReport, error) {
	rc, ok := r.c.(interface {
		ReportCorrupt(ctx context.Context, job string, copies []CorruptCopy) (CorruptReport, error)
	})
	if !ok {
		return CorruptReport{}, errors.New("catalog: this manager client takes no reports of corrupt copies")
	}
	return rc.ReportCorrupt(ctx, job, copies)
}

// Discard passes a discard of an aborted write's blocks on
// (Client.Discard) once, without retrying: garbage collection removes
// what a discard lost to an outage.
func (r *Retrying) Discard(ctx context.Context, stores map[string][]storage.Hash) (DiscardReport, error) {
	d, ok := r.c.(interface {
		Discard(ctx context.Context, stores map[string][]storage.Hash) (DiscardReport, error)
	})
	if !ok {
		return DiscardReport{}, errors.New("catalog: this manager client cannot discard blocks")
	}
	return d.Discard(ctx, stores)
}
