package main

import (
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/ckptio/ckptio/storage"
)

func storesCmd(g *globals) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "stores",
		Short: "List the stores the manager knows, alive or dead",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer s.Close()
			list, err := s.mc.Stores(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(list)
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ADDRESS\tID\tALIVE\tUSED\tQUOTA\tBLOCKS\tLAST SEEN")
			for _, st := range list {
				fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%s\t%d\t%s\n", st.Addr, st.ID, st.Alive,
					storage.FormatSize(st.Used), storage.FormatSize(st.Quota), st.Blocks, ago(st.LastSeen))
			}
			return tw.Flush()
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}
