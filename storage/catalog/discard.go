package catalog

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/ckptio/ckptio/storage"
)

// MaxDiscardKeys bounds the keys of one DiscardRequest; Client.Discard
// sends more in several requests.
const MaxDiscardKeys = 4096

// DiscardRequest (POST /v1/blocks/discard) names blocks an aborted write
// put and that no store held before, by store ID. The manager deletes
// those that no committed version names and that nobody touched since
// the garbage collection horizon (the begin time of the oldest
// transaction in flight): exactly what a collection would delete of them,
// now. The caller aborts its own transaction first, or its begin time
// holds the horizon before its blocks.
type DiscardRequest struct {
	Stores map[string][]storage.Hash `json:"stores"`
}

// DiscardReport says what a discard did: the blocks asked about, those
// deleted (unreferenced and untouched since the horizon) and the bytes
// freed. Stores that could not be reached are named in Failed; their
// blocks are left to garbage collection.
type DiscardReport struct {
	Schema     string          `json:"schema"` // SchemaDiscard
	Asked      int64           `json:"asked"`
	Deleted    int64           `json:"deleted"`
	FreedBytes int64           `json:"freed_bytes"`
	Failed     []GCStoreReport `json:"failed,omitempty"`
}

// SchemaDiscard names DiscardReport (docs/json.md).
const SchemaDiscard = "ckptio.discard/1"

func (*DiscardReport) wantSchema() string { return SchemaDiscard }
func (d *DiscardReport) setSchema()       { d.Schema = SchemaDiscard }

// Discard asks the manager to delete blocks an aborted write left behind
// (DiscardRequest), in batches of MaxDiscardKeys, and adds up the reports.
func (c *Client) Discard(ctx context.Context, stores map[string][]storage.Hash) (DiscardReport, error) {
	var total DiscardReport
	for id, hs := range stores {
		for len(hs) > 0 {
			n := min(len(hs), MaxDiscardKeys)
			body, err := json.Marshal(DiscardRequest{Stores: map[string][]storage.Hash{id: hs[:n]}})
			if err != nil {
				return total, err
			}
			var rep DiscardReport
			if _, err := c.doWith(ctx, c.long, http.MethodPost, "/v1/blocks/discard", "application/json", body, &rep); err != nil {
				return total, err
			}
			total.Asked += rep.Asked
			total.Deleted += rep.Deleted
			total.FreedBytes += rep.FreedBytes
			total.Failed = append(total.Failed, rep.Failed...)
			hs = hs[n:]
		}
	}
	return total, nil
}
