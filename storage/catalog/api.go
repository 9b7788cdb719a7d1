package catalog

import (
	"errors"
	"net/http"

	"github.com/ckptio/ckptio/storage"
)

// ManifestContentType is the media type of a manifest body.
const ManifestContentType = "application/vnd.apache.arrow.stream"

// HeaderVersion carries the resolved version number of a manifest response.
const HeaderVersion = "X-Ckpt-Version"

// ErrorBody is every error response.
type ErrorBody struct {
	Schema string `json:"schema,omitempty"` // SchemaError
	Error  string `json:"error"`
	Code   string `json:"code"`
}

// Error codes of ErrorBody, one per sentinel.
const (
	CodeInvalid        = "invalid"
	CodeUnauthorized   = "unauthorized"
	CodeClockSkew      = "clock_skew"
	CodeUnknownJob     = "unknown_job"
	CodeUnknownVersion = "unknown_version"
	CodeNoVersions     = "no_versions"
	CodeUnknownTxn     = "unknown_txn"
	CodeConflict       = "conflict"
	CodeTooLarge       = "too_large"
	CodePinned         = "pinned"
	CodeGCRunning      = "gc_running"
	CodeUnknownStore   = "unknown_store"
	CodeOnlyCopy       = "only_copy"
	CodeNotFound       = "not_found"
	CodeClosed         = "closed"
	CodeInternal       = "internal"
)

// apiErrors pairs each sentinel with its code and HTTP status, in the
// order Classify tries them: the server answers with it, the client maps
// codes back to the sentinels with it. A refused token (AuthError,
// CodeUnauthorized) is handled apart: the client names the token.
var apiErrors = []struct {
	err    error
	code   string
	status int
}{
	{ErrClockSkew, CodeClockSkew, http.StatusUnauthorized},
	{ErrInvalid, CodeInvalid, http.StatusBadRequest},
	{ErrUnknownJob, CodeUnknownJob, http.StatusNotFound},
	{ErrUnknownVersion, CodeUnknownVersion, http.StatusNotFound},
	{ErrNoVersions, CodeNoVersions, http.StatusNotFound},
	{ErrUnknownTxn, CodeUnknownTxn, http.StatusNotFound},
	{ErrConflict, CodeConflict, http.StatusConflict},
	{ErrPinned, CodePinned, http.StatusConflict},
	{ErrGCRunning, CodeGCRunning, http.StatusConflict},
	{ErrUnknownStore, CodeUnknownStore, http.StatusNotFound},
	{ErrOnlyCopy, CodeOnlyCopy, http.StatusConflict},
	{ErrTooLarge, CodeTooLarge, http.StatusRequestEntityTooLarge},
	{storage.ErrClosed, CodeClosed, http.StatusServiceUnavailable},
}

// Classify returns the HTTP status and code the API answers err with:
// the first sentinel err wraps, 401 for an AuthError, else 500 internal.
func Classify(err error) (status int, code string) {
	if errors.As(err, new(*AuthError)) && !errors.Is(err, ErrClockSkew) {
		return http.StatusUnauthorized, CodeUnauthorized
	}
	for _, e := range apiErrors {
		if errors.Is(err, e.err) {
			return e.status, e.code
		}
	}
	return http.StatusInternalServerError, CodeInternal
}

// sentinelOf returns the sentinel of an error code, nil if none.
func sentinelOf(code string) error {
	for _, e := range apiErrors {
		if e.code == code {
			return e.err
		}
	}
	return nil
}
