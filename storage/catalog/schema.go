package catalog

import (
	"encoding/json"
	"fmt"
)

// Schemas of the JSON documents the HTTP API answers with and ckpt --json
// prints (docs/json.md). Every top-level document carries one in its
// "schema" field: a name and a major version, "ckptio.versions/1". A
// change that removes or retypes a field bumps the version; adding a
// field does not.
const (
	SchemaStores          = "ckptio.stores/1"
	SchemaStore           = "ckptio.store/1"
	SchemaStoreCopies     = "ckptio.store-copies/1"
	SchemaJobs            = "ckptio.jobs/1"
	SchemaVersions        = "ckptio.versions/1"
	SchemaVersion         = "ckptio.version/1"
	SchemaGC              = "ckptio.gc/1"
	SchemaGCStatus        = "ckptio.gc-status/1"
	SchemaRepair          = "ckptio.repair/1"
	SchemaRepairStatus    = "ckptio.repair-status/1"
	SchemaHealth          = "ckptio.health/1"
	SchemaRetention       = "ckptio.retention/1"
	SchemaRetentionPolicy = "ckptio.retention-policy/1"
	SchemaPong            = "ckptio.pong/1"
	SchemaTxn             = "ckptio.txn/1"
	SchemaOK              = "ckptio.ok/1"
	SchemaError           = "ckptio.error/1"
)

// StoreList is GET /v1/stores and 'ckpt stores --json'.
type StoreList struct {
	Schema string      `json:"schema"`
	Stores []StoreInfo `json:"stores"`
}

// StoreDoc is one store (POST and DELETE /v1/stores/{id}/drain): the
// store's fields next to the schema.
type StoreDoc struct {
	Schema string `json:"schema"`
	StoreInfo
}

// JobList is GET /v1/jobs and 'ckpt jobs --json'.
type JobList struct {
	Schema string    `json:"schema"`
	Jobs   []JobInfo `json:"jobs"`
}

// VersionList is GET /v1/jobs/{job}/versions and 'ckpt versions --json'.
type VersionList struct {
	Schema   string        `json:"schema"`
	Job      string        `json:"job"`
	Versions []VersionInfo `json:"versions"` // oldest first
}

// RetentionPolicy is GET /v1/jobs/{job}/retention: the policy's fields
// next to the schema and the job.
type RetentionPolicy struct {
	Schema string `json:"schema"`
	Job    string `json:"job"`
	Retention
}

// RetentionRequest is the body of PUT /v1/jobs/{job}/retention: the
// policy, and dry_run to have the versions it would delete listed and
// nothing changed.
type RetentionRequest struct {
	Retention
	DryRun bool `json:"dry_run,omitempty"`
}

// GCRequest is the optional body of POST /v1/gc.
type GCRequest struct {
	// DryRun lists and counts the unreferenced blocks per store and
	// deletes nothing.
	DryRun bool `json:"dry_run,omitempty"`
}

// OK is the answer of the endpoints that only succeed (heartbeat).
type OK struct {
	Schema string `json:"schema,omitempty"`
	OK     bool   `json:"ok"`
}

// schemaDoc is implemented by the answers whose schema the client checks;
// setSchema fills it in after an answer from a manager that sent none.
type schemaDoc interface {
	wantSchema() string
	setSchema()
}

func (*StoreList) wantSchema() string       { return SchemaStores }
func (*StoreDoc) wantSchema() string        { return SchemaStore }
func (*StoreCopies) wantSchema() string     { return SchemaStoreCopies }
func (*JobList) wantSchema() string         { return SchemaJobs }
func (*VersionList) wantSchema() string     { return SchemaVersions }
func (*VersionInfo) wantSchema() string     { return SchemaVersion }
func (*GCReport) wantSchema() string        { return SchemaGC }
func (*GCStatus) wantSchema() string        { return SchemaGCStatus }
func (*RepairReport) wantSchema() string    { return SchemaRepair }
func (*RepairStatus) wantSchema() string    { return SchemaRepairStatus }
func (*JobHealth) wantSchema() string       { return SchemaHealth }
func (*RetentionResult) wantSchema() string { return SchemaRetention }
func (*RetentionPolicy) wantSchema() string { return SchemaRetentionPolicy }

func (d *StoreList) setSchema()       { d.Schema = SchemaStores }
func (d *StoreDoc) setSchema()        { d.Schema = SchemaStore }
func (d *StoreCopies) setSchema()     { d.Schema = SchemaStoreCopies }
func (d *JobList) setSchema()         { d.Schema = SchemaJobs }
func (d *VersionList) setSchema()     { d.Schema = SchemaVersions }
func (d *VersionInfo) setSchema()     { d.Schema = SchemaVersion }
func (d *GCReport) setSchema()        { d.Schema = SchemaGC }
func (d *GCStatus) setSchema()        { d.Schema = SchemaGCStatus }
func (d *RepairReport) setSchema()    { d.Schema = SchemaRepair }
func (d *RepairStatus) setSchema()    { d.Schema = SchemaRepairStatus }
func (d *JobHealth) setSchema()       { d.Schema = SchemaHealth }
func (d *RetentionResult) setSchema() { d.Schema = SchemaRetention }
func (d *RetentionPolicy) setSchema() { d.Schema = SchemaRetentionPolicy }

// ShapeError reports an answer in a shape this client does not read: a
// manager of another release.
type ShapeError struct {
	Addr, Path string
	Got, Want  string
}

func (e *ShapeError) Error() string {
	return fmt.Sprintf("manager %s answered %s with a %q document, this client reads %q: "+
		"run a ckpt and a ckpt-manager of the same release (compare 'ckpt --version' and 'ckpt-manager --version')",
		e.Addr, e.Path, e.Got, e.Want)
}

// checkSchema accepts an answer with the schema want, or with none (a
// manager from before schemas, whose shapes the types still decode), and
// refuses another schema or another major version of it.
func checkSchema(raw []byte, want string) (got string, ok bool) {
	var peek struct {
		Schema *string `json:"schema"`
	}
	if json.Unmarshal(raw, &peek) != nil || peek.Schema == nil {
		return "", true
	}
	return *peek.Schema, *peek.Schema == want
}
