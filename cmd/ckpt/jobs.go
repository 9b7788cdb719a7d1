package main

import (
	"fmt"
	"os"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/ckptio/ckptio/storage"
)

func jobsCmd(g *globals) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "jobs [--json]",
		Short: "List the jobs: versions held, total size, latest version and step",
		Long: `Lists every job the manager knows: how many committed versions it holds,
their total logical size, the latest version, its application step (MPI
checkpoints; "-" for files), when it was committed, and transactions in
flight. --json prints the manager's document (docs/json.md, ckptio.jobs/1).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer s.Close()
			list, err := s.mc.JobList(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(list)
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "JOB\tVERSIONS\tLOGICAL\tLATEST\tSTEP\tUPDATED\tIN FLIGHT")
			for _, j := range list.Jobs {
				step := "-"
				if j.LatestStep != nil {
					step = strconv.FormatInt(*j.LatestStep, 10)
				}
				latest := "-"
				if j.Latest > 0 {
					latest = strconv.FormatInt(j.Latest, 10)
				}
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%d\n", j.Name, j.Versions, storage.FormatSize(j.LogicalBytes),
					latest, step, ago(j.Updated), j.InFlight)
			}
			return tw.Flush()
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON (ckptio.jobs/1)")
	return c
}
