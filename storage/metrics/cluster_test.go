package metrics_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ckptio/ckptio/storage/cluster/clustertest"
)

// TestLocalClusterMetrics starts the embedded local cluster with the
// ckpt binary, reads the daemons' metrics addresses from 'ckpt cluster
// status' and scrapes each.
func TestLocalClusterMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("starts daemons")
	}
	bin := clustertest.Build(t)
	home := t.TempDir()
	ckpt := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(filepath.Join(bin, "ckpt"), args...)
		cmd.Env = append(os.Environ(), "CKPT_HOME="+home, "CKPT_MANAGER=", "CKPT_TOKEN=", "CKPT_TOKEN_FILE=")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("ckpt %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	t.Cleanup(func() { ckpt("cluster", "down") })
	ckpt("cluster", "up", "--stores", "2", "--quota", "64MiB")
	status := ckpt("cluster", "status")

	mgr := regexp.MustCompile(`(?m)^manager metrics http://(\S+)/metrics$`).FindStringSubmatch(status)
	stores := regexp.MustCompile(`(?m)^store \S+ metrics http://(\S+)/metrics$`).FindAllStringSubmatch(status, -1)
	if mgr == nil || len(stores) != 2 {
		t.Fatalf("cluster status names the metrics of the manager and 2 stores; it printed:\n%s", status)
	}
	if got := value(scrape(t, mgr[1]), "ckpt_manager_stores", map[string]string{"state": "alive"}); got != 2 {
		t.Errorf("the local manager's ckpt_manager_stores{state=alive} = %v, want 2", got)
	}
	for _, s := range stores {
		if q := value(scrape(t, s[1]), "ckpt_store_quota_bytes", nil); q != 64<<20 {
			t.Errorf("store metrics at %s: ckpt_store_quota_bytes = %v, want %d", s[1], q, 64<<20)
		}
	}
}
