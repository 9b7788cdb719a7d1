package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/token"
)

func TestCode(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("ckpt: doing it: %w", err) }
	_, dialErr := net.Dial("tcp", "127.0.0.1:1")
	for _, tc := range []struct {
		err  error
		want int
	}{
		{nil, ExitOK},
		{errors.New("disk on fire"), ExitFailure},
		{Usagef("--to DIR is required"), ExitUsage},
		{wrap(catalog.ErrInvalid), ExitUsage},
		{wrap(token.ErrNoToken), ExitUsage},
		{wrap(catalog.ErrUnknownJob), ExitNotFound},
		{wrap(catalog.ErrUnknownVersion), ExitNotFound},
		{wrap(catalog.ErrNoVersions), ExitNotFound},
		{wrap(catalog.ErrUnknownStore), ExitNotFound},
		{wrap(catalog.ErrOnlyCopy), ExitFailure},
		{&os.PathError{Op: "lstat", Path: "x", Err: syscall.ENOENT}, ExitNotFound},
		{wrap(fs.ErrNotExist), ExitNotFound},
		{wrap(&catalog.UnreachableError{Addr: "m:1", Err: syscall.ECONNREFUSED}), ExitUnreachable},
		{wrap(dialErr), ExitUnreachable},
		{wrap(storage.ErrUnauthorized), ExitUnreachable},
		{wrap(storage.ErrNoLiveStore), ExitUnreachable},
		{wrap(catalog.ErrClockSkew), ExitUnreachable},
		{wrap(context.DeadlineExceeded), ExitUnreachable},
		{wrap(storage.ErrNoSpace), ExitNoSpace},
		{wrap(&storage.BlockError{Op: "put", Err: storage.ErrQuotaExceeded}), ExitNoSpace},
		{&os.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}, ExitNoSpace},
		// Out of space wins over the network errors met on the way.
		{errors.Join(syscall.ECONNRESET, storage.ErrNoSpace), ExitNoSpace},
		{WithCode(ExitDegraded, errors.New("a store is dead")), ExitDegraded},
		{WithCode(ExitNotFound, wrap(catalog.ErrInvalid)), ExitNotFound},
	} {
		if got := Code(tc.err); got != tc.want {
			t.Errorf("Code(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

func TestVersionLine(t *testing.T) {
	b := Build()
	if b.Version == "" || b.Commit == "" || b.Go == "" {
		t.Fatalf("build info %+v", b)
	}
	version, commit = "v9.9.9", "abc123"
	defer func() { version, commit = "", "" }()
	if got, want := VersionLine("ckpt"), "ckpt v9.9.9 (commit abc123, "+b.Go+")"; got != want {
		t.Fatalf("VersionLine = %q, want %q", got, want)
	}
}
