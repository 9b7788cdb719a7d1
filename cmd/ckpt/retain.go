package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ckptio/ckptio/cmd/internal/cli"
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
		dryRun, asJSON     bool
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
it (keep everything), --show prints it. --dry-run prints the versions the
policy would delete now, and neither deletes them nor stores the policy.

Deleting a version frees the blocks no other version uses at the
manager's next garbage collection (every 10 minutes by default), or at
once with --gc.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			job := args[0]
			f := cmd.Flags()
			rules := f.Changed("keep-last") || f.Changed("keep-every") || f.Changed("keep-within")
			switch {
			case show && (rules || clear || runGC || dryRun):
				return cli.Usagef("--show takes no other flag")
			case clear && rules:
				return cli.Usagef("--clear takes no --keep flag")
			case !show && !clear && !rules:
				return cli.Usagef("give at least one of --keep-last, --keep-every, --keep-within (or --show, --clear)")
			case dryRun && runGC:
				return cli.Usagef("--dry-run deletes nothing, so --gc would free nothing; give one of them")
			}
			if within != "" {
				d, err := catalog.ParseDuration(within)
				if err != nil {
					return cli.Usagef("--keep-within: %w", err)
				}
				r.KeepWithin = catalog.Duration(d)
			}
			if r.KeepLast < 0 || r.KeepEvery < 0 || r.KeepWithin < 0 {
				return cli.Usagef("--keep-last, --keep-every and --keep-within must not be negative")
			}
			if rules && !r.IsSet() {
				return cli.Usagef("every --keep rule given is 0; use --clear to remove the policy")
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
				if asJSON {
					return printJSON(catalog.RetentionPolicy{Schema: catalog.SchemaRetentionPolicy, Job: job, Retention: cur})
				}
				fmt.Printf("job %s: %s\n", job, cur)
				return nil
			}
			set, verb := s.mc.SetRetention, "deleted"
			if dryRun {
				set, verb = s.mc.PreviewRetention, "would delete"
			}
			deleted, err := set(cmd.Context(), job, r)
			if err != nil {
				return err
			}
			if asJSON {
				if deleted == nil {
					deleted = []int64{}
				}
				if err := printJSON(catalog.RetentionResult{Schema: catalog.SchemaRetention, Job: job, Retention: r, Deleted: deleted, DryRun: dryRun}); err != nil {
					return err
				}
			} else {
				fmt.Printf("job %s: %s\n", job, r)
				if len(deleted) == 0 && dryRun {
					fmt.Println("no version would be deleted")
				} else if len(deleted) == 0 {
					fmt.Println("no version deleted")
				}
				for _, v := range deleted {
					fmt.Printf("%s version %d\n", verb, v)
				}
			}
			if dryRun {
				fmt.Fprintln(os.Stderr, "ckpt: dry run: nothing deleted, the policy is not stored")
				return nil
			}
			if len(deleted) == 0 {
				return nil
			}
			return freeAfterDelete(cmd.Context(), s, runGC, asJSON)
		},
	}
	fl := c.Flags()
	fl.IntVar(&r.KeepLast, "keep-last", 0, "keep the N most recent versions")
	fl.Int64Var(&r.KeepEvery, "keep-every", 0, "keep the versions whose number is a multiple of K")
	fl.StringVar(&within, "keep-within", "", "keep the versions committed within DUR (36h, 90m, 7d)")
	fl.BoolVar(&show, "show", false, "print the current policy and change nothing")
	fl.BoolVar(&clear, "clear", false, "remove the policy: keep every version from now on")
	fl.BoolVar(&runGC, "gc", false, "collect garbage right after, to free the space now")
	fl.BoolVar(&dryRun, "dry-run", false, "print the versions the policy would delete now; delete nothing, store no policy")
	fl.BoolVar(&asJSON, "json", false, "print JSON (ckptio.retention/1; with --show ckptio.retention-policy/1)")
	return c
}

// freeAfterDelete runs a GC when asked, else says when the space comes
// back. With asJSON stdout holds the command's document, so the GC's
// report is one line on stderr.
func freeAfterDelete(ctx context.Context, s *session, runGC, asJSON bool) error {
	if !runGC {
		fmt.Fprintln(os.Stderr, gcHint)
		return nil
	}
	rep, err := s.mc.GC(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		fmt.Fprintf(os.Stderr, "ckpt: garbage collection freed %s on %d stores\n", storage.FormatSize(rep.FreedBytes), len(rep.Stores))
		return gcFailures(rep)
	}
	return printGC(rep)
}

func versionFlag(c *cobra.Command, v *int64) {
	c.Flags().Int64Var(v, "version", 0, "version number (see 'ckpt versions JOB')")
}

func checkVersion(v int64) error {
	if v <= 0 {
		return cli.Usagef("--version V is required: a version number, as 'ckpt versions JOB' lists them")
	}
	return nil
}

func deleteCmd(g *globals) *cobra.Command {
	var (
		version        int64
		runGC          bool
		dryRun, asJSON bool
	)
	c := &cobra.Command{
		Use:   "delete JOB --version V",
		Short: "Delete one version of JOB",
		Long: `Deletes version V of JOB from the catalog, the latest included, unless it
is pinned ('ckpt unpin' it first). Its number is never given again. The
blocks no other version uses are freed by the manager's next garbage
collection, or at once with --gc. --dry-run says what would be deleted
and deletes nothing.`,
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
			if dryRun && runGC {
				return cli.Usagef("--dry-run deletes nothing, so --gc would free nothing; give one of them")
			}
			var vi catalog.VersionInfo
			if dryRun {
				vi, err = s.mc.Version(cmd.Context(), args[0], version)
				if err == nil && vi.Pinned {
					err = fmt.Errorf("%w: version %d of %s; 'ckpt unpin %s --version %d' first", catalog.ErrPinned, version, args[0], args[0], version)
				}
			} else {
				vi, err = s.mc.DeleteVersion(cmd.Context(), args[0], version)
			}
			if err != nil {
				return err
			}
			verb := "deleted"
			if dryRun {
				verb = "would delete"
			}
			if asJSON {
				vi.Schema = ""
				if err := printJSON(deleteDoc{Schema: schemaDelete, Job: vi.Job, DryRun: dryRun, Deleted: vi}); err != nil {
					return err
				}
			} else {
				fmt.Printf("%s version %d of %s (%s logical)\n", verb, vi.Version, vi.Job, storage.FormatSize(vi.LogicalBytes))
			}
			if dryRun {
				fmt.Fprintln(os.Stderr, "ckpt: dry run: nothing deleted")
				return nil
			}
			return freeAfterDelete(cmd.Context(), s, runGC, asJSON)
		},
	}
	versionFlag(c, &version)
	c.Flags().BoolVar(&runGC, "gc", false, "collect garbage right after, to free the space now")
	c.Flags().BoolVar(&dryRun, "dry-run", false, "say which version would be deleted (refused if pinned); delete nothing")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON (ckptio.delete/1)")
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

// deleteDoc is 'ckpt delete --json'.
type deleteDoc struct {
	Schema  string              `json:"schema"`
	Job     string              `json:"job"`
	DryRun  bool                `json:"dry_run"`
	Deleted catalog.VersionInfo `json:"deleted"` // (with dry_run: would be)
}

func gcCmd(g *globals) *cobra.Command {
	var asJSON, dryRun bool
	c := &cobra.Command{
		Use:   "gc",
		Short: "Collect garbage now: delete the blocks no version references",
		Long: `Asks the manager to collect garbage now (it also does every 10 minutes
by default) and prints, per alive store, the blocks it listed, those no
committed version references, and the space freed. Unreferenced blocks
that a checkpoint in flight may be using (touched since that checkpoint
began, less the manager's clock-skew allowance) stay until a later
collection. Dead stores are skipped; their garbage is collected after
they return. Exits 1 if a store could not be swept completely.

--dry-run lists every alive store the same way and deletes nothing: it
prints, per store, the unreferenced blocks a collection would ask it to
delete and an estimate of their bytes (the store's average block size
times their number: stores do not list sizes). A collection may free
less: it keeps the blocks touched since the oldest checkpoint in flight.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer s.Close()
			gc := s.mc.GC
			if dryRun {
				gc = s.mc.GCDryRun
			}
			rep, err := gc(cmd.Context())
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
	c.Flags().BoolVar(&asJSON, "json", false, "print the manager's report as JSON (ckptio.gc/1)")
	c.Flags().BoolVar(&dryRun, "dry-run", false, "count per store what a collection would delete, and delete nothing")
	return c
}

// printGC prints a GC report for people and returns an error naming the
// stores that failed.
func printGC(rep catalog.GCReport) error {
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	if rep.DryRun {
		fmt.Fprintln(tw, "STORE\tADDRESS\tLISTED\tUNREFERENCED\tESTIMATED\tERROR")
		for _, st := range rep.Stores {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\n", st.ID, st.Addr, st.Listed, st.Unreferenced, storage.FormatSize(st.EstimatedBytes), orDash(st.Error))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Printf("dry run: would delete %d blocks, about %s, on %d stores; nothing deleted\n", rep.Unreferenced,
			storage.FormatSize(rep.EstimatedBytes), len(rep.Stores))
		for _, sk := range rep.Skipped {
			fmt.Printf("skipped dead store %s (%s, last seen %s)\n", sk.ID, sk.Addr, ago(sk.LastSeen))
		}
		return gcFailures(rep)
	}
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
