package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/ckptio/ckptio/cmd/internal/cli"
	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/client"
	"github.com/ckptio/ckptio/storage/crypt"
	"github.com/ckptio/ckptio/storage/erasure"
	"github.com/ckptio/ckptio/storage/manifest"
	"github.com/ckptio/ckptio/storage/tree"
)

func restoreCmd(g *globals) *cobra.Command {
	return writeOutCmd(g, "restore", "Write every object of a version of JOB into DIR (MPI: one file per rank and region)", `Writes out one version of JOB (default: the latest) under DIR, verifying
every block. For an MPI checkpoint each rank's region becomes a file named
rank-NNNNN/REGION (rank number zero-padded to 5 digits), holding the
region's bytes exactly as they were in memory; concatenating one region's
files in rank order gives the global array for a row-split program. The
files a rank protected (ProtectFiles) go under rank-NNNNN/files/, by their
absolute paths. For files put with 'ckpt put' it is the same as 'ckpt get'.
Existing files are replaced only with --overwrite. An encrypted version
needs its key (--encrypt-key-file or CKPT_ENCRYPT_KEY_FILE).

To restart a job from this version instead, run
  ckptrun --restart-version N ... PROGRAM`, false)
}

// writeOutCmd is 'ckpt restore' (filesOnly false) or 'ckpt get' (true):
// one code path, writeOut, with the same flags.
func writeOutCmd(g *globals, name, short, long string, filesOnly bool) *cobra.Command {
	var ver int64
	var to, keyFile string
	var overwrite, asJSON bool
	var pf progressFlags
	c := &cobra.Command{
		Use:   name + " JOB --to DIR [--version N] [--overwrite] [--json]",
		Short: short,
		Long:  long,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if to == "" {
				return cli.Usagef("--to DIR is required")
			}
			key, err := crypt.Resolve(keyFile)
			if err != nil {
				return err
			}
			return writeOut(cmd.Context(), g, args[0], ver, to, key, overwrite, filesOnly, asJSON, &pf)
		},
	}
	c.Flags().Int64Var(&ver, "version", 0, "version to "+name+" (default: latest)")
	c.Flags().StringVar(&to, "to", "", "directory to write into (created if missing)")
	c.Flags().StringVar(&keyFile, "encrypt-key-file", "", "key file of an encrypted version (default $CKPT_ENCRYPT_KEY_FILE)")
	c.Flags().BoolVar(&overwrite, "overwrite", false, "replace files that exist under DIR")
	pf.register(c)
	c.Flags().BoolVar(&asJSON, "json", false, "print a JSON summary (ckptio.transfer/1) at the end")
	return c
}

// writeOut writes a version under to as 'ckpt ls' shows it (tree.Layout):
// files by the names they were put with, MPI regions as rank-NNNNN/REGION
// and a rank's protected files under rank-NNNNN/files/, all through
// tree.Extract. filesOnly ('ckpt get') refuses an MPI checkpoint.
func writeOut(ctx context.Context, g *globals, job string, ver int64, to string, key *crypt.Key, overwrite, filesOnly, asJSON bool, pf *progressFlags) error {
	start := time.Now()
	s, err := g.connect(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	m, err := s.mc.Manifest(ctx, job, ver)
	if err != nil {
		return err
	}
	if filesOnly && m.Kind != manifest.KindFiles {
		return fmt.Errorf("%s version %d is an MPI checkpoint (kind %q); use 'ckpt restore'", job, m.Version, m.Kind)
	}
	if err := crypt.Check(m, key); err != nil {
		return err
	}
	shown, err := tree.Layout(m)
	if err != nil {
		return err
	}
	regions := 0
	for _, f := range shown {
		if f.Region {
			regions++
		}
	}
	files := tree.Files(shown)
	var total int64
	for _, f := range files {
		if f.Type == manifest.TypeFile {
			total += f.Size
		}
	}
	meter := pf.start(writeOutVerb(filesOnly)+" "+job, total)
	defer meter.Stop()
	cr := client.NewReader(s.pool.Resolve, client.ReaderOptions{Logger: s.log, Decode: key.Decode, Dead: s.pool.Dead})
	r := countingReader{cr, meter}
	err = tree.Extract(ctx, r, files, to, tree.ExtractOptions{Overwrite: overwrite})
	if sum := cr.DegradedSummary(); sum != "" {
		// One line for every block read from another copy.
		fmt.Fprintf(os.Stderr, "ckpt: %s\n", sum)
	}
	reportCorrupt(ctx, s, job, cr.Corrupt())
	if err != nil {
		if errors.Is(err, tree.ErrExists) {
			return fmt.Errorf("%w: choose another --to, or pass --overwrite to replace them", err)
		}
		return err
	}
	what := fmt.Sprintf("%d entries", len(files))
	if regions > 0 {
		what = fmt.Sprintf("%d regions and %d protected entries", regions, len(files)-regions)
	}
	took := meter.Stop()
	fmt.Fprintf(os.Stderr, "ckpt: %s version %d: %s, %s written under %s in %s, %s\n", job, m.Version, what, storage.FormatSize(m.LogicalBytes), to, took.Took(), took.Rate())
	if asJSON {
		op := "restore"
		if filesOnly {
			op = "get"
		}
		return printJSON(newTransfer(op, job, m.Version, len(files), m.LogicalBytes, start))
	}
	return nil
}

// writeOutVerb is the command writeOut runs for.
func writeOutVerb(filesOnly bool) string {
	if filesOnly {
		return "get"
	}
	return "restore"
}

func verifyCmd(g *globals) *cobra.Command {
	var version int64
	var asJSON, deep bool
	var keyFile string
	var pf progressFlags
	c := &cobra.Command{
		Use:   "verify JOB [--version N] [--json] [--deep]",
		Short: "Say whether JOB's versions are healthy, degraded or lost",
		Long: `Prints one line per version of JOB (or only --version N) with its state:

  healthy   every block has at least the version's replication target of
            copies on alive stores
  degraded  some block has fewer copies, but at least one: every byte can
            still be read; the manager makes new copies in the background
            (ckpt-manager --repair-every), or now with 'ckpt repair JOB'
  lost      some block has no copy on an alive store: the version cannot be
            restored unless a store holding it comes back

The manager asks the alive stores which blocks they hold; no data is read.
With --deep every copy is also read and checked against its hash: a copy
that is missing, unreadable or corrupt does not count, and each unreadable
or corrupt one is listed.

Exits non-zero when a version is lost, and with --deep when a copy is
unreadable or corrupt. A degraded version exits 0 (and says so). --deep
on an encrypted version needs its key (--encrypt-key-file or
CKPT_ENCRYPT_KEY_FILE): every copy is decrypted and checked. --deep shows
its progress on stderr (a bar on a terminal, else a line every few
seconds; --quiet silences it) and ends with a line giving the bytes read
and the rate (MB/s).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if version < 0 {
				return cli.Usagef("--version must be positive")
			}
			var key *crypt.Key
			if deep {
				var err error
				if key, err = crypt.Resolve(keyFile); err != nil {
					return err
				}
			}
			return verify(cmd.Context(), g, args[0], version, asJSON, deep, key, &pf)
		},
	}
	c.Flags().Int64Var(&version, "version", 0, "version to verify (default: every version)")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON: one object per version with its state and counts")
	c.Flags().BoolVar(&deep, "deep", false, "also read every copy of every block and check its hash")
	c.Flags().StringVar(&keyFile, "encrypt-key-file", "", "with --deep, key file of encrypted versions (default $CKPT_ENCRYPT_KEY_FILE)")
	pf.register(c)
	return c
}

// versionCheck is a version as 'ckpt verify --json' prints it: the
// manager's VersionHealth (version, state, target, blocks,
// degraded_blocks, lost_blocks, min_copies), recounted from the copies
// read with --deep, plus the bad copies found by --deep.
type versionCheck struct {
	catalog.VersionHealth
	BadCopies []badCopy `json:"bad_copies,omitempty"`
}

// healthDoc is 'ckpt verify --json': the manager's health report
// (catalog.JobHealth, ckptio.health/1) with the versions recounted by
// --deep and their bad copies.
type healthDoc struct {
	Schema   string                      `json:"schema"`
	Job      string                      `json:"job"`
	Checked  time.Time                   `json:"checked"`
	Deep     bool                        `json:"deep"`
	Versions []versionCheck              `json:"versions"`
	Stores   []catalog.RepairStoreReport `json:"stores"`
	Skipped  []catalog.StoreRef          `json:"skipped"`
}

// badCopy is a copy --deep could not read back intact.
type badCopy struct {
	Object string `json:"object"`
	Rank   int32  `json:"rank"`
	Offset int64  `json:"offset"`
	Store  string `json:"store"`
	Error  string `json:"error"`
}

func verify(ctx context.Context, g *globals, job string, version int64, asJSON, deep bool, key *crypt.Key, pf *progressFlags) error {
	s, err := g.connect(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	h, err := s.mc.Health(ctx, job, version)
	if err != nil {
		return err
	}
	checks := make([]versionCheck, len(h.Versions))
	for i, vh := range h.Versions {
		checks[i] = versionCheck{VersionHealth: vh}
	}
	if deep {
		if err := deepCheck(ctx, s, job, checks, key, pf); err != nil {
			return err
		}
	}
	var lost, degraded, bad, unknown []string
	for _, c := range checks {
		switch c.State {
		case catalog.StateUnknown:
			unknown = append(unknown, strconv.FormatInt(c.Version, 10))
		case catalog.StateLost:
			lost = append(lost, strconv.FormatInt(c.Version, 10))
		case catalog.StateDegraded:
			degraded = append(degraded, strconv.FormatInt(c.Version, 10))
		}
		for range c.BadCopies {
			bad = append(bad, strconv.FormatInt(c.Version, 10))
		}
	}
	if asJSON {
		doc := healthDoc{Schema: catalog.SchemaHealth, Job: h.Job, Checked: h.Checked, Deep: deep, Versions: checks, Stores: h.Stores, Skipped: h.Skipped}
		if err := printJSON(doc); err != nil {
			return err
		}
	} else {
		printChecks(checks)
	}
	for _, st := range h.Stores {
		if st.Error != "" {
			fmt.Fprintf(os.Stderr, "ckpt: store %s (%s): its copies were not counted: %s\n", st.ID, st.Addr, st.Error)
		}
	}
	if len(degraded) > 0 {
		fmt.Fprintf(os.Stderr, "ckpt: %s degraded: readable, but below the replication target; the manager re-replicates in the background, or run 'ckpt repair %s'\n",
			versionList(job, degraded), job)
	}
	switch {
	case len(lost) > 0:
		return fmt.Errorf("%s lost: blocks with no copy on an alive store (erasure-coded: fewer than K shards)", versionList(job, lost))
	case len(unknown) > 0:
		ids := make([]string, len(h.Unheard))
		for i, st := range h.Unheard {
			ids[i] = st.ID
		}
		return cli.WithCode(cli.ExitUnreachable, fmt.Errorf("%s unknown: the manager started moments ago and has not heard from stores %s yet, which hold some of their copies; run 'ckpt verify %s' again in a few seconds",
			versionList(job, unknown), strings.Join(ids, ", "), job))
	case len(bad) > 0:
		return fmt.Errorf("%d copies unreadable or corrupt in %s (listed above)", len(bad), job)
	}
	return nil
}

// versionList names versions of job: "heat version 3", "heat versions 3, 4".
func versionList(job string, vs []string) string {
	if len(vs) == 1 {
		return fmt.Sprintf("%s version %s", job, vs[0])
	}
	return fmt.Sprintf("%s versions %s", job, strings.Join(vs, ", "))
}

func printChecks(checks []versionCheck) {
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	for _, c := range checks {
		var detail []string
		if c.LostBlocks > 0 {
			detail = append(detail, fmt.Sprintf("%d with no live copy", c.LostBlocks))
		}
		if c.DegradedBlocks > 0 {
			if c.Redundancy != "" {
				detail = append(detail, fmt.Sprintf("%d with fewer than %d shards (%s)", c.DegradedBlocks, c.Target, c.Redundancy))
			} else {
				detail = append(detail, fmt.Sprintf("%d below %d copies", c.DegradedBlocks, c.Target))
			}
		}
		if len(c.BadCopies) > 0 {
			detail = append(detail, fmt.Sprintf("%d copies unreadable or corrupt", len(c.BadCopies)))
		}
		target := fmt.Sprintf("target %d", c.Target)
		if c.Redundancy != "" {
			target = c.Redundancy
		}
		fmt.Fprintf(tw, "version %d\t%s\t%d blocks\t%s\t%s\n", c.Version, c.State, c.Blocks, target, strings.Join(detail, ", "))
	}
	tw.Flush()
	for _, c := range checks {
		for _, b := range c.BadCopies {
			where := b.Object
			if b.Rank >= 0 {
				where = fmt.Sprintf("rank %d %s", b.Rank, b.Object)
			}
			fmt.Printf("  version %d: %s offset %d: %s\n", c.Version, where, b.Offset, b.Error)
		}
	}
}

// deepCheck reads every copy of every block of the checked versions from
// the alive stores that the manifests list, and recounts each version's
// blocks from the copies that came back intact. A copy shared by several
// versions is read once.
func deepCheck(ctx context.Context, s *session, job string, checks []versionCheck, key *crypt.Key, pf *progressFlags) error {
	stores, err := s.mc.Stores(ctx)
	if err != nil {
		return err
	}
	alive := map[string]bool{}
	for _, st := range stores {
		alive[st.ID] = st.Alive
	}
	r := client.NewReader(s.pool.Resolve, client.ReaderOptions{Decode: key.Decode})
	var mu sync.Mutex
	read := map[copyKey]chan struct{}{} // closed once results holds the copy
	results := map[copyKey]error{}
	// The manifests first, for the bytes to read: each copy once.
	manifests := make([]*manifest.Manifest, len(checks))
	var total int64
	counted := map[copyKey]bool{}
	for i, c := range checks {
		m, err := s.mc.Manifest(ctx, job, c.Version)
		if err != nil {
			return err
		}
		if err := crypt.Check(m, key); err != nil {
			return err
		}
		manifests[i] = m
		for _, b := range m.Blocks {
			for j, id := range b.Stores {
				if ck, n := copyOf(b, j); b.Length > 0 && alive[id] && !counted[ck] {
					counted[ck] = true
					total += n
				}
			}
		}
	}
	meter := pf.start("verify --deep "+job, total)
	defer meter.Stop()
	for i := range checks {
		c := &checks[i]
		m := manifests[i]
		good := make([]int, len(m.Blocks))
		grp, gctx := errgroup.WithContext(ctx)
		grp.SetLimit(client.DefaultParallel)
		for bi, b := range m.Blocks {
			if b.Length == 0 {
				continue
			}
			for j, id := range b.Stores {
				if !alive[id] {
					continue
				}
				ck, n := copyOf(b, j)
				grp.Go(func() error {
					mu.Lock()
					done, started := read[ck]
					if !started {
						done = make(chan struct{})
						read[ck] = done
					}
					mu.Unlock()
					if !started {
						var err error
						if b.Erasure() {
							err = readShard(gctx, s.pool.Resolve, id, ck.key, int(n))
						} else {
							one := b
							one.Stores = []string{id}
							_, err = r.ReadBlock(gctx, one)
						}
						if gctx.Err() != nil {
							return gctx.Err()
						}
						meter.Add(n)
						mu.Lock()
						results[ck] = err
						mu.Unlock()
						close(done)
					} else {
						select {
						case <-done:
						case <-gctx.Done():
							return gctx.Err()
						}
					}
					mu.Lock()
					defer mu.Unlock()
					err := results[ck]
					switch {
					case err == nil:
						good[bi]++
					case !errors.Is(err, storage.ErrNotFound):
						c.BadCopies = append(c.BadCopies, badCopy{Object: b.Object, Rank: b.Rank, Offset: b.Offset, Store: id, Error: err.Error()})
					}
					return nil
				})
			}
		}
		if err := grp.Wait(); err != nil {
			return err
		}
		sort.Slice(c.BadCopies, func(i, j int) bool {
			x, y := c.BadCopies[i], c.BadCopies[j]
			if x.Object != y.Object || x.Rank != y.Rank {
				return x.Rank < y.Rank || x.Rank == y.Rank && x.Object < y.Object
			}
			return x.Offset < y.Offset || x.Offset == y.Offset && x.Store < y.Store
		})
		recount(c, m.Blocks, good)
	}
	took := meter.Stop()
	fmt.Fprintf(os.Stderr, "ckpt: verify --deep %s: %d copies, %s read in %s, %s\n", job, len(counted), storage.FormatSize(took.Bytes), took.Took(), took.Rate())
	var corrupt []catalog.CorruptCopy
	for ck, err := range results {
		if errors.Is(err, storage.ErrHashMismatch) {
			corrupt = append(corrupt, catalog.CorruptCopy{Store: ck.store, Key: ck.key})
		}
	}
	slices.SortFunc(corrupt, catalog.CorruptCopy.Compare)
	reportCorrupt(ctx, s, job, corrupt)
	return nil
}

// copyKey is one copy (or shard) on one store.
type copyKey struct {
	key   storage.Hash
	store string
}

// copyOf is what store b.Stores[j] holds of block b, and its size: a copy
// of the block, or shard j of an erasure-coded one.
func copyOf(b manifest.Block, j int) (copyKey, int64) {
	if b.Erasure() {
		sc := erasure.Scheme{Data: b.DataShards, Parity: len(b.Shards) - b.DataShards}
		return copyKey{b.Shards[j], b.Stores[j]}, int64(sc.ShardSize(int(b.StoredLength)))
	}
	return copyKey{b.Key, b.Stores[j]}, b.Length
}

// readShard reads a shard from store id and checks it against its key.
func readShard(ctx context.Context, stores client.StoreFunc, id string, key storage.Hash, size int) error {
	st, addr, err := stores(ctx, id)
	if err != nil {
		return err
	}
	d, err := st.Get(ctx, key)
	if err != nil {
		return &storage.BlockError{Op: "get", Store: id + " (" + addr + ")", Hash: key, Err: err}
	}
	if len(d) != size || storage.Sum(d) != key {
		return &storage.BlockError{Op: "get", Store: id + " (" + addr + ")", Hash: key,
			Err: fmt.Errorf("%w (shard: %d bytes returned, want %d)", storage.ErrHashMismatch, len(d), size)}
	}
	return nil
}

// recount sets a version's counts and state from the intact copies of
// each of its blocks (the intact shards of an erasure-coded block: lost
// below K, degraded below K+M, the health check's Target).
func recount(c *versionCheck, blocks []manifest.Block, good []int) {
	c.Blocks, c.DegradedBlocks, c.LostBlocks, c.MinCopies = 0, 0, 0, 0
	for i, b := range blocks {
		if b.Length == 0 {
			continue
		}
		if c.Blocks == 0 || good[i] < c.MinCopies {
			c.MinCopies = good[i]
		}
		c.Blocks++
		need, target := 1, c.Target
		if b.Erasure() {
			need, target = b.DataShards, len(b.Shards)
		}
		switch {
		case good[i] < need:
			c.LostBlocks++
		case good[i] < target:
			c.DegradedBlocks++
		}
	}
	switch {
	case c.LostBlocks > 0:
		c.State = catalog.StateLost
	case c.DegradedBlocks > 0:
		c.State = catalog.StateDegraded
	default:
		c.State = catalog.StateHealthy
	}
}
