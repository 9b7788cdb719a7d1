package mpiio

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/ckptio/ckptio/collective"
	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/chunk"
	"github.com/ckptio/ckptio/storage/client"
	"github.com/ckptio/ckptio/storage/cluster"
	"github.com/ckptio/ckptio/storage/codec"
	"github.com/ckptio/ckptio/storage/crypt"
	"github.com/ckptio/ckptio/storage/remote"
	"github.com/ckptio/ckptio/storage/tlsconf"
	"github.com/ckptio/ckptio/storage/token"
	"github.com/ckptio/ckptio/storage/version"
)

// Meta describes a checkpoint; it is recorded with the version.
type Meta struct {
	Step   int64             // the application's step or iteration
	Labels map[string]string // free-form; keys must not start with "ckpt."
}

// ErrClosed is returned by calls on a closed Checkpointer.
var ErrClosed = errors.New("mpiio: checkpointer closed")

// Checkpointer checkpoints the protected memory of every rank of a job.
// Its methods must be called by one goroutine per rank.
type Checkpointer struct {
	cfg  Config
	sess *collective.Session
	job  *version.Job
	cat  Catalog
	pool *client.Pool
	key  *crypt.Key // nil = not encrypted

	// alert reports retries and failed checkpoints: Config.Logger, or
	// stderr when it is nil.
	alert *zap.Logger

	regions []collective.Region
	index   map[string]int
	files   fileState // ProtectFiles

	mu           sync.Mutex
	closed       bool
	snapshots    map[int64]*snapshotCache
	pending      *pending          // an asynchronous checkpoint in flight
	last         collective.Result // of the last completed checkpoint
	lastErr      error             // of the last checkpoint, nil when it committed
	latest       int64             // the latest version this program knows of; 0 = none
	stage        staging
	fallbackOnce sync.Once
}

// Catalog is what a Checkpointer needs of the manager; *catalog.Client
// implements it. Config.Catalog injects another (an in-process manager in
// tests).
type Catalog interface {
	version.Catalog
	client.StoreLister
	Versions(ctx context.Context, job string) ([]catalog.VersionInfo, error)
}

// connInfo is what rank 0 tells the other ranks about the cluster.
type connInfo struct {
	Manager string `json:"manager"`
	Token   string `json:"token"`
	// TLS: the cluster speaks TLS (CKPT_TLS_CA set); TLSCA is the PEM of
	// its CA as rank 0 read it, "" for the system's roots.
	TLS   bool   `json:"tls,omitempty"`
	TLSCA string `json:"tls_ca,omitempty"`
	// EncryptKey is the job key (hex) from Config.EncryptKeyFile as rank
	// 0 read it; "" = not encrypted.
	EncryptKey string `json:"encrypt_key,omitempty"`
}

// Open connects every rank of comm to the cluster and forms the aggregation
// groups. Collective. With no manager configured, rank 0 starts (or reuses)
// the embedded local cluster. With Config.Catalog and Config.Dial set,
// every rank uses those instead and no cluster is looked for.
func Open(ctx context.Context, comm collective.Comm, cfg Config) (*Checkpointer, error) {
	// Every rank must take the same path, so a configuration error on any
	// rank stops all of them.
	quiet := cfg.Logger == nil
	cfgErr := cfg.fromEnv()
	bad, anyBad := []int64{0}, []int64{0}
	if cfgErr != nil {
		bad[0] = 1
	}
	if err := comm.AllreduceInt64(bad, anyBad, collective.OpMax); err != nil {
		return nil, fmt.Errorf("mpiio: open: %w", err)
	}
	if anyBad[0] != 0 {
		if cfgErr != nil {
			return nil, cfgErr
		}
		return nil, errors.New("mpiio: open: another rank's configuration is invalid (see its error)")
	}
	raw, err := collective.Share(comm, func() ([]byte, error) {
		var ci connInfo
		if cfg.Catalog == nil {
			var err error
			if ci, err = resolveCluster(ctx, cfg); err != nil {
				return nil, err
			}
		}
		if cfg.EncryptKeyFile != "" {
			k, err := crypt.ReadKeyFile(cfg.EncryptKeyFile)
			if err != nil {
				return nil, fmt.Errorf("mpiio: CKPT_ENCRYPT_KEY_FILE: %w", err)
			}
			ci.EncryptKey = k.Hex()
		}
		return json.Marshal(ci)
	})
	if err != nil {
		return nil, fmt.Errorf("mpiio: open: %w", err)
	}
	var ci connInfo
	if err := json.Unmarshal(raw, &ci); err != nil {
		return nil, fmt.Errorf("mpiio: %w", err)
	}
	tok := []byte(ci.Token)
	var tlsConf *tls.Config
	if ci.TLS {
		// The same PEM on every rank: all fail or none.
		if tlsConf, err = tlsconf.ClientPEM([]byte(ci.TLSCA), ""); err != nil {
			return nil, fmt.Errorf("mpiio: CKPT_TLS_CA: %w", err)
		}
	}
	cp := &Checkpointer{cfg: cfg, index: map[string]int{}, snapshots: map[int64]*snapshotCache{}}
	if ci.EncryptKey != "" {
		if cp.key, err = crypt.ParseKey([]byte(ci.EncryptKey)); err != nil {
			return nil, fmt.Errorf("mpiio: %w", err)
		}
	}
	log := cfg.Logger
	cp.alert = log
	if quiet {
		cp.alert = stderrLogger()
	}
	dial := cfg.Dial
	cat := cfg.Catalog
	if cat == nil {
		cat = catalog.NewClient(ci.Manager, tok, catalog.ClientOptions{TLS: tlsConf})
		dial = func(ctx context.Context, addr string) (storage.BlockStore, error) {
			return remote.Dial(ctx, addr, tok, remote.Options{Logger: log, NoVerify: true, TLS: tlsConf})
		}
	}
	cp.cat = catalog.NewRetrying(cat, catalog.RetryOptions{For: cfg.RetryFor, Logger: cp.alert})
	cp.pool = client.NewPool(cp.cat, dial, log)
	chunker, err := chunk.Options{Kind: cfg.Chunking, Size: cfg.BlockSize}.New()
	if err != nil {
		cp.pool.Close()
		return nil, fmt.Errorf("mpiio: %w", err)
	}
	cp.sess, err = collective.NewSession(comm, collective.Options{
		RanksPerLeader: cfg.RanksPerLeader, LeaderMemory: cfg.LeaderMemory, BlockSize: cfg.BlockSize,
		Chunker: chunker, Logger: log})
	if err != nil {
		cp.pool.Close()
		return nil, err
	}
	wopts := client.WriterOptions{Logger: log, Replicas: cfg.Replicas, Optimistic: cfg.Optimistic, Redundancy: cfg.Redundancy}
	if !cfg.NoCompress {
		wopts.Encode = codec.Encode
	}
	if cp.key != nil {
		wopts.Seal = cp.key.Seal
	}
	cp.job = &version.Job{Name: cfg.Job, Catalog: cp.cat, Pool: cp.pool, Writer: wopts,
		Reader: client.ReaderOptions{Logger: log, Decode: cp.key.Decode}, Logger: log}
	return cp, nil
}

func resolveCluster(ctx context.Context, cfg Config) (connInfo, error) {
	if cfg.Manager == "" {
		info, err := cluster.Up(ctx, cluster.Options{Home: cfg.Home})
		if err != nil {
			return connInfo{}, err
		}
		tok, err := token.ReadFile(info.TokenFile)
		if err != nil {
			return connInfo{}, err
		}
		return connInfo{Manager: info.Manager, Token: string(tok)}, nil
	}
	tok := cfg.Token
	if tok == nil {
		var err error
		if tok, err = token.Resolve(cfg.TokenFile); err != nil {
			return connInfo{}, fmt.Errorf("mpiio: %w", err)
		}
	}
	ci := connInfo{Manager: cfg.Manager, Token: string(tok)}
	// Rank 0 reads the CA for every rank, so that a bad file fails them all.
	switch ca := os.Getenv("CKPT_TLS_CA"); ca {
	case "":
	case "system":
		ci.TLS = true
	default:
		pem, err := os.ReadFile(ca)
		if err != nil {
			return connInfo{}, fmt.Errorf("mpiio: CKPT_TLS_CA: %w", err)
		}
		if _, err := tlsconf.ClientPEM(pem, ""); err != nil {
			return connInfo{}, fmt.Errorf("mpiio: CKPT_TLS_CA=%s: %w", ca, err)
		}
		ci.TLS, ci.TLSCA = true, string(pem)
	}
	return ci, nil
}

// Job is the job's name.
func (cp *Checkpointer) Job() string { return cp.cfg.Job }

// Rank is this rank in the world.
func (cp *Checkpointer) Rank() int { return cp.sess.Rank() }

// Protect registers data, a slice the program updates in place, under name.
// Protecting a name again replaces the slice (after the program reallocated
// it). Not collective, but every rank should protect before Checkpoint.
func (cp *Checkpointer) Protect(name string, data any) error {
	if !regionName.MatchString(name) {
		return fmt.Errorf("mpiio: region name %q: want 1-64 characters of A-Z a-z 0-9 . _ -", name)
	}
	if slices.Contains(cp.files.paths, name) {
		return fmt.Errorf("mpiio: protect %q: the rank protects the file /%s, and a rank's regions and files share names in a version; rename the region", name, name)
	}
	b, err := bytesOf(data)
	if err != nil {
		return fmt.Errorf("mpiio: protect %q: %w", name, err)
	}
	if i, ok := cp.index[name]; ok {
		cp.regions[i].Data = b
	} else {
		cp.index[name] = len(cp.regions)
		cp.regions = append(cp.regions, collective.Region{Name: name, Data: b})
	}
	// Allocate (and fault in) the asynchronous copy now, so the first
	// checkpoint does not pay for it while the program waits.
	if !cp.cfg.Sync && cp.pendingNone() {
		var n int64
		for _, r := range cp.regions {
			n += int64(len(r.Data))
		}
		if n <= cp.cfg.AsyncMemory {
			cp.stage.copyOf(cp.regions)
		}
	}
	return nil
}

// pendingNone reports whether no asynchronous checkpoint is in flight (its
// copy must not be touched then).
func (cp *Checkpointer) pendingNone() bool {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return cp.pending == nil
}

func (cp *Checkpointer) check() error {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if cp.closed {
		return ErrClosed
	}
	return nil
}

// Checkpoint saves every rank's protected regions and files
// (ProtectFiles) as a new version. Collective; the version commits only if
// every rank succeeded, regions and files together.
//
// Asynchronous (the default, unless Config.Sync or CKPT_ASYNC=0): each rank
// copies its regions (within Config.AsyncMemory) and the protected files
// the version must read (new and changed ones, into Config.StagingDir),
// and Checkpoint returns 0 at once while the leaders write in the
// background; the program may overwrite its regions and files right away.
// The next Checkpoint, Restore, Latest, Resume or Close first waits for
// that commit, and a background failure is returned by that next call on
// every rank. Wait waits explicitly and returns the version number.
//
// Synchronous: Checkpoint returns the committed version number.
func (cp *Checkpointer) Checkpoint(ctx context.Context, meta Meta) (int64, error) {
	if err := cp.check(); err != nil {
		return 0, err
	}
	called := time.Now()
	if _, err := cp.Wait(ctx); err != nil {
		return 0, err
	}
	cp.mu.Lock()
	cp.lastErr = nil // this one's, once it ends
	cp.mu.Unlock()
	began := time.Now()
	st := CheckpointStats{Job: cp.cfg.Job, Rank: cp.Rank(), Step: meta.Step}
	c := cp.newCapture()
	if cp.asyncAllowed(cp.regions) {
		err := cp.freeze(c)
		if err == nil {
			regions := cp.stage.copyOf(cp.regions)
			st.Async, st.Blocked = true, time.Since(called)
			cp.start(ctx, meta, regions, c, st, began)
			return 0, nil
		}
		cp.cfg.Logger.Warn("protected files could not be staged for an asynchronous checkpoint; this rank checkpoints synchronously",
			zap.Int("rank", cp.Rank()), zap.Error(err), zap.String("fix", "set CKPT_STAGING_DIR to a writable directory with room"))
	}
	r, err := cp.checkpoint(ctx, meta, cp.regions, c)
	cp.report(st, called, began, r, err)
	if err != nil {
		return 0, cp.failed(meta.Step, err)
	}
	return r.Version, nil
}

// checkpoint writes regions and the capture c (nil: no files) as one
// version.
func (cp *Checkpointer) checkpoint(ctx context.Context, meta Meta, regions []collective.Region, c *capture) (collective.Result, error) {
	defer c.release()
	m := map[string]string{catalog.MetaStep: strconv.FormatInt(meta.Step, 10)}
	for k, v := range meta.Labels {
		m[catalog.MetaLabelPrefix+k] = v
	}
	cp.key.AddMeta(m)
	r, err := cp.sess.CheckpointWith(ctx, cp.job, regions, m, cp.extra(c))
	if err != nil {
		return r, fmt.Errorf("mpiio: checkpoint of %s: %w", cp.cfg.Job, err)
	}
	cp.committed(c)
	cp.mu.Lock()
	cp.last, cp.lastErr, cp.latest = r, nil, max(cp.latest, r.Version)
	cp.mu.Unlock()
	return r, nil
}

// Latest returns the newest committed version, and false when there is
// none. Collective.
func (cp *Checkpointer) Latest(ctx context.Context) (int64, bool, error) {
	if err := cp.check(); err != nil {
		return 0, false, err
	}
	if _, err := cp.Wait(ctx); err != nil {
		return 0, false, err
	}
	raw, err := collective.Share(cp.sess.World(), func() ([]byte, error) {
		vs, err := cp.cat.Versions(ctx, cp.cfg.Job)
		if errors.Is(err, catalog.ErrUnknownJob) || errors.Is(err, catalog.ErrNoVersions) {
			return []byte("0"), nil
		}
		if err != nil {
			return nil, err
		}
		var latest int64
		for _, v := range vs {
			latest = max(latest, v.Version)
		}
		return []byte(strconv.FormatInt(latest, 10)), nil
	})
	if err != nil {
		return 0, false, fmt.Errorf("mpiio: latest version of %s: %w", cp.cfg.Job, err)
	}
	v, _ := strconv.ParseInt(string(raw), 10, 64)
	cp.mu.Lock()
	cp.latest = max(cp.latest, v)
	cp.mu.Unlock()
	return v, v > 0, nil
}

// Restore refills every rank's protected regions from version v (0 = the
// latest) and rolls its protected files back to it. Collective. See
// collective.Session.Restore for what is checked of the regions; every
// path a rank protects must have been protected by that rank in the
// version (or lie inside one that was), else the restore is refused on
// every rank before anything is touched.
func (cp *Checkpointer) Restore(ctx context.Context, v int64) error {
	if err := cp.check(); err != nil {
		return err
	}
	if _, err := cp.Wait(ctx); err != nil {
		return err
	}
	x, rb := cp.restoreExtra()
	if _, err := cp.sess.RestoreWith(ctx, cp.job, v, cp.regions, x); err != nil {
		return fmt.Errorf("mpiio: %w", err)
	}
	rb.restored()
	return nil
}

// LastRestore returns where the last Restore's time went on this rank
// (collective.Stages).
func (cp *Checkpointer) LastRestore() collective.Stages { return cp.sess.LastRestore() }

// Resume restores CKPT_RESTART_VERSION when it is set, else the latest
// version when there is one; it reports the version and whether anything
// was restored. CKPT_RESTART_VERSION=none (ckptrun --fresh) restores
// nothing: the program starts from the beginning and its checkpoints are
// new versions after the old ones, which are kept. Collective. This is
// what a program calls at start.
func (cp *Checkpointer) Resume(ctx context.Context) (int64, bool, error) {
	if os.Getenv("CKPT_RESTART_VERSION") == RestartNone {
		return 0, false, nil
	}
	v, set, err := restartVersion()
	if err != nil {
		return 0, false, err
	}
	if !set {
		var ok bool
		if v, ok, err = cp.Latest(ctx); err != nil || !ok {
			return 0, false, err
		}
	}
	if err := cp.Restore(ctx, v); err != nil {
		return 0, false, err
	}
	return v, true, nil
}

// Versions lists the job's committed versions (not collective).
func (cp *Checkpointer) Versions(ctx context.Context) ([]catalog.VersionInfo, error) {
	return cp.cat.Versions(ctx, cp.cfg.Job)
}

// Close waits for a checkpoint draining in the background, then releases
// the session. Collective. It returns the background checkpoint's error, if
// any.
func (cp *Checkpointer) Close(ctx context.Context) error {
	_, werr := cp.Wait(ctx)
	cp.mu.Lock()
	if cp.closed {
		cp.mu.Unlock()
		return nil
	}
	cp.closed = true
	cp.mu.Unlock()
	err := cp.sess.Close()
	cp.pool.Close()
	return errors.Join(werr, err)
}
