package storage

import (
	"errors"
	"testing"
)

// TestBlockErrorSaysTheBlockOnce: a client's BlockError around a store
// connection's for the same get names the block and store once, keeps
// the cause, and still matches it.
func TestBlockErrorSaysTheBlockOnce(t *testing.T) {
	h := Sum([]byte("x"))
	inner := &BlockError{Op: "get", Store: "127.0.0.1:7000", Hash: h, Err: ErrHashMismatch}
	outer := &BlockError{Op: "get", Store: "st-1 (127.0.0.1:7000)", Hash: h, Err: inner}
	want := "get block " + h.Short() + " on store st-1 (127.0.0.1:7000): " + ErrHashMismatch.Error()
	if got := outer.Error(); got != want {
		t.Errorf("error %q, want %q", got, want)
	}
	if !errors.Is(outer, ErrHashMismatch) {
		t.Error("the cause does not match")
	}
	other := &BlockError{Op: "put", Store: "st-1", Hash: h, Err: inner}
	if got := other.Error(); got != "put block "+h.Short()+" on store st-1: "+inner.Error() {
		t.Errorf("a different operation's inner error dropped: %q", got)
	}
}
