package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"syscall"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/remote"
	"github.com/ckptio/ckptio/storage/token"
)

// Exit statuses shared by ckpt, ckpt-store, ckpt-manager and ckptrun
// (README.md, "Scripting"). Code picks one for an error.
const (
	ExitOK = 0
	// ExitFailure: anything not below.
	ExitFailure = 1
	// ExitUsage: bad flags or arguments (an unknown flag or command, a
	// missing argument, a malformed job name or size).
	ExitUsage = 2
	// ExitNotFound: an unknown job, version or store, or a path that does
	// not exist.
	ExitNotFound = 3
	// ExitUnreachable: the manager or a store is down or refused us:
	// connection refused, timeouts, a refused token or clock, TLS failures.
	ExitUnreachable = 4
	// ExitNoSpace: no store had room (quotas or disks full), or the local
	// disk is full.
	ExitNoSpace = 5
	// ExitDegraded: the cluster answers but is not whole ('ckpt cluster
	// status' with a dead store).
	ExitDegraded = 6
)

// UsageError is a bad command line; Code maps it to ExitUsage.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Usage marks err as a usage error (nil stays nil).
func Usage(err error) error {
	if err == nil {
		return nil
	}
	return &UsageError{Err: err}
}

// Usagef is Usage(fmt.Errorf(format, args...)).
func Usagef(format string, args ...any) error { return Usage(fmt.Errorf(format, args...)) }

// CodeError carries the exit status to use for Err.
type CodeError struct {
	Code int
	Err  error
}

func (e *CodeError) Error() string { return e.Err.Error() }
func (e *CodeError) Unwrap() error { return e.Err }

// WithCode makes Code return code for err (nil stays nil).
func WithCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &CodeError{Code: code, Err: err}
}

// Code returns the exit status for err: 0 for nil, else the first of
// ExitUsage, ExitNoSpace, ExitNotFound, ExitUnreachable whose errors err
// wraps (a *CodeError's own code first), else ExitFailure.
func Code(err error) int {
	var ce *CodeError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ce):
		return ce.Code
	case errors.As(err, new(*UsageError)), errors.Is(err, catalog.ErrInvalid), errors.Is(err, token.ErrNoToken):
		return ExitUsage
	case isNoSpace(err):
		return ExitNoSpace
	case isNotFound(err):
		return ExitNotFound
	case isUnreachable(err):
		return ExitUnreachable
	}
	return ExitFailure
}

func isNoSpace(err error) bool {
	return errors.Is(err, storage.ErrNoSpace) || errors.Is(err, storage.ErrQuotaExceeded) ||
		errors.Is(err, storage.ErrDiskFull) || errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

func isNotFound(err error) bool {
	return errors.Is(err, catalog.ErrUnknownJob) || errors.Is(err, catalog.ErrUnknownVersion) ||
		errors.Is(err, catalog.ErrNoVersions) || errors.Is(err, catalog.ErrUnknownStore) || errors.Is(err, fs.ErrNotExist)
}

func isUnreachable(err error) bool {
	var (
		ne  net.Error
		ve  *tls.CertificateVerificationError
		rhe tls.RecordHeaderError
		uae x509.UnknownAuthorityError
		hne x509.HostnameError
		cie x509.CertificateInvalidError
	)
	return errors.Is(err, catalog.ErrUnreachable) || errors.Is(err, storage.ErrUnauthorized) || errors.Is(err, storage.ErrNoLiveStore) ||
		errors.Is(err, catalog.ErrClockSkew) || errors.Is(err, storage.ErrClosed) ||
		errors.Is(err, remote.ErrConnLost) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH) ||
		errors.As(err, &ne) || errors.As(err, &ve) || errors.As(err, &rhe) ||
		errors.As(err, &uae) || errors.As(err, &hne) || errors.As(err, &cie)
}

// Exit prints err as one line prefixed with the command name and exits
// with Code(err); it returns when err is nil.
func Exit(name string, err error) {
	if err == nil {
		return
	}
	fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
	os.Exit(Code(err))
}
