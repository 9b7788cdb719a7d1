package storage_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/ckptio/ckptio/"

// golist runs go list with format f over pkgs and returns its lines.
func golist(t *testing.T, f string, pkgs ...string) []string {
	t.Helper()
	out, err := exec.Command("go", append([]string{"list", "-f", f}, pkgs...)...).Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	return strings.Fields(string(out))
}

// TestLayering checks the import rules of docs/design.md ("Layers"): what
// an MPI application, a desktop store and the launcher link, and what
// each layer may import.
func TestLayering(t *testing.T) {
	// Nothing but the manager daemon links the catalog server and bbolt.
	for _, p := range []string{"../examples/heat", "../cmd/ckpt-store", "../cmd/ckptrun", "../cmd/ckpt", "../mpiio",
		"../collective", "./client", "./version", "./catalog", "./mount"} {
		for _, d := range golist(t, `{{join .Deps "\n"}}`, p) {
			if d == "go.etcd.io/bbolt" || d == module+"storage/manager" {
				t.Errorf("%s links %s", p, d)
			}
		}
	}
	// Metrics: a daemon's own registry, and nothing but the daemons and
	// storage/metrics link Prometheus (the observers below it are plain
	// interfaces).
	for _, p := range []string{"./store", "./disk", "./manager", "./client", "./version", "./catalog", "./wire"} {
		for _, d := range golist(t, `{{join .Deps "\n"}}`, p) {
			if strings.HasPrefix(d, "github.com/prometheus/") {
				t.Errorf("%s links %s; observe through an interface that storage/metrics implements", p, d)
			}
		}
	}
	// The storage layer and the daemons build without cgo: no MPI.
	for _, p := range []string{"./...", "../cmd/ckpt-store", "../cmd/ckpt-manager", "../cmd/ckpt", "../cmd/ckptrun"} {
		for _, d := range golist(t, `{{join .Deps "\n"}}`, p) {
			if strings.HasPrefix(d, module+"mpiio") || strings.HasPrefix(d, module+"collective") {
				t.Errorf("%s links %s", p, d)
			}
		}
	}
	// Direct imports inside the module, per layer.
	allowed := map[string][]string{
		"../collective": {"storage", "storage/chunk", "storage/version"},
		"./client":      {"storage", "storage/catalog", "storage/chunk", "storage/codec", "storage/erasure", "storage/manifest", "storage/placement", "storage/wire"},
		"./catalog":     {"storage", "storage/erasure", "storage/manifest"},
		"./mount":       {"storage", "storage/catalog", "storage/client", "storage/manifest", "storage/tree", "storage/version"},
		"./placement":   {"storage"},
		"./erasure":     {},
		"./desktop":     {},
		"./manifest":    {"storage", "storage/erasure"},
		"./wire":        {"storage"},
		"./tree":        {"storage", "storage/catalog", "storage/manifest", "storage/version"},
		"./metrics":     {"storage", "storage/catalog", "storage/wire"},
	}
	allowed["../cmd/internal/progress"] = []string{"storage"}
	for p, ok := range allowed {
		for _, imp := range golist(t, `{{join .Imports "\n"}}`, p) {
			if rest, in := strings.CutPrefix(imp, module); in && !slices.Contains(ok, rest) {
				t.Errorf("%s imports %s; docs/design.md allows %v", p, rest, ok)
			}
		}
	}
}
