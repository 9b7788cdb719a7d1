package chaos

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// checkPlan walks plan and reports the first broken invariant.
func checkPlan(plan []Event, o Options) error {
	o = o.withDefaults()
	down := map[int]bool{}
	wiping := -1 // the store down to be wiped, -1 if none
	managerKills, managerDown := 0, false
	losses, lost := 0, false // manager kills that lose its data; down so
	var managerAt time.Duration
	for i, e := range plan {
		if i > 0 && e.At < plan[i-1].At {
			return fmt.Errorf("event %d (%s) before event %d (%s)", i, e, i-1, plan[i-1])
		}
		switch e.Kind {
		case KillStore:
			if e.At >= o.Length {
				return fmt.Errorf("%s: kill after the plan's length %s", e, o.Length)
			}
			if down[e.Store] {
				return fmt.Errorf("%s: store already down", e)
			}
			if wiping >= 0 || e.Wipe && len(down) > 0 {
				return fmt.Errorf("%s: another store is down with a wipe planned, or a wipe is planned with another store down", e)
			}
			if e.Wipe {
				if lost {
					return fmt.Errorf("%s: a store to be wiped while the manager is down without its data", e)
				}
				wiping = e.Store
			}
			down[e.Store] = true
			if o.Stores-len(down) < o.MinAlive {
				return fmt.Errorf("%s: %d stores running, want at least %d", e, o.Stores-len(down), o.MinAlive)
			}
		case StartStore:
			if !down[e.Store] {
				return fmt.Errorf("%s: store not down", e)
			}
			delete(down, e.Store)
			if wiping == e.Store {
				wiping = -1
			}
		case KillManager:
			if managerDown {
				return fmt.Errorf("%s: manager already down", e)
			}
			if e.At < o.ManagerFrom || managerKills == 0 && e.At > o.ManagerTo {
				return fmt.Errorf("%s: outside [%s, %s]", e, o.ManagerFrom, o.ManagerTo)
			}
			if e.Wipe {
				if !o.ManagerDataLoss || managerKills > 0 {
					return fmt.Errorf("%s: a data loss that is not the first kill of ManagerDataLoss", e)
				}
				if wiping >= 0 {
					return fmt.Errorf("%s: store %d is down to be wiped", e, wiping)
				}
				losses++
				lost = true
			}
			managerKills++
			managerDown = true
			managerAt = e.At
		case StartManager:
			if !managerDown {
				return fmt.Errorf("%s: manager not down", e)
			}
			d := e.At - managerAt
			if d < o.ManagerDown || d > max(o.ManagerDown, o.ManagerDownMax) {
				return fmt.Errorf("%s: the manager was down %s, want %s to %s", e, d, o.ManagerDown, max(o.ManagerDown, o.ManagerDownMax))
			}
			if lost && len(down) > 0 {
				return fmt.Errorf("%s: the manager recovers its catalog while stores %v are down", e, down)
			}
			managerDown, lost = false, false
		}
	}
	switch {
	case len(down) > 0 || managerDown:
		return fmt.Errorf("plan ends with stores %v down, manager down %v", down, managerDown)
	case o.ManagerDown > 0 && managerKills != max(1, o.ManagerKills):
		return fmt.Errorf("manager killed %d times, want %d", managerKills, max(1, o.ManagerKills))
	case o.ManagerDown == 0 && managerKills != 0:
		return fmt.Errorf("manager killed %d times without ManagerDown", managerKills)
	case o.ManagerDataLoss != (losses == 1) || losses > 1:
		return fmt.Errorf("%d manager data losses, ManagerDataLoss %v", losses, o.ManagerDataLoss)
	}
	return nil
}

func TestPlanKeepsItsInvariants(t *testing.T) {
	for _, o := range []Options{
		{Stores: 5, Length: time.Minute, Every: 300 * time.Millisecond, Down: 4 * time.Second, Wipe: 0.3, ManagerDown: 2 * time.Second},
		{Stores: 3, MinAlive: 2, Length: 10 * time.Second, ManagerDown: time.Second, ManagerFrom: time.Second, ManagerTo: time.Second},
		{Stores: 5, Length: 3 * time.Minute, ManagerDown: 10 * time.Second, ManagerDownMax: 30 * time.Second, ManagerKills: 2,
			ManagerFrom: 5 * time.Second, ManagerTo: 12 * time.Second},
		{Stores: 8, MinAlive: 1, Length: 30 * time.Second, Every: 50 * time.Millisecond, Down: 10 * time.Second, Wipe: 1},
		// The long form's shape, with the data loss.
		{Stores: 5, Length: 3 * time.Minute, Every: 1500 * time.Millisecond, Down: 3 * time.Second, Wipe: 0.8,
			ManagerDown: 10 * time.Second, ManagerDownMax: 30 * time.Second, ManagerKills: 3, ManagerDataLoss: true,
			ManagerFrom: 5 * time.Second, ManagerTo: 12 * time.Second},
		{Stores: 3, Length: 20 * time.Second, Every: 100 * time.Millisecond, Down: 5 * time.Second, Wipe: 1,
			ManagerDown: 3 * time.Second, ManagerDataLoss: true},
	} {
		kills, wipes := 0, 0
		for seed := int64(0); seed < 200; seed++ {
			o.Seed = seed
			plan, err := Plan(o)
			if err != nil {
				t.Fatal(err)
			}
			if err := checkPlan(plan, o); err != nil {
				t.Fatalf("seed %d, %+v: %v", seed, o, err)
			}
			again, _ := Plan(o)
			if !reflect.DeepEqual(plan, again) {
				t.Fatalf("seed %d: two plans differ", seed)
			}
			for _, e := range plan {
				if e.Kind == KillStore {
					kills++
					if e.Wipe {
						wipes++
					}
				}
			}
		}
		if kills == 0 || (o.Wipe > 0) != (wipes > 0) {
			t.Fatalf("%+v: %d kills, %d wipes over 200 seeds", o, kills, wipes)
		}
	}
	a, _ := Plan(Options{Seed: 1, Stores: 5, Length: time.Minute})
	b, _ := Plan(Options{Seed: 2, Stores: 5, Length: time.Minute})
	if reflect.DeepEqual(a, b) {
		t.Fatal("seeds 1 and 2 give the same plan")
	}
}

func TestPlanRefusesBadOptions(t *testing.T) {
	for _, o := range []Options{
		{Stores: 5},                          // no length
		{Stores: 2, Length: time.Second},     // 2 stores, 2 must run
		{Stores: 5, Length: -time.Second},    // negative length
		{Stores: 5, Length: 1, Wipe: 1.5},    // wipe chance over 1
		{Stores: 5, Length: 1, MinAlive: -1}, // nothing need run
		{Stores: 5, Length: time.Second, ManagerDown: 1, ManagerFrom: 2, ManagerTo: 1}, // empty window
		{Stores: 5, Length: time.Second, ManagerDataLoss: true},                        // a data loss, no manager kill
	} {
		if _, err := Plan(o); err == nil || !strings.HasPrefix(err.Error(), "chaos: ") {
			t.Errorf("Plan(%+v): err %v, want a chaos: error", o, err)
		}
	}
}

// fakeFleet records what Run does to it and checks that it only kills
// what runs and starts what is down.
type fakeFleet struct {
	mu struct {
		sync.Mutex
		down        map[int]bool
		managerDown bool
		managerLost bool // down without its data directory
		recoveries  int
		wiped       []int
		log         []string
		err         error
	}
	safe func() bool
}

func newFakeFleet(safe func() bool) *fakeFleet {
	f := &fakeFleet{safe: safe}
	f.mu.down = map[int]bool{}
	return f
}

func (f *fakeFleet) failLocked(format string, args ...any) error {
	if f.mu.err == nil {
		f.mu.err = fmt.Errorf(format, args...)
	}
	return f.mu.err
}

func (f *fakeFleet) KillStore(i int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.mu.down[i] {
		return f.failLocked("store %d killed while down", i)
	}
	f.mu.down[i] = true
	f.mu.log = append(f.mu.log, fmt.Sprintf("kill %d", i))
	return nil
}

func (f *fakeFleet) WipeStore(i int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.mu.down[i] {
		return f.failLocked("store %d wiped while up", i)
	}
	f.mu.wiped = append(f.mu.wiped, i)
	f.mu.log = append(f.mu.log, fmt.Sprintf("wipe %d", i))
	return nil
}

func (f *fakeFleet) StartStore(i int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.mu.down[i] {
		return f.failLocked("store %d started while up", i)
	}
	delete(f.mu.down, i)
	f.mu.log = append(f.mu.log, fmt.Sprintf("start %d", i))
	return nil
}

func (f *fakeFleet) KillManager() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mu.managerDown = true
	return nil
}

func (f *fakeFleet) StartManager() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.mu.managerDown {
		return f.failLocked("manager started while up")
	}
	if f.mu.managerLost {
		return f.failLocked("manager started on the data directory it lost")
	}
	f.mu.managerDown = false
	return nil
}

func (f *fakeFleet) LoseManager() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.mu.managerDown {
		return f.failLocked("manager lost while down")
	}
	f.mu.managerDown, f.mu.managerLost = true, true
	f.mu.log = append(f.mu.log, "lose manager")
	return nil
}

func (f *fakeFleet) RecoverManager() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case !f.mu.managerLost:
		return f.failLocked("manager recovered without a data loss")
	case len(f.mu.down) > 0:
		return f.failLocked("manager recovered while stores %v are down", f.mu.down)
	}
	f.mu.managerDown, f.mu.managerLost = false, false
	f.mu.recoveries++
	f.mu.log = append(f.mu.log, "recover manager")
	return nil
}

func (f *fakeFleet) SafeToWipe(context.Context) (bool, error) { return f.safe(), nil }

func TestRunPlaysThePlan(t *testing.T) {
	o := Options{Seed: 7, Stores: 5, Length: 200 * time.Millisecond, Every: 4 * time.Millisecond,
		Down: 10 * time.Millisecond, Wipe: 0.5, ManagerDown: 20 * time.Millisecond}
	plan, err := Plan(o)
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	f := newFakeFleet(func() bool { calls++; return calls%2 == 1 })
	st, err := Run(context.Background(), f, plan, RunOptions{Logf: t.Logf})
	if err != nil || f.mu.err != nil {
		t.Fatalf("Run: %v; fleet: %v", err, f.mu.err)
	}
	want := Stats{ManagerKills: 1, ManagerStarts: 1}
	planned := 0
	for _, e := range plan {
		switch e.Kind {
		case KillStore:
			want.StoreKills++
			if e.Wipe {
				planned++
			}
		case StartStore:
			want.StoreStarts++
		}
	}
	want.Wipes = (planned + 1) / 2 // every other SafeToWipe says yes
	want.WipesSkipped = planned - want.Wipes
	if st != want {
		t.Fatalf("stats %+v, want %+v", st, want)
	}
	if len(f.mu.down) > 0 || f.mu.managerDown || len(f.mu.wiped) != st.Wipes {
		t.Fatalf("after the run: down %v, manager down %v, wiped %v", f.mu.down, f.mu.managerDown, f.mu.wiped)
	}
}

// TestRunStopsEarly: when ctx ends mid-plan, Run starts what is down and
// returns without error; the gap between wipes holds.
func TestRunStopsEarly(t *testing.T) {
	o := Options{Seed: 3, Stores: 5, Length: time.Minute, Every: 2 * time.Millisecond,
		Down: 20 * time.Millisecond, Wipe: 1, ManagerDown: time.Hour}
	plan, err := Plan(o)
	if err != nil {
		t.Fatal(err)
	}
	f := newFakeFleet(func() bool { return true })
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	st, err := Run(ctx, f, plan, RunOptions{MinWipeGap: time.Hour})
	if err != nil || f.mu.err != nil {
		t.Fatalf("Run: %v; fleet: %v", err, f.mu.err)
	}
	if st.StoreKills < 3 || st.StoreKills != st.StoreStarts || st.ManagerKills != st.ManagerStarts {
		t.Fatalf("stats %+v: want kills and starts to match", st)
	}
	if st.Wipes+st.WipesSkipped != st.StoreKills {
		t.Fatalf("stats %+v: every kill plans a wipe, want it done or skipped", st)
	}
	if st.Wipes != 1 || len(f.mu.wiped) != 1 {
		t.Fatalf("%d wipes (%v) within the gap, want 1", st.Wipes, f.mu.wiped)
	}
	if len(f.mu.down) > 0 || f.mu.managerDown {
		t.Fatalf("after the run: down %v, manager down %v", f.mu.down, f.mu.managerDown)
	}
}

// TestPlanDataLoss: the outage that loses the manager's data still sees
// stores killed and started again, but none is down when the manager
// recovers (checkPlan) and none of them is to be wiped.
func TestPlanDataLoss(t *testing.T) {
	o := Options{Stores: 5, Length: 2 * time.Minute, Every: time.Second, Down: 3 * time.Second, Wipe: 0.8,
		ManagerDown: 10 * time.Second, ManagerDownMax: 30 * time.Second, ManagerKills: 3, ManagerDataLoss: true,
		ManagerFrom: 5 * time.Second, ManagerTo: 12 * time.Second}
	during := 0
	for seed := int64(0); seed < 200; seed++ {
		o.Seed = seed
		plan, err := Plan(o)
		if err != nil {
			t.Fatal(err)
		}
		if err := checkPlan(plan, o); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		var from, to time.Duration
		for _, e := range plan {
			if e.Kind == KillManager && e.Wipe {
				from = e.At
			}
			if e.Kind == StartManager && from > 0 && to == 0 {
				to = e.At
			}
		}
		if from == 0 || plan[0].Kind == KillManager && !plan[0].Wipe {
			t.Fatalf("seed %d: no data loss first: %v", seed, plan)
		}
		for _, e := range plan {
			if e.Kind == KillStore && e.At >= from && e.At < to {
				during++
			}
		}
	}
	if during == 0 {
		t.Fatal("over 200 seeds, no store killed during the outage that loses the manager's data")
	}
}

// TestRunRecoversTheLostManager: Run loses the manager's data on the
// planned kill and recovers it at that outage's end, with every store
// running (the fake fleet fails otherwise); the later outages restart
// it on its new directory.
func TestRunRecoversTheLostManager(t *testing.T) {
	o := Options{Seed: 11, Stores: 5, Length: 300 * time.Millisecond, Every: 4 * time.Millisecond,
		Down: 10 * time.Millisecond, Wipe: 0.5, ManagerDown: 20 * time.Millisecond, ManagerKills: 3, ManagerDataLoss: true,
		ManagerFrom: 10 * time.Millisecond, ManagerTo: 100 * time.Millisecond}
	plan, err := Plan(o)
	if err != nil {
		t.Fatal(err)
	}
	f := newFakeFleet(func() bool { return true })
	st, err := Run(context.Background(), f, plan, RunOptions{Logf: t.Logf})
	if err != nil || f.mu.err != nil {
		t.Fatalf("Run: %v; fleet: %v", err, f.mu.err)
	}
	if st.ManagerKills != 3 || st.ManagerStarts != 3 || st.ManagerLosses != 1 || st.Recoveries != 1 || f.mu.recoveries != 1 {
		t.Fatalf("stats %+v, %d recoveries: want 3 kills and starts, 1 loss and 1 recovery", st, f.mu.recoveries)
	}
	if f.mu.managerDown || len(f.mu.down) > 0 {
		t.Fatalf("after the run: down %v, manager down %v", f.mu.down, f.mu.managerDown)
	}
}

// TestRunRecoversAtTheEnd: when ctx ends during the outage that lost the
// manager's data, Run still recovers it, not restarts it on the lost
// directory.
func TestRunRecoversAtTheEnd(t *testing.T) {
	plan := []Event{{At: 0, Kind: KillManager, Wipe: true}, {At: time.Hour, Kind: StartManager}}
	f := newFakeFleet(func() bool { return true })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	st, err := Run(ctx, f, plan, RunOptions{})
	if err != nil || f.mu.err != nil {
		t.Fatalf("Run: %v; fleet: %v", err, f.mu.err)
	}
	if st.Recoveries != 1 || f.mu.managerDown {
		t.Fatalf("stats %+v, manager down %v: want it recovered", st, f.mu.managerDown)
	}
}
