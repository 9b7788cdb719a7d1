package manager

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/catalog"
)

// fetch sends a signed request and returns the status and the body.
func fetch(t *testing.T, srv *httptest.Server, method, path string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", catalog.Sign(testToken, method, req.URL.RequestURI(), time.Now().Unix(), body))
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, data
}

// TestHTTPShapes: every JSON answer of the API is one object (never a bare
// array) with its "schema", and a version's known meta comes as typed
// fields: numbers as JSON numbers, regions as an array, labels apart.
func TestHTTPShapes(t *testing.T) {
	ctx := context.Background()
	_, srv, c := serve(t, Options{})
	if err := c.Heartbeat(ctx, catalog.Heartbeat{ID: "s1", Addr: "127.0.0.1:7001", Usage: storage.Usage{Used: 5, Quota: 50, Blocks: 1, DiskFree: 500}}); err != nil {
		t.Fatal(err)
	}
	txn, err := c.Begin(ctx, "heat")
	if err != nil {
		t.Fatal(err)
	}
	m := testManifest("heat", 2)
	m.Kind = "mpi"
	m.Meta = map[string]string{catalog.MetaStep: "12", catalog.MetaRanks: "4", catalog.MetaLeaders: "1",
		catalog.MetaRegions: "temperature,pressure", catalog.MetaReplicas: "1", catalog.MetaLabelPrefix + "run": "42", "host": "n1"}
	if _, err := c.Commit(ctx, txn.ID, marshal(t, m)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		method, path, body string
		status             int
		schema             string
	}{
		{"GET", "/v1/ping", "", 200, catalog.SchemaPong},
		{"GET", "/v1/stores", "", 200, catalog.SchemaStores},
		{"GET", "/v1/stores/s1/copies", "", 200, catalog.SchemaStoreCopies},
		{"POST", "/v1/stores/s1/drain", "", 200, catalog.SchemaStore},
		{"DELETE", "/v1/stores/s1/drain", "", 200, catalog.SchemaStore},
		{"DELETE", "/v1/stores/s1", "", 409, catalog.SchemaError}, // alive, not draining
		{"DELETE", "/v1/stores/nope", "", 404, catalog.SchemaError},
		{"GET", "/v1/jobs", "", 200, catalog.SchemaJobs},
		{"GET", "/v1/jobs/heat/versions", "", 200, catalog.SchemaVersions},
		{"GET", "/v1/jobs/heat/versions/1", "", 200, catalog.SchemaVersion},
		{"GET", "/v1/jobs/heat/versions/latest", "", 200, catalog.SchemaVersion},
		{"POST", "/v1/jobs/heat/versions/1/pin", "", 200, catalog.SchemaVersion},
		{"GET", "/v1/jobs/heat/retention", "", 200, catalog.SchemaRetentionPolicy},
		{"PUT", "/v1/jobs/heat/retention", `{"keep_last":1,"dry_run":true}`, 200, catalog.SchemaRetention},
		{"POST", "/v1/gc", `{"dry_run":true}`, 200, catalog.SchemaGC},
		{"GET", "/v1/gc", "", 200, catalog.SchemaGCStatus},
		{"GET", "/v1/repair", "", 200, catalog.SchemaRepairStatus},
		{"GET", "/v1/jobs/heat/health", "", 200, catalog.SchemaHealth},
		{"POST", "/v1/jobs/heat/txns", "", 201, catalog.SchemaTxn},
		{"GET", "/v1/jobs/nojob/versions", "", 404, catalog.SchemaError},
		{"GET", "/v1/nothing", "", 404, catalog.SchemaError},
	} {
		status, body := fetch(t, srv, tc.method, tc.path, []byte(tc.body))
		var doc map[string]any
		if status != tc.status || json.Unmarshal(body, &doc) != nil || doc["schema"] != tc.schema {
			t.Errorf("%s %s: HTTP %d, want %d with schema %q: %s", tc.method, tc.path, status, tc.status, tc.schema, body)
			continue
		}
		noNumericStrings(t, tc.path, doc)
	}

	_, body := fetch(t, srv, "GET", "/v1/jobs/heat/versions/1", nil)
	var v map[string]any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatal(err)
	}
	if v["step"] != 12.0 || v["ranks"] != 4.0 || v["leaders"] != 1.0 || v["replicas"] != 1.0 || v["encrypted"] != false {
		t.Errorf("typed meta: %s", body)
	}
	if r, ok := v["regions"].([]any); !ok || len(r) != 2 || r[0] != "temperature" || r[1] != "pressure" {
		t.Errorf("regions: %s", body)
	}
	if l, ok := v["labels"].(map[string]any); !ok || l["run"] != "42" {
		t.Errorf("labels: %s", body)
	}
	if rest, ok := v["meta"].(map[string]any); !ok || len(rest) != 1 || rest["host"] != "n1" {
		t.Errorf("meta keeps only the keys without a field: %s", body)
	}
	// The client reads the typed fields back into Meta.
	vi, err := c.Version(ctx, "heat", 1)
	if err != nil || vi.Meta[catalog.MetaStep] != "12" || vi.Meta[catalog.MetaRegions] != "temperature,pressure" ||
		vi.Meta[catalog.MetaLabelPrefix+"run"] != "42" || vi.Meta["host"] != "n1" || vi.Schema != catalog.SchemaVersion {
		t.Fatalf("client's version: %+v, %v", vi, err)
	}
	jobs, err := c.Jobs(ctx)
	if err != nil || len(jobs) != 1 || jobs[0].LatestStep == nil || *jobs[0].LatestStep != 12 || jobs[0].LogicalBytes != 600 {
		t.Fatalf("jobs %+v, %v", jobs, err)
	}
}

// noNumericStrings fails on a string value that is a number outside the
// free-form maps (meta, labels).
func noNumericStrings(t *testing.T, path string, v any) {
	t.Helper()
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if k == "meta" || k == "labels" || k == "id" || k == "key" {
				continue
			}
			noNumericStrings(t, path+"."+k, x)
		}
	case []any:
		for i, x := range v {
			noNumericStrings(t, path+"["+strconv.Itoa(i)+"]", x)
		}
	case string:
		if _, err := strconv.ParseFloat(v, 64); err == nil && !strings.HasSuffix(path, "_within") {
			t.Errorf("%s = %q: a number sent as a string", path, v)
		}
	}
}
