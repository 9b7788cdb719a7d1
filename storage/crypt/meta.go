package crypt

import (
	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/manifest"
)

// Scheme is the only scheme there is: blocks sealed as this package
// describes. An encrypted version's meta names it under
// catalog.MetaEncrypted, and its key's Fingerprint under
// catalog.MetaFingerprint.
const Scheme = "aesgcm"

// AddMeta records in meta that a version is written with k, and returns
// meta (made if nil and k is not). A nil k adds nothing.
func (k *Key) AddMeta(meta map[string]string) map[string]string {
	if k == nil {
		return meta
	}
	if meta == nil {
		meta = map[string]string{}
	}
	meta[catalog.MetaEncrypted] = Scheme
	meta[catalog.MetaFingerprint] = k.fp
	return meta
}

// SameKey reports whether two versions' meta say they were written with
// the same key, or both without one: only then may a writer reuse the
// blocks of one in the other.
func SameKey(a, b map[string]string) bool {
	return a[catalog.MetaEncrypted] == b[catalog.MetaEncrypted] && a[catalog.MetaFingerprint] == b[catalog.MetaFingerprint]
}

// Check returns nil when version m can be read with k (nil = no key): it is
// not encrypted, or encrypted with k. Otherwise it returns a *KeyError
// naming the key the version needs, before any block is fetched.
func Check(m *manifest.Manifest, k *Key) error {
	scheme := m.Meta[catalog.MetaEncrypted]
	switch {
	case scheme == "":
		return nil
	case scheme != Scheme:
		return &KeyError{Job: m.Job, Version: m.Version, Scheme: scheme}
	}
	want := m.Meta[catalog.MetaFingerprint]
	if k == nil || k.fp != want {
		return &KeyError{Job: m.Job, Version: m.Version, Want: want, Got: k.Fingerprint()}
	}
	return nil
}
