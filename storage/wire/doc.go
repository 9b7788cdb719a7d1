// Package wire is the binary protocol between a ckptio client and a store
// daemon: length-prefixed frames on one TCP connection, many requests in
// flight at once, replies matched to requests by id, after a mutual
// challenge-response handshake on the cluster token.
//
// This comment is the specification. A peer written from it alone must
// interoperate with storage/store and storage/remote.
//
// # Frames
//
// Every message, handshake included, is a frame: a 20-byte header followed
// by Length bytes of payload. Integers are big-endian.
//
//	offset  size  field
//	0       1     magic, always 0xCB
//	1       1     protocol version, currently 2
//	2       8     Length: payload bytes that follow the header (u64)
//	10      8     request id (u64)
//	18      1     op
//	19      1     status
//
// A reader checks the magic and the version before anything else and drops
// the connection when either is wrong (ErrBadMagic, ErrBadVersion). It then
// checks Length, as a u64, against its limit (DefaultMaxPayload unless
// configured) before allocating anything: a longer frame, up to the 2^64-1
// bytes the field can announce, is refused with ErrFrameTooLarge. Below the
// limit the reader allocates as bytes arrive rather than all at once, so a
// peer that announces a large payload and sends little costs little. A
// connection that ends inside a header or a payload is reported as
// io.ErrUnexpectedEOF.
//
// Version 1 had a 16-byte header with a u32 Length; a version 2 peer
// refuses it (ErrBadVersion), as version 1 peers refuse version 2.
//
// # Requests and replies
//
// The client picks a request id for each request, unique among its requests
// outstanding on the connection; id 0 is reserved for the handshake and for
// connection-level notices. Requests carry status 0 (OK), which the server
// ignores. The server answers every request it reads with exactly one reply
// frame carrying the same id and op; replies may come in any order, so a
// client can keep many requests in flight. A reply with status OK carries
// the op's reply payload; any other status carries a UTF-8 message for
// humans (at most MaxMessage bytes) instead.
//
// # Ops
//
//	op    name      request payload                OK reply payload
//	0x00  Hello     handshake only, see below      handshake only
//	0x01  Ping      empty                          empty
//	0x02  PutBlock  hash (32) | block bytes        created flag (1 byte: 1 new, 0 already held)
//	0x03  GetBlock  hash (32)                      block bytes
//	0x04  Has       n hashes (n*32)                n bytes, 1 if held else 0, in request order
//	0x05  Delete    notSince (u64) | n hashes      bytes freed (u64)
//	0x06  Stat      empty                          JSON object of storage.Stat
//	0x07  List      cursor hash (32) | max (u32)   n hashes (n*32), ascending, n <= max
//	0x08  PutRecord name length (1) | name | bytes  empty
//	0x09  GetRecord name                         the record's bytes
//	0x0A  ListRecords max (u32) | cursor name    names, each length (1) | name, ascending
//	0x0B  PutBlocks n (u32) | n * (hash (32) | length (u32)) | the n blocks' bytes
//	                                             n * (status (1) | created (1) | message length (u16) | message)
//
// A hash is the 32-byte BLAKE3-256 content address of the block
// (storage.Hash). A PutBlock's block may be empty and is at most
// storage.MaxBlockSize bytes. Has and Delete carry at most MaxBatch hashes
// and their hash lists' length must be a multiple of 32 (0 hashes is
// valid). A request whose payload breaks these rules is answered
// BadRequest and the connection stays usable, as it does for an op the
// server does not know (answered UnknownOp).
//
// The ops follow storage.BlockStore, whose doc comment has the semantics;
// in short:
//
//   - Has touches every block it reports held, and PutBlock the block it
//     stores or already holds.
//   - Delete's notSince is a time as Unix nanoseconds (u64, at most
//     2^63-1): the store removes the blocks among the hashes that it holds
//     and last touched before that time, by its own clock. 0 removes them
//     whatever their touch. Removing is idempotent.
//   - List answers the held hashes greater than the cursor (bytewise), in
//     ascending order, at most max and at most MaxBatch of them; an all-zero
//     cursor starts at the beginning. An empty reply means there are no
//     more; a shorter one than max does not. A client walks the store by
//     sending the last hash of each reply as the next cursor.
//
// # Catalog records
//
// Ops 0x08 to 0x0A keep a small namespace of named records beside the
// content-addressed blocks: the manager's copy of its catalog, from which
// it is rebuilt when lost (storage/manager/records.go). A record name is 1
// to MaxRecordName (255) bytes of ASCII letters, digits, '.', '_', '-'
// and '/', in '/'-separated parts none of which is empty, "." or "..". A
// record is at most MaxRecordSize (storage.MaxBlockSize) bytes, opaque to
// the store.
//
//   - PutRecord replaces the record of that name atomically; when the
//     reply comes the record is durable.
//   - GetRecord answers the bytes, or NotFound.
//   - ListRecords answers the names greater than the cursor (bytewise;
//     an empty cursor starts at the beginning), ascending, at most max
//     and at most MaxRecordList (4096). Only an empty reply means the
//     end; a client walks by sending the last name of each reply as the
//     next cursor. An empty payload after max is the empty cursor.
//
// Records are not blocks: Has, Delete, List and Stat ignore them, and
// garbage collection never removes them. A bad name or an oversize record
// is answered BadRequest or TooLarge.
//
// These ops came after protocol version 2 was fixed, without changing the
// version: a store older than them answers UnknownOp (and the connection
// stays usable), which a client reports as "store keeps no catalog
// records" (remote.ErrNoRecords) and the manager logs and skips. A store
// that does not keep records answers the same way.
//
// # Batches
//
// PutBlocks carries 1 to MaxPutBatch (1024) blocks in one frame: the
// count, then each block's hash and length, then the blocks' bytes one
// after another in the same order. The lengths must add up to exactly the
// bytes after the head, and each is at most storage.MaxBlockSize; the
// whole frame is within the server's payload limit like any other. A
// request that breaks these rules is answered BadRequest (TooLarge for a
// block above the limit), and none of its blocks is stored.
//
// The server stores each block as a PutBlock would (verifying its hash,
// within the quota, touching a block it already holds), all of them
// together, so that a disk store's group commit syncs them at once; it
// answers once every block is durable or refused. The OK reply has one
// entry per block in request order: the status the block's PutBlock
// would have been answered with, the created flag (1 new, 0 already held;
// always 0 when the status is not OK) and a message, empty when the
// status is OK and otherwise its UTF-8 text (at most MaxMessage bytes). A
// refused block does not fail the others: a batch can be partly stored.
// The same hash twice in one batch is stored once and reported created
// at most once.
//
// PutBlocks came after protocol version 2 was fixed, without changing the
// version: a store older than it answers UnknownOp with the connection
// still usable, and a client then sends the batch's blocks, and every
// later one, as PutBlock requests (storage/remote: Options.Batch, batch.go).
//
// A frame longer than the server's limit is answered TooLarge with the
// frame's id, then the server closes the connection: skipping the payload
// would mean reading it.
//
// # Statuses
//
//	code  name           meaning; sentinel on the client side (errors.Is)
//	0     OK             success
//	1     NotFound       block not held; storage.ErrNotFound
//	2     QuotaExceeded  put beyond the donated quota; storage.ErrQuotaExceeded
//	3     DiskFull       store's disk full; storage.ErrDiskFull
//	4     HashMismatch   bytes do not hash to the name; storage.ErrHashMismatch
//	5     TooLarge       block or frame above the limit; storage.ErrTooLarge
//	6     BadRequest     malformed payload; storage.ErrBadRequest
//	7     UnknownOp      op not known to the server; ErrUnknownOp
//	8     Unauthorized   wrong cluster token; storage.ErrUnauthorized
//	9     Internal       any other failure of the store; ErrInternal
//	10    Closed         store shutting down or closed; storage.ErrClosed
//	11    Busy           store refuses more connections; ErrBusy
//
// ErrorFor turns a non-OK status and its message into an error whose text is
// the peer's message and which matches the sentinel with errors.Is;
// StatusFor does the reverse on the server.
//
// # Connection-level notices
//
// A frame with id 0 and op Hello outside the handshake is a notice about the
// whole connection, sent just before the server closes it: status Closed
// when the store shuts down (after the replies of the requests it had read),
// status TooLarge, BadRequest when the stream cannot be followed any more.
// Requests still outstanding on the client then fail.
//
// # Handshake
//
// Before any request both sides prove they know the cluster token, a secret
// shared by every member of the cluster; the token itself never crosses the
// wire. MAC is HMAC-SHA256 keyed with the token, | is concatenation, and
// every handshake frame has id 0 and op Hello.
//
//  1. server -> client: status OK, payload = server nonce (32 random bytes).
//     A server that takes no more connections sends status Busy with a
//     message instead, then closes.
//  2. client -> server: status OK, payload = client nonce (32 random bytes) |
//     MAC("ckptio-client" | server nonce | client nonce).
//  3. server -> client, when the client's MAC is right (compared in constant
//     time): status OK, payload = MAC("ckptio-server" | client nonce |
//     server nonce). The client checks it the same way and drops the
//     connection when it is wrong: a server that does not know the token
//     learns nothing it could replay. When the client's MAC is wrong the
//     server sends status Unauthorized with the message "wrong cluster
//     token" and closes.
//
// Handshake frames are at most MaxHandshakePayload bytes. Each side gives
// the whole handshake HandshakeTimeout, so a silent peer cannot hold a
// connection open.
//
// # Limits
//
//	DefaultMaxPayload    storage.MaxBlockSize + 4096 bytes per frame
//	MaxBatch             65536 hashes per Has, Delete or List reply
//	MaxPutBatch          1024 blocks per PutBlocks request
//	MaxMessage           4096 bytes of error message
//	MaxHandshakePayload  1024 bytes per handshake frame
//	MaxRecordName        255 bytes of record name
//	MaxRecordSize        storage.MaxBlockSize bytes per record
//	MaxRecordList        4096 names per ListRecords reply
//	HandshakeTimeout     5 s
package wire
