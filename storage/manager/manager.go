package manager

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
	"go.uber.org/zap"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/catalog"
)

// Defaults for Options.
const (
	DefaultDeadAfter        = 15 * time.Second
	DefaultSpotChecks       = 2
	DefaultTxnTimeout       = 10 * time.Minute
	DefaultMaxManifestBytes = 256 << 20
	maxJSONBody             = 1 << 20
	// storePersistEvery bounds how stale a store's persisted figures get:
	// heartbeats update memory, and the catalog at most this often per store
	// (or at once when the store is new or moves).
	storePersistEvery = 30 * time.Second
)

// CatalogFile is the bbolt file under the data directory.
const CatalogFile = "catalog.db"

// Options configure a Manager. The zero value of each field picks the
// default named in its comment.
type Options struct {
	// Token is the cluster token requests are signed with. Required.
	Token []byte
	// DeadAfter: a store is dead when it has not heartbeated for this long.
	// Zero means DefaultDeadAfter (15s).
	DeadAfter time.Duration
	// TxnTimeout: an in-flight version not begun or renewed for this long
	// is abandoned and removed. Zero means DefaultTxnTimeout (10m).
	TxnTimeout time.Duration
	// MaxManifestBytes bounds a commit's body. Zero means
	// DefaultMaxManifestBytes (256 MiB).
	MaxManifestBytes int64
	// Logger receives the manager's logs. Nil means zap.NewNop().
	Logger *zap.Logger
	// Now is the clock. Nil means time.Now; tests pass a fake.
	Now func() time.Time
	// JanitorEvery is how often abandoned transactions are looked for. Zero
	// means TxnTimeout/4, capped to [10ms, 30s].
	JanitorEvery time.Duration
	// GCEvery is how often garbage collection runs on its own. Zero means
	// DefaultGCEvery (10m); negative means never (GC runs only when asked).
	GCEvery time.Duration
	// GCSweepTimeout bounds the sweep of one store in a collection: a
	// store that has not been swept within it (slow, or answering
	// nothing: each request also fails after the connection's reply
	// timeout) is reported failed and the collection moves on. Zero means
	// DefaultGCSweepTimeout (10m).
	GCSweepTimeout time.Duration
	// GCClockSkew is how far the clock of a store that does not report
	// its time (storage.Stat.Now) may lag the manager's: for such a store
	// the sweep keeps every block touched after the oldest transaction in
	// flight began minus this. Stores that report their time get a horizon
	// measured on their own clock instead. Zero means DefaultGCClockSkew
	// (10m); negative means none.
	GCClockSkew time.Duration
	// DialStore connects to a store for garbage collection, health checks
	// and repair; the latter two need the connection to implement
	// RepairStore too. Nil means remote.Dial with Token.
	DialStore func(ctx context.Context, id, addr string) (GCStore, error)
	// RepairEvery is how often the background repair looks for blocks
	// below their replication target (it runs a full pass only when a
	// version was committed, the alive stores changed, or 10 minutes
	// passed; see repair.go). Zero means DefaultRepairEvery (30s);
	// negative means never (repair runs only when asked).
	RepairEvery time.Duration
	// RepairParallel bounds the blocks a repair pass copies at once. Zero
	// means DefaultRepairParallel (8).
	RepairParallel int
	// SpotChecks is how many copies of each store a health check or
	// repair pass reads back to check that the store holds what it
	// claims (survey.go). Zero means DefaultSpotChecks (2); negative
	// means none.
	SpotChecks int
	// hooks, set by this package's tests only, are told when background
	// work ends, so a test waits on that event rather than polling.
	hooks *hooks
	// RepairMaxBytes bounds the block bytes a repair pass holds in memory
	// at once. Zero means DefaultRepairMaxBytes (64 MiB).
	RepairMaxBytes int64
	// Observer, when not nil, is told of commits, GC and repair passes
	// and HTTP requests, for metrics (see Observer); nil observes nothing.
	Observer Observer
}

// hooks are the events Options.hooks reports; nil fields are not called.
type hooks struct {
	recordsSynced func(store string) // queueRecordSync's sync ended
	repaired      func(job string)   // queueRepair's repair ended
}

// Manager is the catalog of stores, jobs, versions and in-flight
// transactions, kept in a bbolt file. Its methods are safe for concurrent
// use; Handler serves them over HTTP.
type Manager struct {
	opts Options
	log  *zap.Logger
	db   *bolt.DB
	dir  string

	ctx  context.Context // done when Close begins
	stop context.CancelFunc
	wg   sync.WaitGroup

	opened    time.Time     // when Open ran, on opts.Now
	repairSem chan struct{} // held by the running repair pass
	gcWake    chan struct{} // gcCatchUp: a store GC skipped as busy is idle (stores.go)
	records   recordState   // catalog records on the stores (records.go)
	refused   atomic.Int64  // API requests refused as unauthorized (http.go)
	// identityRefused counts heartbeats refused for their store identity.
	identityRefused atomic.Int64

	mu struct {
		sync.Mutex
		stores    map[string]*storeState
		forgotten map[string]time.Time // store ID -> when forgotten (stores.go)
		closed    bool
		gcRunning bool
		gcSince   time.Time // start of the running GC
		lastGC    *catalog.GCReport
		repair    repairState
	}
}

// repairState is the repair bookkeeping, guarded by Manager.mu.
type repairState struct {
	running  bool
	since    time.Time             // start of the running pass
	last     *catalog.RepairReport // the last pass finished
	dirty    bool                  // something changed since the last full pass
	aliveSig string                // the alive stores at the last full pass
	lastFull time.Time             // start of the last full pass
	queued   map[string]bool       // jobs whose repair is queued (corrupt.go)

	progress catalog.RepairProgress // of the running pass
}

// storeState is a store's latest heartbeat, in memory.
type storeState struct {
	info      catalog.StoreInfo
	live      bool      // heartbeated since this manager started
	persisted time.Time // when info was last written to the catalog
	// gcDeferred: a GC skipped the store as busy; the next heartbeat that
	// says it is idle asks for a catch-up GC.
	gcDeferred bool
}

// Open opens (creating if needed) the catalog in dataDir and starts the
// janitor. The bbolt file lock keeps a second manager out of the same
// directory: Open fails with ErrLocked.
func Open(dataDir string, opts Options) (*Manager, error) {
	if len(opts.Token) == 0 {
		return nil, fmt.Errorf("manager: open %s: no cluster token", dataDir)
	}
	if opts.DeadAfter <= 0 {
		opts.DeadAfter = DefaultDeadAfter
	}
	if opts.TxnTimeout <= 0 {
		opts.TxnTimeout = DefaultTxnTimeout
	}
	if opts.MaxManifestBytes <= 0 {
		opts.MaxManifestBytes = DefaultMaxManifestBytes
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.JanitorEvery <= 0 {
		opts.JanitorEvery = min(max(opts.TxnTimeout/4, 10*time.Millisecond), 30*time.Second)
	}
	if opts.GCSweepTimeout <= 0 {
		opts.GCSweepTimeout = DefaultGCSweepTimeout
	}
	if opts.GCEvery == 0 {
		opts.GCEvery = DefaultGCEvery
	}
	switch {
	case opts.GCClockSkew == 0:
		opts.GCClockSkew = DefaultGCClockSkew
	case opts.GCClockSkew < 0:
		opts.GCClockSkew = 0
	}
	if opts.RepairEvery == 0 {
		opts.RepairEvery = DefaultRepairEvery
	}
	switch {
	case opts.SpotChecks == 0:
		opts.SpotChecks = DefaultSpotChecks
	case opts.SpotChecks < 0:
		opts.SpotChecks = 0
	}
	if opts.RepairParallel <= 0 {
		opts.RepairParallel = DefaultRepairParallel
	}
	if opts.RepairMaxBytes <= 0 {
		opts.RepairMaxBytes = DefaultRepairMaxBytes
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("manager: open: %w", err)
	}
	path := filepath.Join(dataDir, CatalogFile)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 200 * time.Millisecond})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("%w: %s is locked by another ckpt-manager", catalog.ErrLocked, path)
		}
		return nil, fmt.Errorf("manager: open %s: %w", path, err)
	}
	m := &Manager{opts: opts, log: opts.Logger, db: db, dir: dataDir, opened: opts.Now(), repairSem: make(chan struct{}, 1), gcWake: make(chan struct{}, 1)}
	m.mu.stores = make(map[string]*storeState)
	m.mu.forgotten = make(map[string]time.Time)
	if m.opts.DialStore == nil {
		m.opts.DialStore = m.dialRemote
	}
	if err := m.init(); err != nil {
		db.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.ctx, m.stop = ctx, cancel
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.janitor(ctx)
	}()
	if opts.GCEvery > 0 {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.gcLoop(ctx)
		}()
	}
	if opts.RepairEvery > 0 {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.repairLoop(ctx)
		}()
	}
	m.log.Info("catalog opened", zap.String("path", path), zap.Int("stores", len(m.mu.stores)))
	return m, nil
}

// Close stops the janitor, the periodic garbage collection and repair,
// interrupts a GC or repair pass in progress, and closes the catalog. Requests in flight on the
// Handler fail with storage.ErrClosed.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.mu.closed {
		m.mu.Unlock()
		return nil
	}
	m.mu.closed = true
	m.mu.Unlock()
	m.stop()
	m.wg.Wait()
	if err := m.db.Close(); err != nil {
		return fmt.Errorf("manager: close: %w", err)
	}
	return nil
}

func (m *Manager) now() time.Time { return m.opts.Now() }

// janitor removes abandoned transactions until ctx is done.
func (m *Manager) janitor(ctx context.Context) {
	t := time.NewTicker(m.opts.JanitorEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := m.expireTxns(); err != nil {
				m.log.Error("expiring transactions", zap.Error(err))
			}
		}
	}
}

// Heartbeat registers a store or updates its figures, and marks it alive.
func (m *Manager) Heartbeat(hb catalog.Heartbeat) error {
	if err := hb.Validate(); err != nil {
		return err
	}
	now := m.now()
	m.mu.Lock()
	if m.mu.closed {
		m.mu.Unlock()
		return storage.ErrClosed
	}
	if at, gone := m.mu.forgotten[hb.ID]; gone {
		m.mu.Unlock()
		return forgottenError(hb.ID, at)
	}
	st, ok := m.mu.stores[hb.ID]
	var bound []byte
	if ok {
		bound = st.info.PublicKey
	}
	if err := hb.CheckIdentity(bound); err != nil {
		m.mu.Unlock()
		if n := m.identityRefused.Add(1); n&(n-1) == 0 {
			m.log.Warn("heartbeat refused: store identity", zap.String("id", hb.ID), zap.String("addr", hb.Addr),
				zap.Int64("refused_total", n), zap.Error(err))
		}
		return err
	}
	if len(bound) == 0 && len(hb.PublicKey) != 0 && ok {
		m.log.Info("store identity bound", zap.String("id", hb.ID), zap.String("key", catalog.KeyFingerprint(hb.PublicKey)))
	}
	hb.Signature = nil // checked; not kept nor shown
	joined := !ok || m.rejoined(ok, st.live, st.info.LastSeen, now)
	if !ok {
		st = &storeState{info: catalog.StoreInfo{Heartbeat: catalog.Heartbeat{ID: hb.ID}, FirstSeen: now}}
		m.mu.stores[hb.ID] = st
		m.log.Info("new store", zap.String("id", hb.ID), zap.String("addr", hb.Addr))
	} else if !st.live {
		m.log.Info("store is back", zap.String("id", hb.ID), zap.String("addr", hb.Addr))
	}
	// A store that joins, comes back or holds fewer blocks than it did may
	// change what the next repair finds.
	if !ok || !st.live || hb.Blocks < st.info.Blocks {
		m.mu.repair.dirty = true
	}
	// A store whose owner no longer needs the desktop gets the work it
	// was spared: repair at its next tick, garbage collection now.
	idleAgain := st.info.Busy && !hb.Busy
	if idleAgain {
		m.mu.repair.dirty = true
	}
	catchUp := idleAgain && st.gcDeferred
	if catchUp {
		st.gcDeferred = false
	}
	changed := st.info.Addr != hb.Addr || st.info.Label != hb.Label || st.info.Busy != hb.Busy ||
		!bytes.Equal(st.info.PublicKey, hb.PublicKey)
	st.info.Heartbeat = hb
	st.info.LastSeen = now
	st.live = true
	persist := !ok || changed || now.Sub(st.persisted) >= storePersistEvery
	if persist {
		st.persisted = now
	}
	m.mu.Unlock()
	if catchUp {
		m.gcCatchUp()
	}
	if joined {
		m.queueRecordSync(hb.ID, hb.Addr) // records.go
	}
	if !persist {
		return nil
	}
	return m.persistStore(hb.ID)
}

// Stores returns every store the catalog knows, ordered by ID, with Alive
// computed from the last heartbeat.
func (m *Manager) Stores() []catalog.StoreInfo {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]catalog.StoreInfo, 0, len(m.mu.stores))
	for _, st := range m.mu.stores {
		info := st.info
		info.Alive = st.live && now.Sub(info.LastSeen) <= m.opts.DeadAfter
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b catalog.StoreInfo) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return out
}
