package chaos

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"time"
)

// Kind is what an Event does.
type Kind int

// The kinds of events. At one instant starts come before kills, so a
// store planned to come back at t can be killed again at t.
const (
	StartStore Kind = iota
	StartManager
	KillStore
	KillManager
)

var kindNames = [...]string{StartStore: "start store", StartManager: "start manager", KillStore: "kill store", KillManager: "kill manager"}

func (k Kind) String() string {
	if k < 0 || int(k) >= len(kindNames) {
		return fmt.Sprintf("Kind(%d)", int(k))
	}
	return kindNames[k]
}

// Event is one step of a plan.
type Event struct {
	At    time.Duration // offset from the start of the run
	Kind  Kind
	Store int // StartStore, KillStore: the store's index
	// Wipe (KillStore): the store's disk is lost while it is down: its
	// directory is removed before it starts again, so it comes back empty
	// under a new ID. Run does it only when it is safe then (see Run).
	// Wipe (KillManager): the manager's disk is lost with it: its data
	// directory is removed at once, and its next StartManager rebuilds
	// the catalog from the catalog records on the stores (ckpt-manager
	// --recover) into a new directory.
	Wipe bool
}

func (e Event) String() string {
	switch e.Kind {
	case KillStore:
		if e.Wipe {
			return fmt.Sprintf("%s kill store %d (to be wiped)", e.At, e.Store)
		}
	case KillManager:
		if e.Wipe {
			return fmt.Sprintf("%s kill manager and lose its data directory", e.At)
		}
		return fmt.Sprintf("%s kill store %d", e.At, e.Store)
	case StartStore:
		return fmt.Sprintf("%s start store %d", e.At, e.Store)
	}
	return fmt.Sprintf("%s %s", e.At, e.Kind)
}

// Options shape a plan. Zero values take the defaults given.
type Options struct {
	Seed   int64
	Stores int // stores in the fleet, indexed 0 to Stores-1; at least MinAlive+1
	// MinAlive is the fewest stores running at any instant; 0 = 2 (a
	// version with 2 copies needs 2 stores to commit).
	MinAlive int
	// Length: kills are planned in [0, Length); the starts that follow
	// them may come later. Required.
	Length time.Duration
	// Every is the mean time between two store kills, drawn uniformly
	// from [Every/2, 3*Every/2]; 0 = 1 s. A kill that would leave fewer
	// than MinAlive stores running is not planned.
	Every time.Duration
	// Down is the mean time a killed store stays down, drawn uniformly
	// from [Down/4, 7*Down/4]; 0 = 2 s.
	Down time.Duration
	// Wipe is the chance that a store killed while all the others run
	// is to come back wiped; no other store is killed until it is back.
	// 0 = never.
	Wipe float64
	// ManagerDown is how long the manager stays down after its one kill,
	// which falls uniformly in [ManagerFrom, ManagerTo]; 0 = the manager
	// is not killed.
	ManagerDown time.Duration
	// ManagerFrom and ManagerTo bound the time of the manager's kill;
	// 0 = Length/10 and Length/2.
	ManagerFrom, ManagerTo time.Duration
	// ManagerKills is how many times the manager is killed (0 = once,
	// when ManagerDown is set): the window [ManagerFrom, ManagerTo] is
	// cut in as many equal slots, a kill falls uniformly in each, and a
	// kill that would come before the previous outage ended comes 1 s
	// after it (so it may fall after ManagerTo).
	ManagerKills int
	// ManagerDownMax, when above ManagerDown, makes each outage last
	// uniformly from ManagerDown to ManagerDownMax.
	ManagerDownMax time.Duration
	// ManagerDataLoss makes the first manager kill (the one surely in
	// [ManagerFrom, ManagerTo]) lose the manager's data directory (Event
	// Wipe): the manager comes back, at the outage's end, by recovering
	// the catalog from the catalog records on the stores. Recovery reads
	// the stores, so every store runs when it starts: a store kill is
	// planned during that outage only if the store is back before the
	// outage ends, and then never to be wiped (a store wiped while the
	// manager is down, which cannot repair, would take copies of records
	// that nothing re-creates before the recovery reads them). Requires
	// ManagerDown.
	ManagerDataLoss bool
}

func (o Options) withDefaults() Options {
	if o.MinAlive == 0 {
		o.MinAlive = 2
	}
	if o.Every == 0 {
		o.Every = time.Second
	}
	if o.Down == 0 {
		o.Down = 2 * time.Second
	}
	if o.ManagerFrom == 0 {
		o.ManagerFrom = o.Length / 10
	}
	if o.ManagerTo == 0 {
		o.ManagerTo = o.Length / 2
	}
	if o.ManagerKills == 0 && o.ManagerDown > 0 {
		o.ManagerKills = 1
	}
	return o
}

// Plan returns the schedule of o.Seed, ordered by time: store kills at
// random intervals, each followed by the same store's start, never fewer
// than MinAlive stores running, and ManagerKills manager kills and starts
// when ManagerDown is set, the first of them losing the manager's data
// directory when ManagerDataLoss is set (with every store running when
// the manager starts again, recovering). Every store killed and the
// manager are started again by the end of the plan. A store is marked to come back wiped only
// when it is the only one down, and stays so until it is back: the other
// stores then hold a copy of every block it held (with 2 copies), so Run
// finds the wipe safe unless a block was under-replicated already. The
// same Options give the same plan.
func Plan(o Options) ([]Event, error) {
	o = o.withDefaults()
	switch {
	case o.Length <= 0:
		return nil, fmt.Errorf("chaos: plan length %s: want a positive duration", o.Length)
	case o.MinAlive < 1 || o.Stores <= o.MinAlive:
		return nil, fmt.Errorf("chaos: %d stores with at least %d running: want more stores than that, or no store could be killed", o.Stores, o.MinAlive)
	case o.Wipe < 0 || o.Wipe > 1:
		return nil, fmt.Errorf("chaos: wipe chance %g: want 0 to 1", o.Wipe)
	case o.ManagerDown > 0 && (o.ManagerFrom < 0 || o.ManagerTo < o.ManagerFrom):
		return nil, fmt.Errorf("chaos: manager kill between %s and %s: want 0 <= from <= to", o.ManagerFrom, o.ManagerTo)
	case o.ManagerKills < 0:
		return nil, fmt.Errorf("chaos: %d manager kills: want 0 or more", o.ManagerKills)
	case o.ManagerDataLoss && o.ManagerDown <= 0:
		return nil, fmt.Errorf("chaos: a manager data loss without ManagerDown: the manager is never killed to lose it")
	}
	rng := rand.New(rand.NewPCG(uint64(o.Seed), 0x636b7074696f)) // "ckptio"
	uniform := func(lo, hi time.Duration) time.Duration {
		return lo + time.Duration(rng.Int64N(int64(hi-lo)+1))
	}
	var plan []Event
	var back time.Duration             // the previous outage's end
	var lossAt, lossBack time.Duration // the data loss's outage, when planned
	for i := 0; o.ManagerDown > 0 && i < o.ManagerKills; i++ {
		slot := (o.ManagerTo - o.ManagerFrom) / time.Duration(o.ManagerKills)
		from := o.ManagerFrom + time.Duration(i)*slot
		at := uniform(from, from+slot)
		if i > 0 && at < back+time.Second {
			at = back + time.Second
		}
		down := o.ManagerDown
		if o.ManagerDownMax > o.ManagerDown {
			down = uniform(o.ManagerDown, o.ManagerDownMax)
		}
		back = at + down
		loss := o.ManagerDataLoss && i == 0
		if loss {
			lossAt, lossBack = at, back
		}
		plan = append(plan, Event{At: at, Kind: KillManager, Wipe: loss}, Event{At: back, Kind: StartManager})
	}
	upAt := make([]time.Duration, o.Stores) // a store runs at t when upAt <= t
	var quiet time.Duration                 // no kill before: a store to be wiped is down
	for t := uniform(o.Every/2, 3*o.Every/2); t < o.Length; t += uniform(o.Every/2, 3*o.Every/2) {
		var up []int
		for i, u := range upAt {
			if u <= t {
				up = append(up, i)
			}
		}
		if len(up) <= o.MinAlive || t < quiet {
			continue
		}
		i := up[rng.IntN(len(up))]
		wipe := rng.Float64() < o.Wipe && len(up) == o.Stores
		u := t + uniform(o.Down/4, 7*o.Down/4)
		if o.ManagerDataLoss && t <= lossBack && u >= lossAt {
			// Down during the outage that loses the catalog: back before
			// the recovery reads the stores, and not wiped.
			if u >= lossBack {
				continue
			}
			wipe = false
		}
		upAt[i] = u
		if wipe {
			quiet = upAt[i]
		}
		plan = append(plan, Event{At: t, Kind: KillStore, Store: i, Wipe: wipe}, Event{At: upAt[i], Kind: StartStore, Store: i})
	}
	sort.SliceStable(plan, func(a, b int) bool {
		if plan[a].At != plan[b].At {
			return plan[a].At < plan[b].At
		}
		return plan[a].Kind < plan[b].Kind
	})
	return plan, nil
}
