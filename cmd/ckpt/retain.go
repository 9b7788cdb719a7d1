package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/catalog"
)

// retentionCmds are the commands that remove versions and free their
// space: retain, delete, pin, unpin, gc.
func retentionCmds(g *globals) []*cobra.Command {
	return []*cobra.Command{retainCmd(g), deleteCmd(g), pinCmd(g, true), pinCmd(g, false), gcCmd(g)}
}

const gcHint = "ckpt: their blocks are freed by the manager's next garbage collection; 'ckpt gc' frees them now"

func retainCmd(g *globals) *cobra.Command {
	var (
		r                  catalog.Retention
		within             string
		show, clear, runGC bool
	)
	c := &cobra.Command{
		Use:   "retain JOB [--keep-last N] [--keep-every K] [--keep-within DUR]",
		Short: "Set the retention policy of JOB and delete the versions it does not keep",
		Long: `Sets which versions of JOB the manager keeps, applies the policy at once
and prints the versions it deleted. The manager applies it again after
every commit of JOB.

A version is kept when any rule given keeps it:
  --keep-last N     the N most recent versions
  --keep-every K    the versions whose number is a multiple of K
  --keep-within DUR those committed within DUR (36h, 90m, 7d)
and always when it is pinned ('ckpt pin') or is the latest. Every other
version is deleted. The policy replaces the previous one; --clear removes
it (keep everything), --show prints it.

Deleting a version frees the blocks no other version uses at the
manager's next garbage collection (every 10 minutes by default), or at
once with --gc.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			job := args[0]
			f := cmd.Flags()
			rules := f.Changed("keep-last") || f.Changed("keep-every") || f.Changed("keep-within")
			switch {
			case show && (rules || clear || runGC):
				return errors.New("--show takes no other flag")
			case clear && rules:
				return errors.New("--clear takes no --keep flag")
			case !show && !clear && !rules:
				return errors.New("give at least one of --keep-last, --keep-every, --keep-within (or --show, --clear)")
			}
			if within != "" {
				d, err := catalog.ParseDuration(within)
				if err != nil {
					return fmt.Errorf("--keep-within: %w", err)
				}
				r.KeepWithin = catalog.Duration(d)
			}
			if r.KeepLast < 0 || r.KeepEvery < 0 || r.KeepWithin < 0 {
				return errors.New("--keep-last, --keep-every and --keep-within must not be negative")
			}
			if rules && !r.IsSet() {
				return errors.New("every --keep rule given is 0; use --clear to remove the policy")
			}
			s, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer s.Close()
			if show {
				cur, err := s.mc.Retention(cmd.Context(), job)
				if err != nil {
					return err
				}
				fmt.Printf("job %s: %s\n", job, cur)
				return nil
			}
			deleted, err := s.mc.SetRetention(cmd.Context(), job, r)
			if err != nil {
				return err
			}
			fmt.Printf("job %s: %s\n", job, r)
			if len(deleted) == 0 {
				fmt.Println("no version deleted")
				return nil
			}
			for _, v := range deleted {
				fmt.Printf("deleted version %d\n", v)
			}
			return freeAfterDelete(cmd.Context(), s, runGC)
		},
	}
	fl := c.Flags()
	fl.IntVar(&r.KeepLast, "keep-last", 0, "keep the N most recent versions")
	fl.Int64Var(&r.KeepEvery, "keep-every", 0, "keep the versions whose number is a multiple of K")
	fl.StringVar(&within, "keep-within", "", "keep the versions committed within DUR (36h, 90m, 7d)")
	fl.BoolVar(&show, "show", false, "print the current policy and change nothing")
	fl.BoolVar(&clear, "clear", false, "remove the policy: keep every version from now on")
	fl.BoolVar(&runGC, "gc", false, "collect garbage right after, to free the space now")
	return c
}

// freeAfterDelete runs a GC when asked, else says when the space comes
// back.
func freeAfterDelete(ctx context.Context, s *session, runGC bool) error {
	if !runGC {
		fmt.Fprintln(os.Stderr, gcHint)
		return nil
	}
	rep, err := s.mc.GC(ctx)
	if err != nil {
		return err
	}
	return printGC(rep)
}

func versionFlag(c *cobra.Command, v *int64) {
	c.Flags().Int64Var(v, "version", 0, "version number (see 'ckpt versions JOB')")
}

func checkVersion(v int64) error {
	if v <= 0 {
		return errors.New("--version V is required: a version number, as 'ckpt versions JOB' lists them")
	}
	return nil
}

func deleteCmd(g *globals) *cobra.Command {
	var (
		version int64
		runGC   bool
	)
	c := &cobra.Command{
		Use:   "delete JOB --version V",
		Short: "Delete one version of JOB",
		Long: `Deletes version V of JOB from the catalog, the latest included, unless it
is pinned ('ckpt unpin' it first). Its number is never given again. The
blocks no other version uses are freed by the manager's next garbage
collection, or at once with --gc.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkVersion(version); err != nil {
				return err
			}
			s, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer s.Close()
			vi, err := s.mc.DeleteVersion(cmd.Context(), args[0], version)
			if err != nil {
				return err
			}
			fmt.Printf("deleted version %d of %s (%s logical)\n", vi.Version, vi.Job, storage.FormatSize(vi.LogicalBytes))
			return freeAfterDelete(cmd.Context(), s, runGC)
		},
	}
	versionFlag(c, &version)
	c.Flags().BoolVar(&runGC, "gc", false, "collect garbage right after, to free the space now")
	return c
}

func pinCmd(g *globals, pin bool) *cobra.Command {
	var version int64
	c := &cobra.Command{
		Use:   "pin JOB --version V",
		Short: "Pin a version of JOB: no retention policy or delete removes it",
		Long: `Pins version V of JOB: every retention policy keeps it and 'ckpt delete'
refuses it until 'ckpt unpin'. Pinning a pinned version changes nothing.`,
		Args: cobra.ExactArgs(1),
	}
	if !pin {
		c.Use = "unpin JOB --version V"
		c.Short = "Unpin a version of JOB, so retention policies and delete may remove it"
		c.Long = `Undoes 'ckpt pin': version V of JOB is again subject to the job's
retention policy (applied at the next commit or 'ckpt retain') and to
'ckpt delete'.`
	}
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if err := checkVersion(version); err != nil {
			return err
		}
		s, err := g.connect(cmd.Context())
		if err != nil {
			return err
		}
		defer s.Close()
		var vi catalog.VersionInfo
		if pin {
			vi, err = s.mc.Pin(cmd.Context(), args[0], version)
		} else {
			vi, err = s.mc.Unpin(cmd.Context(), args[0], version)
		}
		if err != nil {
			return err
		}
		state := "pinned"
		if !vi.Pinned {
			state = "unpinned"
		}
		fmt.Printf("version %d of %s is %s\n", vi.Version, vi.Job, state)
		return nil
	}
	versionFlag(c, &version)
	return c
}

func gcCmd(g *globals) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "gc",
		Short: "Collect garbage now: delete the blocks no version references",
		Long: `Asks the manager to collect garbage now (it also does every 10 minutes
by default) and prints, per alive store, the blocks it listed, those no
committed version references, and the space freed. Unreferenced blocks
that a checkpoint in flight may be using (touched since that checkpoint
began, less the manager's clock-skew allowance) stay until a later
collection. Dead stores are skipped; their garbage is collected after
they return. Exits 1 if a store could not be swept completely.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer s.Close()
			rep, err := s.mc.GC(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				if err := printJSON(rep); err != nil {
					return err
				}
				return gcFailures(rep)
			}
			return printGC(rep)
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the manager's report as JSON")
	return c
}

// printGC prints a GC report for people and returns an error naming the
// stores that failed.
func printGC(rep catalog.GCReport) error {
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STORE\tADDRESS\tLISTED\tUNREFERENCED\tFREED\tERROR")
	for _, st := range rep.Stores {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\n", st.ID, st.Addr, st.Listed, st.Unreferenced, storage.FormatSize(st.FreedBytes), orDash(st.Error))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Printf("freed %s on %d stores in %s\n", storage.FormatSize(rep.FreedBytes), len(rep.Stores),
		time.Duration(rep.Took).Round(time.Millisecond))
	for _, sk := range rep.Skipped {
		fmt.Printf("skipped dead store %s (%s, last seen %s): collected after it returns\n", sk.ID, sk.Addr, ago(sk.LastSeen))
	}
	return gcFailures(rep)
}

func gcFailures(rep catalog.GCReport) error {
	failed := rep.Failed()
	if len(failed) == 0 {
		return nil
	}
	ids := make([]string, len(failed))
	for i, f := range failed {
		ids[i] = f.ID
	}
	return fmt.Errorf("%d of %d stores not swept completely (%s): %s", len(failed), len(rep.Stores), strings.Join(ids, ", "), failed[0].Error)
}
