package collective

import (
	"context"
	"fmt"

	"github.com/ckptio/ckptio/storage/version"
)

// Extra is state that ranks keep in a version besides their regions,
// captured and restored by the layer above (mpiio's protected files),
// which this package moves and commits without knowing what it holds.
// Any field may be nil, on any rank; every rank still takes part in the
// steps that carry it, so ranks may differ in what they pass.
type Extra struct {
	// Write runs on its rank during a checkpoint, once the version has
	// begun, beside the moves of the regions (it must not use the
	// session's communicators). It returns the rank's part of the
	// version, written through its own version.Writer (nil: nothing to
	// add). The part reaches world rank 0 after the agreement and is
	// committed with the leaders' parts in one Txn.Commit; an error fails
	// the checkpoint on every rank like a region's: both are committed or
	// neither is.
	Write func(ctx context.Context) (*version.Part, error)
	// Claim is what this rank tells world rank 0 about its extra state at
	// the start of a checkpoint, and Vet, on world rank 0, checks every
	// rank's claim (in rank order; empty from ranks without). A Vet error
	// fails the checkpoint on every rank: nothing is committed.
	Claim []byte
	Vet   func(claims [][]byte) error
	// Split runs on world rank 0 during a restore, once the version is
	// open and checked: it returns what each rank's Check is given, one
	// entry per world rank (nil or empty: nothing). An error refuses the
	// restore on every rank.
	Split func(snap *version.Snapshot) ([][]byte, error)
	// Check runs on every rank during a restore with its share of Split,
	// before any region or anything else is touched; an error refuses the
	// restore on every rank.
	Check func(ctx context.Context, share []byte) error
	// Apply runs on every rank once every rank's Check and region match
	// passed, beside the region rounds (it must not use the session's
	// communicators); an error fails the restore on every rank.
	Apply func(ctx context.Context) error
}

// startExtra runs f in a goroutine; the returned func waits for it and
// returns its result. A nil f gives the zero value and nil.
func startExtra[T any](ctx context.Context, f func(context.Context) (T, error)) func() (T, error) {
	var v T
	if f == nil {
		return func() (T, error) { return v, nil }
	}
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		v, err = f(ctx)
	}()
	return func() (T, error) {
		<-done
		return v, err
	}
}

// withLocal adds err (what the Extra reported) to a rank's outcome.
func withLocal(local, err error) error {
	switch {
	case err == nil:
		return local
	case local == nil:
		return err
	}
	return fmt.Errorf("%w; %w", local, err)
}
