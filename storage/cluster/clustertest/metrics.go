package clustertest

import (
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

var metricsLine = regexp.MustCompile(`metrics on (\S+)`)

// MetricsAddr waits for the daemon's "metrics on HOST:PORT" line (it was
// started with --metrics-listen) and returns the address. Call it once
// per Proc.
func (p *Proc) MetricsAddr(t testing.TB) string {
	t.Helper()
	select {
	case a := <-p.metrics:
		return a
	case <-p.done:
		t.Fatalf("%s exited before printing its metrics address:\n%s", filepath.Base(p.Cmd.Path), p.Output())
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not print its metrics address within 20s:\n%s", filepath.Base(p.Cmd.Path), p.Output())
	}
	return ""
}
