package catalog

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/ckptio/ckptio/storage"
)

// MaxCorruptCopies bounds the copies of one CorruptRequest;
// Client.ReportCorrupt sends more in several requests.
const MaxCorruptCopies = 256

// CorruptCopy names one copy a reader found corrupt: the block (or
// shard) key and the store that returned bytes not matching it.
type CorruptCopy struct {
	Store string       `json:"store"`
	Key   storage.Hash `json:"key"`
}

// Compare orders copies by store, then key (slices.SortFunc).
func (c CorruptCopy) Compare(o CorruptCopy) int {
	if d := strings.Compare(c.Store, o.Store); d != 0 {
		return d
	}
	return bytes.Compare(c.Key[:], o.Key[:])
}

// CorruptRequest (POST /v1/jobs/{job}/corrupt) reports copies of job's
// blocks that a read found corrupt. The manager does not take the
// reader's word for it: it reads each copy back itself, drops the ones
// that do not match their key from their store, and queues a repair of
// the job, which copies those blocks from good holders.
type CorruptRequest struct {
	Copies []CorruptCopy `json:"copies"`
}

// CorruptReport says what the manager found of the copies reported:
// dropped (corrupt when read back, or already dropped by their store),
// intact (they read back whole: the damage was on the way), and those it
// could not check (Failed, by store). RepairQueued is true when a repair
// of the job was queued for the dropped ones.
type CorruptReport struct {
	Schema       string          `json:"schema"` // SchemaCorrupt
	Reported     int             `json:"reported"`
	Dropped      int             `json:"dropped"`
	Intact       int             `json:"intact"`
	Failed       []GCStoreReport `json:"failed,omitempty"`
	RepairQueued bool            `json:"repair_queued"`
}

// SchemaCorrupt names CorruptReport (docs/json.md).
const SchemaCorrupt = "ckptio.corrupt/1"

func (*CorruptReport) wantSchema() string { return SchemaCorrupt }
func (d *CorruptReport) setSchema()       { d.Schema = SchemaCorrupt }

// ReportCorrupt reports copies of job's blocks found corrupt
// (CorruptRequest), in batches of MaxCorruptCopies, and adds up the
// reports.
func (c *Client) ReportCorrupt(ctx context.Context, job string, copies []CorruptCopy) (CorruptReport, error) {
	var total CorruptReport
	path, err := jobPath(job)
	if err != nil {
		return total, err
	}
	for len(copies) > 0 {
		n := min(len(copies), MaxCorruptCopies)
		body, err := json.Marshal(CorruptRequest{Copies: copies[:n]})
		if err != nil {
			return total, err
		}
		var rep CorruptReport
		if _, err := c.doWith(ctx, c.long, http.MethodPost, path+"/corrupt", "application/json", body, &rep); err != nil {
			return total, err
		}
		total.Schema = rep.Schema
		total.Reported += rep.Reported
		total.Dropped += rep.Dropped
		total.Intact += rep.Intact
		total.Failed = append(total.Failed, rep.Failed...)
		total.RepairQueued = total.RepairQueued || rep.RepairQueued
		copies = copies[n:]
	}
	return total, nil
}
