package catalog

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// heartbeatLabel starts the bytes a store signs, so that its signature
// means nothing anywhere else.
const heartbeatLabel = "ckptio-store-heartbeat\x00"

// identityMessage is what a heartbeat's signature covers: the store's ID
// and the address it announces. A replayed heartbeat can only announce
// the address the store itself announced.
func identityMessage(id, addr string) []byte {
	return []byte(heartbeatLabel + id + "\x00" + addr)
}

// SignHeartbeat sets h's PublicKey and Signature with the store's key.
func SignHeartbeat(h *Heartbeat, key ed25519.PrivateKey) {
	h.PublicKey = key.Public().(ed25519.PublicKey)
	h.Signature = ed25519.Sign(key, identityMessage(h.ID, h.Addr))
}

// KeyFingerprint is a short form of a store's public key, for messages.
func KeyFingerprint(pub []byte) string {
	if len(pub) == 0 {
		return "none"
	}
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// CheckIdentity checks h against the key its ID is bound to (nil when it
// is bound to none yet). A heartbeat with a key must carry a valid
// signature by it; a bound ID takes only heartbeats signed by its key. A
// store of a build before identities sends none: it is taken while its
// ID is unbound. The error wraps ErrConflict or ErrInvalid.
func (h *Heartbeat) CheckIdentity(bound []byte) error {
	if len(h.PublicKey) != 0 {
		if len(h.PublicKey) != ed25519.PublicKeySize || len(h.Signature) != ed25519.SignatureSize ||
			!ed25519.Verify(ed25519.PublicKey(h.PublicKey), identityMessage(h.ID, h.Addr), h.Signature) {
			return fmt.Errorf("%w: heartbeat for store %s: the signature does not match its public key %s",
				ErrInvalid, h.ID, KeyFingerprint(h.PublicKey))
		}
	}
	switch {
	case len(bound) == 0:
		return nil
	case len(h.PublicKey) == 0:
		return fmt.Errorf("%w: heartbeat for store %s is not signed, but the store is bound to identity key %s: "+
			"a store that lost its identity.key must join as a new store (an empty --dir), after 'ckpt stores forget %s' once its blocks are copied elsewhere",
			ErrConflict, h.ID, KeyFingerprint(bound), h.ID)
	case !bytes.Equal(h.PublicKey, bound):
		return fmt.Errorf("%w: heartbeat for store %s is signed by key %s, but the store is bound to identity key %s: "+
			"another process claims its ID (or the store lost its identity.key: then it must join as a new store, with an empty --dir)",
			ErrConflict, h.ID, KeyFingerprint(h.PublicKey), KeyFingerprint(bound))
	}
	return nil
}
