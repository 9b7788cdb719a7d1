package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/client"
	"github.com/ckptio/ckptio/storage/manifest"
)

// RankDir is the directory 'ckpt restore' writes a rank's regions into,
// under --to: rank-00002/temperature for rank 2's region "temperature".
func rankDir(rank int32) string { return fmt.Sprintf("rank-%05d", rank) }

func restoreCmd(g *globals) *cobra.Command {
	var version int64
	var to string
	c := &cobra.Command{
		Use:   "restore JOB --to DIR [--version N]",
		Short: "Write every object of a version of JOB into DIR (MPI: one file per rank and region)",
		Long: `Writes out one version of JOB (default: the latest) under DIR, verifying
every block. For an MPI checkpoint each rank's region becomes a file named
rank-NNNNN/REGION (rank number zero-padded to 5 digits), holding the
region's bytes exactly as they were in memory; concatenating one region's
files in rank order gives the global array for a row-split program. For
files put with 'ckpt put' it is the same as 'ckpt get'.

To restart a job from this version instead, run
  ckptrun --restart-version N ... PROGRAM`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if to == "" {
				return errors.New("--to DIR is required")
			}
			return restore(cmd.Context(), g, args[0], version, to)
		},
	}
	c.Flags().Int64Var(&version, "version", 0, "version to restore (default: latest)")
	c.Flags().StringVar(&to, "to", "", "directory to write into (created if missing)")
	return c
}

func restore(ctx context.Context, g *globals, job string, version int64, to string) error {
	s, err := g.connect(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	m, err := s.mc.Manifest(ctx, job, version)
	if err != nil {
		return err
	}
	type obj struct {
		path   string
		blocks []manifest.Block
	}
	objs := map[string]*obj{}
	var order []string
	for _, b := range m.Blocks {
		var rel string
		if m.Kind == "mpi" {
			if b.Rank < 0 || !filepath.IsLocal(b.Object) || strings.ContainsAny(b.Object, `/\`) {
				return fmt.Errorf("%s version %d has a region %q of rank %d that is not a safe file name; refusing", job, m.Version, b.Object, b.Rank)
			}
			rel = filepath.Join(rankDir(b.Rank), b.Object)
		} else {
			if !filepath.IsLocal(filepath.FromSlash(b.Object)) || strings.Contains(b.Object, `\`) {
				return fmt.Errorf("%s version %d names a file %q outside the target directory; refusing to write it", job, m.Version, b.Object)
			}
			rel = filepath.FromSlash(b.Object)
		}
		o, ok := objs[rel]
		if !ok {
			o = &obj{path: filepath.Join(to, rel)}
			objs[rel] = o
			order = append(order, rel)
		}
		o.blocks = append(o.blocks, b)
	}
	r := client.NewReader(s.pool.Resolve, client.ReaderOptions{Logger: s.log})
	grp, gctx := errgroup.WithContext(ctx)
	grp.SetLimit(4)
	for _, rel := range order {
		o := objs[rel]
		grp.Go(func() error { return writeFile(gctx, r, o.path, o.blocks) })
	}
	if err := grp.Wait(); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "ckpt: %s version %d: %d objects, %s written under %s\n", job, m.Version, len(order), storage.FormatSize(m.LogicalBytes), to)
	return nil
}

func verifyCmd(g *globals) *cobra.Command {
	var version int64
	c := &cobra.Command{
		Use:   "verify JOB [--version N]",
		Short: "Read every block of JOB's versions and check its hash",
		Long: `Reads every block of one version (--version) or of every committed version
of JOB from the stores and checks it against its hash. Prints one line per
version and, for each bad block, the object, offset, store and cause.
Exits non-zero when any block is unreadable or corrupt.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return verify(cmd.Context(), g, args[0], version)
		},
	}
	c.Flags().Int64Var(&version, "version", 0, "version to verify (default: every version)")
	return c
}

func verify(ctx context.Context, g *globals, job string, version int64) error {
	s, err := g.connect(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	var versions []int64
	if version > 0 {
		versions = []int64{version}
	} else {
		vs, err := s.mc.Versions(ctx, job)
		if err != nil {
			return err
		}
		for _, v := range vs {
			versions = append(versions, v.Version)
		}
	}
	r := client.NewReader(s.pool.Resolve, client.ReaderOptions{Logger: s.log})
	// A block shared by several versions is read once.
	var mu sync.Mutex
	checked := map[storage.Hash]error{}
	bad := 0
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	for _, v := range versions {
		m, err := s.mc.Manifest(ctx, job, v)
		if err != nil {
			return err
		}
		var problems []string
		grp, gctx := errgroup.WithContext(ctx)
		grp.SetLimit(client.DefaultParallel)
		for _, b := range m.Blocks {
			if b.Length == 0 {
				continue
			}
			grp.Go(func() error {
				mu.Lock()
				err, done := checked[b.Key]
				mu.Unlock()
				if !done {
					_, err = r.ReadBlock(gctx, b)
					if gctx.Err() != nil {
						return gctx.Err()
					}
					mu.Lock()
					checked[b.Key] = err
					mu.Unlock()
				}
				if err != nil {
					mu.Lock()
					where := b.Object
					if b.Rank >= 0 {
						where = fmt.Sprintf("rank %d %s", b.Rank, b.Object)
					}
					problems = append(problems, fmt.Sprintf("  %s offset %d: %v", where, b.Offset, err))
					mu.Unlock()
				}
				return nil
			})
		}
		if err := grp.Wait(); err != nil {
			return err
		}
		if len(problems) == 0 {
			fmt.Fprintf(tw, "version %d\tok\t%d blocks\t%s\n", v, len(m.Blocks), storage.FormatSize(m.LogicalBytes))
			continue
		}
		bad += len(problems)
		sort.Strings(problems)
		fmt.Fprintf(tw, "version %d\tBAD\t%d of %d blocks unreadable or corrupt\t\n", v, len(problems), len(m.Blocks))
		tw.Flush()
		for _, p := range problems {
			fmt.Println(p)
		}
	}
	tw.Flush()
	if bad > 0 {
		return fmt.Errorf("%d bad blocks in %s (listed above)", bad, job)
	}
	return nil
}
