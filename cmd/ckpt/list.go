package main

import (
	"encoding/json"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/cluster"
)

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func versionsCmd(g *globals) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "versions JOB",
		Short: "List the committed versions of JOB",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer s.Close()
			list, err := s.mc.VersionList(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(list)
			}
			vs := list.Versions
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "VERSION\tTIME\tKIND\tSTEP\tRANKS\tOBJECTS\tLOGICAL\tSENT\tNEW\tDEDUP\tCOPIES\tSTATUS\tREGIONS")
			for _, v := range vs {
				status := v.Status
				if v.Pinned {
					status += ",pinned"
				}
				copies := fmt.Sprintf("%d", max(1, v.Replicas))
				if v.Redundancy != "" {
					copies = fmt.Sprintf("%s %.2gx", v.Redundancy, v.Overhead())
				}
				if v.Protected {
					copies += " protected"
				} else {
					copies += " below target"
				}
				dedup := "all reused"
				if r := v.DedupRatio(); r > 0 {
					dedup = fmt.Sprintf("%.1fx", r)
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.Version, ago(v.Committed), v.Kind,
					orDash(v.Meta[catalog.MetaStep]), orDash(v.Meta[catalog.MetaRanks]), v.Objects,
					storage.FormatSize(v.LogicalBytes), storage.FormatSize(v.SentBytes), storage.FormatSize(v.NewBytes),
					dedup, copies, status, orDash(v.Meta[catalog.MetaRegions]))
			}
			return tw.Flush()
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON (ckptio.versions/1, docs/json.md)")
	return c
}

func clusterCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "cluster up|down|status",
		Short: "Control the embedded local cluster under CKPT_HOME",
		Long: `The embedded local cluster is a ckpt-manager and N ckpt-store daemons on
127.0.0.1 whose data lives under CKPT_HOME (default ./.ckpt). ckpt and
ckptrun start it on demand when CKPT_MANAGER is unset; it keeps running,
in the background, until 'ckpt cluster down'. Data is kept across down/up.

The daemons run detached (own session, stdin /dev/null, output in
CKPT_HOME/logs) with their pids in CKPT_HOME/run/NAME.pid. 'up' reuses a
healthy cluster whatever its number of stores, and stops daemons left
behind by a killed command before starting afresh; 'down' stops every
daemon it finds, even without cluster.json.`,
	}
	var stores int
	var quota string
	up := &cobra.Command{
		Use:   "up",
		Short: "Start the local cluster (or check that it runs)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			info, err := cluster.Up(cmd.Context(), cluster.Options{Home: g.home, Stores: stores, Quota: quota,
				Progress: func(m string) { fmt.Fprintln(os.Stderr, "ckpt:", m) }})
			if err != nil {
				return err
			}
			fmt.Printf("manager %s\ntoken file %s\nstores %d\n", info.Manager, info.TokenFile, len(info.Stores))
			fmt.Printf("to use it from elsewhere: export CKPT_MANAGER=%s CKPT_TOKEN_FILE=%s\n", info.Manager, info.TokenFile)
			return nil
		},
	}
	up.Flags().IntVar(&stores, "stores", 0, "number of stores when it starts (default: as many as it had, else 4); a running cluster keeps its own")
	up.Flags().StringVar(&quota, "quota", "8GiB", "space each store donates")
	down := &cobra.Command{
		Use:   "down",
		Short: "Stop the local cluster, keeping its data",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cluster.Down(g.home); err != nil {
				return err
			}
			fmt.Fprintln(os.Stderr, "ckpt: local cluster under", cluster.HomeDir(g.home), "is down")
			return nil
		},
	}
	var statusJSON bool
	status := &cobra.Command{
		Use:   "status [--json]",
		Short: "Say whether the local cluster runs; exits 0 only when it is healthy",
		Long: `Says whether the local cluster under CKPT_HOME runs: its manager answers
and every store is alive. Exits 0 when it is healthy, 4 when it is not
running or its manager does not answer, 6 when the manager answers but a
store is dead ('ckpt cluster up' restarts what is missing).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			st := localStatus(cmd.Context(), g.home)
			if statusJSON {
				if err := printJSON(st); err != nil {
					return err
				}
			} else {
				st.print()
			}
			return st.err()
		},
	}
	status.Flags().BoolVar(&statusJSON, "json", false, "print JSON (ckptio.cluster/1, docs/json.md)")
	c.AddCommand(up, down, status)
	return c
}
