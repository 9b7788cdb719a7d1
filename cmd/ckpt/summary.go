package main

import (
	"time"
)

// Schemas of the documents only the ckpt command prints (docs/json.md);
// the others are the manager's (catalog.Schema...).
const (
	schemaTransfer = "ckptio.transfer/1"
	schemaCluster  = "ckptio.cluster/1"
	schemaTree     = "ckptio.tree/1"
	schemaDiff     = "ckptio.diff/1"
	schemaDelete   = "ckptio.delete/1"
)

// transfer is what put, get and restore print with --json: one document
// at the end.
type transfer struct {
	Schema  string `json:"schema"`
	Op      string `json:"op"` // put, get or restore
	Job     string `json:"job"`
	Version int64  `json:"version"`
	// Files counts the entries put or written (files, directories,
	// symlinks, MPI regions).
	Files int `json:"files"`
	// Bytes is the version's logical size: what the files hold.
	Bytes int64 `json:"bytes"`
	// NewBytes and SentBytes (put only): stored bytes of the blocks no
	// earlier version had, and bytes sent to the stores.
	NewBytes  *int64 `json:"new_bytes,omitempty"`
	SentBytes *int64 `json:"sent_bytes,omitempty"`
	// Seconds is the command's wall time; MBPerS is Bytes over it in
	// 10^6 bytes per second.
	Seconds float64 `json:"seconds"`
	MBPerS  float64 `json:"mb_per_s"`
}

func newTransfer(op, job string, version int64, files int, bytes int64, start time.Time) transfer {
	secs := time.Since(start).Seconds()
	t := transfer{Schema: schemaTransfer, Op: op, Job: job, Version: version, Files: files, Bytes: bytes, Seconds: secs}
	if secs > 0 {
		t.MBPerS = float64(bytes) / secs / 1e6
	}
	return t
}
