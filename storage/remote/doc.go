// Package remote is a storage.BlockStore reached over TCP: the client side
// of the storage/wire protocol, talking to a storage/store server.
//
// A Store keeps one connection and pipelines on it: any number of
// goroutines may call it at once; each request is written with its own id
// and a single reader goroutine hands every reply to its caller, so up to
// Options.Window requests are outstanding at a time (further callers wait,
// or give up when their context ends). Cancelling one call's context does
// not disturb the others: its reply is read and dropped.
//
// When the connection fails, every call outstanding on it fails with an
// error wrapping ErrConnLost and naming the store. The next call dials
// again, once: if that fails, calls fail fast with the dial error for
// Options.RedialBackoff before the next attempt. Requests are never resent
// by this package; Put is idempotent, so callers may retry.
//
// With Options.TLS the connection is TLS, for a store run with --tls-cert;
// the token handshake runs inside it. Dialing a plain store with TLS, or a
// TLS store without, fails with an error that says which side expects TLS.
//
// Every error names the store's address; errors about one block are
// *storage.BlockError, and the store's refusals match the storage
// sentinels with errors.Is (storage.ErrQuotaExceeded and so on) while
// keeping the store's own message.
package remote
