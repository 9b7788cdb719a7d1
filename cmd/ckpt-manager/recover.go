package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/ckptio/ckptio/cmd/internal/cli"
	"github.com/ckptio/ckptio/storage/manager"
)

// recoverCatalog runs --recover: it rebuilds the catalog in c.data from the
// stores of --recover-from and says on stderr what it found and what it
// could not.
func recoverCatalog(ctx context.Context, c config, opts manager.Options) (*manager.Manager, error) {
	if !c.recover || c.recoverFrom == "" {
		return nil, cli.Usagef("--recover and --recover-from go together: ckpt-manager --data NEWDIR --recover --recover-from HOST:PORT,...")
	}
	var addrs []string
	for _, a := range strings.Split(c.recoverFrom, ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	m, rep, err := manager.Recover(ctx, c.data, addrs, opts)
	for _, s := range rep.Stores {
		if s.Err != "" {
			fmt.Fprintf(os.Stderr, "ckpt-manager: recover: store %s not read: %s\n", s.Addr, s.Err)
		}
	}
	if err != nil {
		return nil, err
	}
	read := 0
	for _, s := range rep.Stores {
		if s.Err == "" {
			read++
		}
	}
	for _, b := range rep.Bad {
		fmt.Fprintf(os.Stderr, "ckpt-manager: recover: skipped an unreadable record: %s\n", b)
	}
	for job, vs := range rep.Missing {
		fmt.Fprintf(os.Stderr, "ckpt-manager: recover: job %s: no record of version(s) %s on the stores read; not recovered (its record was on a store not read, or never written)\n",
			job, strings.Trim(strings.Join(strings.Fields(fmt.Sprint(vs)), ","), "[]"))
	}
	fmt.Fprintf(os.Stderr, "ckpt-manager: recovered the catalog from %d of %d stores: %d jobs, %d versions; %d deleted versions stay deleted\n",
		read, len(rep.Stores), rep.Jobs, rep.Versions, rep.Deleted)
	return m, nil
}
