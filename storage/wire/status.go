package wire

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/ckptio/ckptio/storage"
)

// Status is the outcome a reply carries.
type Status uint8

// Statuses; see the package documentation.
const (
	StatusOK            Status = 0
	StatusNotFound      Status = 1
	StatusQuotaExceeded Status = 2
	StatusDiskFull      Status = 3
	StatusHashMismatch  Status = 4
	StatusTooLarge      Status = 5
	StatusBadRequest    Status = 6
	StatusUnknownOp     Status = 7
	StatusUnauthorized  Status = 8
	StatusInternal      Status = 9
	StatusClosed        Status = 10
	StatusBusy          Status = 11
)

// statusErrs maps each non-OK status to the sentinel a client matches.
var statusErrs = [...]error{
	StatusNotFound:      storage.ErrNotFound,
	StatusQuotaExceeded: storage.ErrQuotaExceeded,
	StatusDiskFull:      storage.ErrDiskFull,
	StatusHashMismatch:  storage.ErrHashMismatch,
	StatusTooLarge:      storage.ErrTooLarge,
	StatusBadRequest:    storage.ErrBadRequest,
	StatusUnknownOp:     ErrUnknownOp,
	StatusUnauthorized:  storage.ErrUnauthorized,
	StatusInternal:      ErrInternal,
	StatusClosed:        storage.ErrClosed,
	StatusBusy:          ErrBusy,
}

var statusNames = [...]string{
	StatusOK:            "ok",
	StatusNotFound:      "not found",
	StatusQuotaExceeded: "quota exceeded",
	StatusDiskFull:      "disk full",
	StatusHashMismatch:  "hash mismatch",
	StatusTooLarge:      "too large",
	StatusBadRequest:    "bad request",
	StatusUnknownOp:     "unknown op",
	StatusUnauthorized:  "unauthorized",
	StatusInternal:      "internal error",
	StatusClosed:        "closed",
	StatusBusy:          "busy",
}

func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// Sentinel returns the error a client matches for s with errors.Is: a
// storage sentinel, or one of this package's. It returns nil for StatusOK
// and ErrInternal for a status this version does not know.
func (s Status) Sentinel() error {
	if s == StatusOK {
		return nil
	}
	if int(s) < len(statusErrs) {
		return statusErrs[s]
	}
	return ErrInternal
}

// StatusError is a non-OK reply: its text is the peer's message, and it
// unwraps to the status's sentinel so errors.Is(err, storage.ErrNotFound)
// and the like work across the wire.
type StatusError struct {
	Status Status
	Msg    string
}

func (e *StatusError) Error() string {
	if e.Msg == "" {
		return e.Status.Sentinel().Error()
	}
	return e.Msg
}

func (e *StatusError) Unwrap() error { return e.Status.Sentinel() }

// ErrorFor returns the error a reply with status s and payload msg stands
// for: nil for StatusOK, otherwise a *StatusError keeping the peer's message
// (made valid UTF-8).
func ErrorFor(s Status, msg []byte) error {
	if s == StatusOK {
		return nil
	}
	return &StatusError{Status: s, Msg: Message(string(msg))}
}

// StatusFor returns the status a server answers err with: the status of the
// first sentinel err matches, StatusInternal for any other error and
// StatusOK for nil.
func StatusFor(err error) Status {
	if err == nil {
		return StatusOK
	}
	var se *StatusError
	if errors.As(err, &se) {
		return se.Status
	}
	switch {
	case errors.Is(err, ErrFrameTooLarge):
		return StatusTooLarge
	case errors.Is(err, ErrMalformed):
		return StatusBadRequest
	}
	for s, sentinel := range statusErrs {
		if sentinel != nil && errors.Is(err, sentinel) {
			return Status(s)
		}
	}
	return StatusInternal
}

// Message returns msg as an error message fit for a reply: valid UTF-8, at
// most MaxMessage bytes.
func Message(msg string) string {
	msg = strings.ToValidUTF8(msg, "\uFFFD")
	if len(msg) <= MaxMessage {
		return msg
	}
	cut := MaxMessage
	for cut > 0 && !utf8.RuneStart(msg[cut]) {
		cut--
	}
	return msg[:cut]
}
