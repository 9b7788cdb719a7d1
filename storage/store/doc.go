// Package store serves a storage.BlockStore over TCP with the storage/wire
// protocol: the network face of the store daemon a desktop owner runs.
//
// A Server authenticates every connection with the cluster token (the wire
// handshake), then reads requests and runs up to Options.MaxInFlight of them
// at once per connection, answering each as it completes; when that many are
// running it stops reading, so a fast client is slowed down by TCP rather
// than by the server's memory. Options.MaxConns bounds the authenticated
// connections; an extra one is told the store is busy and closed.
// Options.MaxHandshakes bounds, apart, those still in their handshake: a
// new one beyond it closes the oldest, so strangers who never authenticate
// cannot keep clients out. A malformed or oversized
// frame ends its own connection only.
//
// With Options.TLS every connection is TLS and the token handshake runs
// inside it. A client that speaks otherwise is told so in clear before the
// connection closes: a TLS store that hears nothing from a new connection
// for PlainClientWait (a plain client waits for the server's hello) sends
// it ExpectsTLSMessage; a plain store whose client opens with a TLS record
// sends it NoTLSMessage, after its hello that the TLS client already
// failed on.
//
// Shutdown is graceful: Close (or cancelling Serve's context) stops
// accepting and reading, lets the requests already read finish and their
// replies go out, sends a "store shutting down" notice and closes the
// connections. Requests a client had sent but the server had not read yet
// fail on the client side.
package store
