package manager_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/manager"
)

// TestRecoverRefusesAndCreatesNothing: Recover never writes into a
// non-empty directory, and when no store can be read it leaves no catalog
// behind, naming the stores and why.
func TestRecoverRefusesAndCreatesNothing(t *testing.T) {
	ctx := context.Background()
	opts := manager.Options{Token: []byte("0123456789abcdef0123456789abcdef")}

	full := t.TempDir()
	if err := os.WriteFile(filepath.Join(full, manager.CatalogFile), []byte("old catalog"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := manager.Recover(ctx, full, []string{"127.0.0.1:1"}, opts); !errors.Is(err, catalog.ErrInvalid) || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("recover into a directory holding a catalog: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(full, manager.CatalogFile)); string(b) != "old catalog" {
		t.Fatalf("the old catalog was touched: %q", b)
	}

	// An address nobody listens on: taken, then released.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := filepath.Join(t.TempDir(), "new")
	_, rep, err := manager.Recover(ctx, dir, []string{addr}, opts)
	if err == nil || !strings.Contains(err.Error(), "no store could be read") || !strings.Contains(err.Error(), addr) {
		t.Fatalf("recover with no store reachable: %v", err)
	}
	if len(rep.Stores) != 1 || rep.Stores[0].Err == "" {
		t.Fatalf("report: %+v", rep)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a failed recovery left %s behind: %v", dir, err)
	}
}
