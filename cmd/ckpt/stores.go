package main

import (
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/catalog"
)

func storesCmd(g *globals) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "stores",
		Short: "List the stores the manager knows, alive or dead; drain or forget one",
		Long: `Lists the stores the manager knows: address, ID, the owner's label, whether
it is alive, space used, quota and free disk, blocks, uptime, failed
requests since it started, and its state: ok, busy (its owner needs the
desktop: background work waits), draining (with how many blocks are still
to be copied elsewhere) or drained.

To retire a store: 'ckpt stores drain ID', wait until 'ckpt stores' says
drained, then 'ckpt stores forget ID' (docs/stores.md).`,
		Args: cobra.NoArgs,
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
				return printJSON(catalog.StoreList{Schema: catalog.SchemaStores, Stores: list})
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ADDRESS\tID\tLABEL\tALIVE\tUSED\tQUOTA\tDISK FREE\tBLOCKS\tUPTIME\tERRORS\tSTATE\tLAST SEEN")
			for _, st := range list {
				state := storeState(st)
				if st.Draining {
					c, err := s.mc.StoreCopies(cmd.Context(), st.ID)
					if err != nil {
						return err
					}
					state = drainState(c)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\t%s\t%s\t%d\t%s\t%d\t%s\t%s\n", st.Addr, st.ID, orDash(st.Label), st.Alive,
					storage.FormatSize(st.Used), storage.FormatSize(st.Quota), storage.FormatSize(st.DiskFree), st.Blocks,
					uptime(st), st.Errors, state, ago(st.LastSeen))
			}
			return tw.Flush()
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON (ckptio.stores/1, docs/json.md)")
	c.AddCommand(drainCmd(g), undrainCmd(g), forgetCmd(g))
	return c
}

// storeState is a store's STATE column, but for a drain.
func storeState(st catalog.StoreInfo) string {
	switch {
	case !st.Alive:
		return "dead"
	case st.Busy && st.BusyReason != "":
		return "busy: " + st.BusyReason
	case st.Busy:
		return "busy"
	}
	return "ok"
}

// drainState is the STATE of a draining store.
func drainState(c catalog.StoreCopies) string {
	switch {
	case c.Blocks == 0:
		return "drained"
	case c.OnlyCopy > 0:
		return fmt.Sprintf("draining: %d blocks still have no other copy (%d of %d still to copy)", c.OnlyCopy, c.Pending, c.Blocks)
	case c.Pending > 0:
		return fmt.Sprintf("draining: %d of %d blocks still to copy", c.Pending, c.Blocks)
	}
	return fmt.Sprintf("draining: %d blocks have their copies elsewhere; repair takes them off it next", c.Blocks)
}

func uptime(st catalog.StoreInfo) string {
	if !st.Alive || st.Started.IsZero() {
		return "-"
	}
	return time.Since(st.Started).Round(time.Second).String()
}

func drainCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "drain ID",
		Short: "Empty a store: no new blocks go to it, and repair copies its blocks to other stores",
		Long: `Marks the store draining in the manager's catalog (kept across restarts).
Writers place no new blocks on it; the manager's repair counts its copies as
not there, copies its blocks to other stores and takes it off the manifests.
Its copies are still read meanwhile. 'ckpt stores' shows the progress; once
it says drained, 'ckpt stores forget ID' removes it. 'ckpt stores undrain ID'
ends the drain.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer s.Close()
			st, err := s.mc.DrainStore(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			c, err := s.mc.StoreCopies(cmd.Context(), st.ID)
			if err != nil {
				return err
			}
			fmt.Printf("store %s (%s) %s\n", st.ID, orDash(st.Label), drainState(c))
			if c.Blocks > 0 {
				fmt.Println("repair moves its blocks in the background; 'ckpt repair' does it now, 'ckpt stores' shows the progress")
			}
			return nil
		},
	}
}

func undrainCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "undrain ID",
		Short: "End a drain: the store takes new blocks again",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer s.Close()
			st, err := s.mc.UndrainStore(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Printf("store %s (%s) takes new blocks again\n", st.ID, orDash(st.Label))
			return nil
		},
	}
}

func forgetCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "forget ID",
		Short: "Remove a store from the catalog, once nothing depends on it alone",
		Long: `Removes the store from the manager's catalog. It refuses while the store
holds the only copy of any block a version needs (the error says how many
blocks and versions), and refuses an alive store that is not draining: drain
it first. A dead store that holds nothing unique is forgotten. The manager
then refuses the store's heartbeats; stop its ckpt-store.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer s.Close()
			c, err := s.mc.ForgetStore(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Printf("store %s forgotten", c.ID)
			if c.Blocks > 0 {
				fmt.Printf(" (%d blocks it held have copies elsewhere)", c.Blocks)
			}
			fmt.Println("; stop its ckpt-store")
			return nil
		},
	}
}
