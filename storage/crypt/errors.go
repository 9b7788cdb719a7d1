package crypt

import (
	"errors"
	"fmt"
)

var (
	// ErrDecrypt: a sealed block does not open under the key derived for
	// it: the job key is wrong, or the stored bytes or the manifest row
	// were changed.
	ErrDecrypt = errors.New("crypt: wrong encryption key or corrupt block")
	// ErrNoKey: an encrypted block or version is read without a key.
	ErrNoKey = errors.New("crypt: encrypted, and no key given (--encrypt-key-file or CKPT_ENCRYPT_KEY_FILE)")
	// ErrBadKey: a key file does not hold a key.
	ErrBadKey = errors.New("crypt: bad key")
)

// KeyError says that a version cannot be read with the key given: it is
// encrypted with another one, or none was given. It matches ErrNoKey or
// ErrDecrypt under errors.Is.
type KeyError struct {
	Job     string
	Version int64
	Want    string // fingerprint the version was written with
	Got     string // fingerprint of the key given; "" = none
	Scheme  string // the version's "encrypted" meta, when this build does not know it
}

func (e *KeyError) Error() string {
	const how = "give it with --encrypt-key-file or CKPT_ENCRYPT_KEY_FILE"
	switch {
	case e.Scheme != "":
		return fmt.Sprintf("version %d of %s is encrypted with %q, which this ckptio does not know (written by a newer one?)", e.Version, e.Job, e.Scheme)
	case e.Got == "":
		return fmt.Sprintf("version %d of %s is encrypted with key %s; %s", e.Version, e.Job, e.Want, how)
	default:
		return fmt.Sprintf("version %d of %s is encrypted with key %s, not with the key given (%s); %s", e.Version, e.Job, e.Want, e.Got, how)
	}
}

// Is reports ErrNoKey when no key was given and ErrDecrypt for a wrong one.
func (e *KeyError) Is(target error) bool {
	if e.Got == "" && e.Scheme == "" {
		return target == ErrNoKey
	}
	return target == ErrDecrypt
}
