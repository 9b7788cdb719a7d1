package chaos

import (
	"context"
	"fmt"
	"time"
)

// Fleet is the cluster Run acts on. Run calls it from its own goroutine,
// one call at a time; an error ends the run.
type Fleet interface {
	// KillStore kills store i at once (SIGKILL: no clean shutdown) and
	// waits until it is gone.
	KillStore(i int) error
	// WipeStore removes the directory of store i, which is down, so that
	// it comes back empty under a new ID.
	WipeStore(i int) error
	// StartStore starts store i again on its directory and returns once
	// it serves.
	StartStore(i int) error
	// KillManager kills the manager at once and waits until it is gone.
	KillManager() error
	// StartManager starts the manager again on its address and data and
	// returns once it serves.
	StartManager() error
	// LoseManager kills the manager at once, waits until it is gone and
	// removes its data directory, as when its disk is lost with it.
	LoseManager() error
	// RecoverManager starts the manager again on its address with a new,
	// empty data directory, rebuilding the catalog from the catalog
	// records on the stores (ckpt-manager --recover --recover-from every
	// store), and returns once it serves. Later StartManager calls use
	// that directory.
	RecoverManager() error
	// SafeToWipe reports whether every block of every committed version
	// has a copy on a store that answers now. The store Run wipes is
	// down, so it does not answer: a yes means wiping it loses no block.
	// An error counts as no.
	SafeToWipe(ctx context.Context) (bool, error)
}

// RunOptions tune Run.
type RunOptions struct {
	// MinWipeGap is the least time between two wipes, so that the
	// cluster can notice the first and repair it; 0 = none.
	MinWipeGap time.Duration
	// Logf, if set, is told every event as it happens.
	Logf func(format string, args ...any)
}

// Stats count what a run did.
type Stats struct {
	StoreKills    int // stores killed, wiped or not
	StoreStarts   int
	Wipes         int // stores started again with their directory wiped
	WipesSkipped  int // wipes planned and not done (not safe then)
	ManagerKills  int
	ManagerStarts int
	ManagerLosses int // manager kills that lost its data directory
	Recoveries    int // manager starts that recovered the catalog from the stores
}

func (s Stats) String() string {
	return fmt.Sprintf("%d store kills, %d store restarts (%d wiped, %d wipes skipped as unsafe), %d manager kills (%d losing its data directory), %d manager restarts (%d recovering the catalog from the stores)",
		s.StoreKills, s.StoreStarts, s.Wipes, s.WipesSkipped, s.ManagerKills, s.ManagerLosses, s.ManagerStarts, s.Recoveries)
}

// Run plays plan against f, each event at its offset from the call,
// until the plan ends or ctx is done; then it starts every store and the
// manager still down, so that when it returns without error everything
// runs. A store killed with Wipe is wiped just before it starts again, if
// f.SafeToWipe says so then and the last wipe is at least MinWipeGap old;
// otherwise it comes back with its blocks. A manager killed with Wipe
// loses its data directory at once (f.LoseManager), and its next start
// recovers the catalog from the stores (f.RecoverManager). Since stores are wiped one at
// a time, each while every block has a copy elsewhere, no block ever
// loses all its copies: whatever a run loses, the system lost. ctx ending
// is not an error: it is how the caller stops the chaos early (stores
// then come back unwiped).
func Run(ctx context.Context, f Fleet, plan []Event, o RunOptions) (Stats, error) {
	logf := o.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	var st Stats
	start := time.Now()
	down := map[int]bool{} // stores killed and not started again
	wipe := map[int]bool{} // down stores the plan wipes
	managerDown := false
	managerLost := false // the manager is down without its data directory
	var lastWipe time.Time
	timer := time.NewTimer(0)
	defer timer.Stop()
	stamp := func() time.Duration { return time.Since(start).Round(time.Millisecond) }

	var err error
events:
	for _, e := range plan {
		timer.Reset(time.Until(start.Add(e.At)))
		select {
		case <-ctx.Done():
			break events
		case <-timer.C:
		}
		switch e.Kind {
		case KillStore:
			if down[e.Store] {
				err = fmt.Errorf("chaos: plan kills store %d at %s while it is down", e.Store, e.At)
				break events
			}
			if err = f.KillStore(e.Store); err != nil {
				break events
			}
			down[e.Store], wipe[e.Store] = true, e.Wipe
			st.StoreKills++
			logf("chaos %s: killed store %d", stamp(), e.Store)
		case StartStore:
			wiped := false
			if wipe[e.Store] {
				wiped, err = safeToWipe(ctx, f, lastWipe, o.MinWipeGap)
				if err != nil {
					logf("chaos %s: store %d is not wiped: %v", stamp(), e.Store, err)
					err = nil
				}
				if wiped {
					if err = f.WipeStore(e.Store); err != nil {
						break events
					}
					st.Wipes++
					lastWipe = time.Now()
				} else {
					st.WipesSkipped++
				}
			}
			if err = f.StartStore(e.Store); err != nil {
				break events
			}
			delete(down, e.Store)
			delete(wipe, e.Store)
			st.StoreStarts++
			if wiped {
				logf("chaos %s: wiped store %d and started it again", stamp(), e.Store)
			} else {
				logf("chaos %s: started store %d", stamp(), e.Store)
			}
		case KillManager:
			if e.Wipe {
				if err = f.LoseManager(); err != nil {
					break events
				}
				managerLost = true
				st.ManagerLosses++
				logf("chaos %s: killed the manager and removed its data directory", stamp())
			} else {
				if err = f.KillManager(); err != nil {
					break events
				}
				logf("chaos %s: killed the manager", stamp())
			}
			managerDown = true
			st.ManagerKills++
		case StartManager:
			if err = startManager(f, managerLost, &st); err != nil {
				break events
			}
			if managerLost {
				logf("chaos %s: started the manager on a new data directory, recovering the catalog from the stores", stamp())
			} else {
				logf("chaos %s: started the manager", stamp())
			}
			managerDown, managerLost = false, false
		}
	}
	if err != nil {
		return st, err
	}
	// Bring back what the plan had not started yet (ctx ended first).
	if managerDown {
		if err := startManager(f, managerLost, &st); err != nil {
			return st, err
		}
		logf("chaos %s: started the manager (end of chaos; recovering the catalog: %v)", stamp(), managerLost)
	}
	for i := range maxIndex(down) + 1 {
		if !down[i] {
			continue
		}
		if err := f.StartStore(i); err != nil {
			return st, err
		}
		st.StoreStarts++
		if wipe[i] {
			st.WipesSkipped++
		}
		logf("chaos %s: started store %d (end of chaos)", stamp(), i)
	}
	return st, nil
}

// startManager starts the manager again, recovering the catalog when it
// was lost, and counts it.
func startManager(f Fleet, lost bool, st *Stats) error {
	if lost {
		if err := f.RecoverManager(); err != nil {
			return err
		}
		st.Recoveries++
	} else if err := f.StartManager(); err != nil {
		return err
	}
	st.ManagerStarts++
	return nil
}

// safeToWipe applies the gap, then asks f.
func safeToWipe(ctx context.Context, f Fleet, last time.Time, gap time.Duration) (bool, error) {
	if !last.IsZero() && time.Since(last) < gap {
		return false, fmt.Errorf("the last wipe was %s ago, under the gap of %s", time.Since(last).Round(time.Millisecond), gap)
	}
	ok, err := f.SafeToWipe(ctx)
	if err != nil {
		return false, err
	}
	if !ok {
		return false, fmt.Errorf("a block of a committed version has no copy on the stores that answer")
	}
	return true, nil
}

// maxIndex returns the highest key of m, -1 when it is empty.
func maxIndex(m map[int]bool) int {
	hi := -1
	for i := range m {
		hi = max(hi, i)
	}
	return hi
}
