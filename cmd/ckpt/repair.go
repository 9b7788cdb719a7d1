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
	var pf progressFlags
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
state of each version.

While the pass runs, its progress (the bytes of copies made of those
planned so far, polled from the manager's GET /v1/repair) goes to stderr:
a bar on a terminal, else a line every few seconds; --quiet silences it.
A request made while another pass runs waits for it, and shows its
progress meanwhile. The last line on stderr gives the rate (MB/s).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			job := ""
			if len(args) == 1 {
				job = args[0]
			}
			return repair(cmd.Context(), g, job, asJSON, &pf)
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	pf.register(c)
	return c
}

// repairPoll is how often 'ckpt repair' asks the manager how far the
// pass has got.
const repairPoll = 500 * time.Millisecond

func repair(ctx context.Context, g *globals, job string, asJSON bool, pf *progressFlags) error {
	s, err := g.connect(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	label := "repair"
	if job != "" {
		label += " " + job
	}
	meter := pf.start(label, 0)
	defer meter.Stop()
	type result struct {
		rep catalog.RepairReport
		err error
	}
	done := make(chan result, 1)
	go func() {
		rep, err := s.mc.Repair(ctx, job)
		done <- result{rep, err}
	}()
	var res result
	poll := time.NewTicker(repairPoll)
	defer poll.Stop()
	for waiting := true; waiting; {
		select {
		case res = <-done:
			waiting = false
		case <-poll.C:
			if pf.quiet {
				continue
			}
			// A failed poll only costs the display: the pass goes on.
			if st, err := s.mc.RepairStatus(ctx); err == nil && st.Progress != nil {
				meter.SetTotal(st.Progress.CopyBytes)
				meter.Set(st.Progress.CopiedBytes)
			}
		}
	}
	rep, err := res.rep, res.err
	if err != nil {
		return err
	}
	meter.SetTotal(rep.CopiedBytes)
	meter.Set(rep.CopiedBytes)
	took := meter.Stop()
	fmt.Fprintf(os.Stderr, "ckpt: %s: %d copies, %s copied in %s, %s\n", label, rep.Copies, storage.FormatSize(rep.CopiedBytes), took.Took(), took.Rate())
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
