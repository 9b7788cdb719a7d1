// Package catalog is the manager's API, as every other part of ckptio
// sees it: the types of the catalog (stores, jobs, versions, transactions,
// retention, GC, repair and health reports), the sentinel errors, the keys
// of a version's meta, the HTTP protocol signed with the cluster token, and
// Client, the Go client of that protocol.
//
// It is a leaf package: it links neither bbolt nor the catalog server
// (storage/manager, which imports this package and never the reverse), so
// an MPI application, a desktop store daemon and the ckpt tool carry none
// of the server.
//
// # Errors
//
// The manager returns errors wrapping the sentinels of errors.go; the HTTP
// API carries a sentinel as a code next to the message (ErrorBody, the
// Code constants), and Client returns an error with the same message that
// wraps the same sentinel, so errors.Is works across the wire.
//
// # Authentication
//
// The token never crosses the wire. Every request carries
//
//	Authorization: CKPT-HMAC ts=<unix seconds>,sig=<hex HMAC-SHA256(token, M)>
//	M = METHOD "\n" PATH?QUERY "\n" ts "\n" hex(sha256(body))
//
// (see Sign). The manager answers 401 {"error":"wrong cluster token"} to a
// bad signature and a 401 naming the clock skew when |now - ts| > 5 min.
// A captured request can be replayed within that window; TLS will close it.
//
// # HTTP API
//
// Bodies and answers are JSON (field names snake_case) except manifests,
// which are Arrow IPC streams (application/vnd.apache.arrow.stream). JSON
// bodies are limited to 1 MiB and decoded strictly (unknown fields and
// trailing data are errors); manifests to Options.MaxManifestBytes
// (256 MiB). Job names match [A-Za-z0-9._-]{1,128}. Every JSON answer is
// one object whose "schema" names its shape and major version (Schema...
// constants; docs/json.md): lists are wrapped, numbers are numbers, and a
// VersionInfo's known meta keys are typed fields (MarshalJSON). Errors are
// {"schema": "ckptio.error/1", "error": "...", "code": "..."} with 400 (bad input), 401 (token, clock),
// 404 (unknown job, version, transaction or endpoint), 409 (conflict,
// pinned, GC running), 413 (too large), 503 (closing).
//
//	GET    /v1/ping                              -> {"ok":true,"time":...,"dead_after":"15s","txn_timeout":"10m0s"}
//	POST   /v1/heartbeat      Heartbeat          -> {"ok":true}
//	GET    /v1/stores                            -> StoreList
//	GET    /v1/jobs                              -> JobList
//	POST   /v1/jobs/{job}/txns                   -> 201 Txn
//	POST   /v1/txns/{id}/renew                   -> Txn
//	POST   /v1/txns/{id}/commit  manifest        -> 201 VersionInfo
//	DELETE /v1/txns/{id}                         -> 204
//	GET    /v1/jobs/{job}/versions               -> VersionList (oldest first)
//	GET    /v1/jobs/{job}/versions/{v}           -> VersionInfo (v: number or "latest")
//	GET    /v1/jobs/{job}/versions/{v}/manifest  -> manifest bytes, X-Ckpt-Version: n
//	DELETE /v1/jobs/{job}/versions/{v}           -> VersionInfo of the deleted version (v: number)
//	POST   /v1/jobs/{job}/versions/{v}/pin       -> VersionInfo (pinned)
//	DELETE /v1/jobs/{job}/versions/{v}/pin       -> VersionInfo (unpinned)
//	GET    /v1/jobs/{job}/retention              -> RetentionPolicy
//	PUT    /v1/jobs/{job}/retention  RetentionRequest -> RetentionResult (dry_run: nothing deleted)
//	POST   /v1/gc             [GCRequest]        -> GCReport (dry_run: nothing deleted)
//	GET    /v1/gc                                -> GCStatus
//	GET    /v1/jobs/{job}/health                 -> JobHealth
//	GET    /v1/jobs/{job}/versions/{v}/health    -> JobHealth (that version)
//	POST   /v1/repair[?job=J]                    -> RepairReport
//	GET    /v1/repair                            -> RepairStatus
//
// docs/manager-api.md has request and response examples.
package catalog
