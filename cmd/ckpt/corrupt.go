package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/ckptio/ckptio/storage/catalog"
)

// reportCorrupt tells the manager about the copies of job's blocks that a
// read found corrupt (it reads them back, drops the corrupt ones and
// queues a repair), and says in one line what came of it. A report that
// fails is a warning: the stores drop what they serve corrupt, and the
// next repair pass replaces it.
func reportCorrupt(ctx context.Context, s *session, job string, copies []catalog.CorruptCopy) {
	if len(copies) == 0 {
		return
	}
	var stores []string
	for _, c := range copies {
		if !slices.Contains(stores, c.Store) {
			stores = append(stores, c.Store)
		}
	}
	what := fmt.Sprintf("%d %s came back corrupt (%s %s)", len(copies), plural(len(copies), "copy", "copies"),
		plural(len(stores), "store", "stores"), strings.Join(stores, ", "))
	rep, err := s.mc.ReportCorrupt(ctx, job, copies)
	if err != nil {
		fmt.Fprintf(os.Stderr, "ckpt: %s; reporting them to the manager failed: %v (the stores drop what they serve corrupt: 'ckpt repair %s' replaces it)\n", what, err, job)
		return
	}
	line := fmt.Sprintf("ckpt: %s; the manager read them back: %d dropped, %d intact", what, rep.Dropped, rep.Intact)
	if len(rep.Failed) > 0 {
		line += fmt.Sprintf(", %d %s not checked (%s: %s)", len(rep.Failed), plural(len(rep.Failed), "store", "stores"), rep.Failed[0].ID, rep.Failed[0].Error)
	}
	switch {
	case rep.Dropped == 0:
	case rep.RepairQueued:
		line += fmt.Sprintf("; a repair of %s is under way", job)
	default:
		line += fmt.Sprintf("; background repair is off: 'ckpt repair %s' replaces them", job)
	}
	fmt.Fprintln(os.Stderr, line)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
