package catalog

import (
	"github.com/ckptio/ckptio/storage"
)

// ManifestContentType is the media type of a manifest body.
const ManifestContentType = "application/vnd.apache.arrow.stream"

// HeaderVersion carries the resolved version number of a manifest response.
const HeaderVersion = "X-Ckpt-Version"

// ErrorBody is every error response.
type ErrorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
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
	CodeNotFound       = "not_found"
	CodeClosed         = "closed"
	CodeInternal       = "internal"
)

// codes maps error codes to sentinels for the client.
var codes = map[string]error{
	CodeInvalid:        ErrInvalid,
	CodeUnauthorized:   storage.ErrUnauthorized,
	CodeClockSkew:      ErrClockSkew,
	CodeUnknownJob:     ErrUnknownJob,
	CodeUnknownVersion: ErrUnknownVersion,
	CodeNoVersions:     ErrNoVersions,
	CodeUnknownTxn:     ErrUnknownTxn,
	CodeConflict:       ErrConflict,
	CodeTooLarge:       ErrTooLarge,
	CodePinned:         ErrPinned,
	CodeGCRunning:      ErrGCRunning,
	CodeClosed:         storage.ErrClosed,
}
