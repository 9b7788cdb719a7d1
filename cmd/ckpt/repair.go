package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/catalog"
)

func repairCmd(g *globals) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "repair [JOB] [--json]",
		Short: "Ask the manager to re-replicate the blocks below their target now",
		Long: `Asks the manager to run a repair pass now over JOB (default: every job)
and prints its report when it ends. The manager also repairs in the
background (ckpt-manager --repair-every, 30s by default).

For every block of every retained version with fewer copies on alive
stores than its version's replication target, or listed on an alive store
that no longer holds it, the manager reads a live copy, checks it against
its hash, and puts new copies on other alive stores with room, where a
writer would place them (never two on one store); then every manifest naming the block lists
its alive holders and the new copies. A block with no live copy is lost:
it is listed and the command exits non-zero. 'ckpt verify JOB' shows the
state of each version.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			job := ""
			if len(args) == 1 {
				job = args[0]
			}
			return repair(cmd.Context(), g, job, asJSON)
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return c
}

func repair(ctx context.Context, g *globals, job string, asJSON bool) error {
	s, err := g.connect(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	rep, err := s.mc.Repair(ctx, job)
	if err != nil {
		return err
	}
	if asJSON {
		if err := printJSON(rep); err != nil {
			return err
		}
	} else {
		printRepair(rep)
	}
	if rep.Lost > 0 {
		return fmt.Errorf("%d blocks have no copy on an alive store; the versions naming them cannot be restored unless a store holding them comes back", rep.Lost)
	}
	return nil
}

func printRepair(rep catalog.RepairReport) {
	what := "every job"
	if rep.Job != "" {
		what = "job " + rep.Job
	}
	fmt.Printf("repair of %s: %d versions, %d blocks checked in %s\n", what, rep.Versions, rep.Blocks,
		time.Duration(rep.Took).Round(time.Millisecond))
	fmt.Printf("  %d blocks below target, %d listed on stores that lost them\n", rep.Degraded, rep.Stale)
	fmt.Printf("  %d copies made (%s), %d manifests updated\n", rep.Copies, storage.FormatSize(rep.CopiedBytes), rep.Updated)
	if rep.Unrepaired > 0 {
		fmt.Printf("  %d blocks still below target: no other alive store had room, or the copies failed\n", rep.Unrepaired)
	}
	if rep.Lost > 0 {
		fmt.Printf("  %d blocks lost (no copy on an alive store)\n", rep.Lost)
	}
	if len(rep.Stores) > 0 {
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "STORE\tADDRESS\tASKED\tMISSING\tRECEIVED\tERROR")
		for _, st := range rep.Stores {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d (%s)\t%s\n", st.ID, st.Addr, st.Asked, st.Missing, st.Received,
				storage.FormatSize(st.ReceivedBytes), orDash(st.Error))
		}
		tw.Flush()
	}
	for _, st := range rep.Skipped {
		fmt.Printf("dead store %s (%s), last seen %s: its copies do not count\n", st.ID, st.Addr, ago(st.LastSeen))
	}
	for _, lb := range rep.LostBlocks {
		vs := make([]string, len(lb.Versions))
		for i, v := range lb.Versions {
			vs[i] = fmt.Sprint(v)
		}
		fmt.Printf("lost: block %s of %s versions %s, was on %s\n", lb.Key.Short(), lb.Job, strings.Join(vs, ", "), strings.Join(lb.Stores, ", "))
	}
	if n := int64(len(rep.LostBlocks)); n < rep.Lost {
		fmt.Printf("lost: ... and %d more blocks\n", rep.Lost-n)
	}
}
