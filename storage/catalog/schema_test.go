package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestVersionJSONTyped: the known meta keys are typed fields, the rest
// stays in meta, and decoding gives back the same Meta; the older form
// (every key a string in meta, as catalogs written before hold) decodes
// to the same VersionInfo.
func TestVersionJSONTyped(t *testing.T) {
	v := VersionInfo{Job: "heat", Version: 3, Kind: "mpi", Replicas: 2, Objects: 8, LogicalBytes: 100, NewBytes: 50,
		Committed: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Meta: map[string]string{MetaStep: "12", MetaRanks: "4", MetaLeaders: "2", MetaRegions: "t,p", MetaReplicas: "2",
			MetaEncrypted: "xchacha20poly1305-v1", MetaFingerprint: "ab12", MetaLabelPrefix + "run": "7", "host": "n1", "odd": "x"}}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"step": 12.0, "ranks": 4.0, "leaders": 2.0, "replicas": 2.0, "encrypted": true,
		"encryption": "xchacha20poly1305-v1", "key_fingerprint": "ab12", "dedup_ratio": 2.0} {
		if m[k] != want {
			t.Errorf("%s = %#v, want %#v in %s", k, m[k], want, b)
		}
	}
	if rest := m["meta"].(map[string]any); len(rest) != 2 || rest["host"] != "n1" || rest["odd"] != "x" {
		t.Errorf("meta %v", rest)
	}
	var back VersionInfo
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(back.Meta, v.Meta) || back.Replicas != 2 || back.Version != 3 || !back.Committed.Equal(v.Committed) {
		t.Fatalf("round trip: %+v\nwant %+v", back, v)
	}

	old := `{"job":"heat","version":3,"kind":"mpi","meta":{"step":"12","ranks":"4","host":"n1"},"replicas":1}`
	var o VersionInfo
	if err := json.Unmarshal([]byte(old), &o); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(o.Meta, map[string]string{"step": "12", "ranks": "4", "host": "n1"}) {
		t.Fatalf("older form: %+v", o.Meta)
	}
	// A step that is not a plain number stays a string in meta.
	b, _ = json.Marshal(VersionInfo{Meta: map[string]string{MetaStep: "007"}})
	if !strings.Contains(string(b), `"meta":{"step":"007"}`) || strings.Contains(string(b), `"step":7`) {
		t.Fatalf("non-canonical step: %s", b)
	}
}

// TestClientSchemas: the client reads an answer without a schema (a
// manager from before them) and refuses one with another schema, naming
// both and the fix.
func TestClientSchemas(t *testing.T) {
	answer := ""
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(answer))
	}))
	defer srv.Close()
	c := NewClient(srv.Listener.Addr().String(), []byte("token-token-token-token-token-token"), ClientOptions{})
	ctx := context.Background()

	answer = `{"versions":[{"job":"j","version":1,"meta":{"step":"5"}}]}`
	vs, err := c.Versions(ctx, "j")
	if err != nil || len(vs) != 1 || vs[0].Meta[MetaStep] != "5" {
		t.Fatalf("older shape: %+v, %v", vs, err)
	}
	answer = `{"schema":"ckptio.versions/1","job":"j","versions":[{"job":"j","version":1,"step":5}]}`
	if vs, err = c.Versions(ctx, "j"); err != nil || vs[0].Meta[MetaStep] != "5" {
		t.Fatalf("current shape: %+v, %v", vs, err)
	}
	answer = `{"schema":"ckptio.versions/2","job":"j","versions":[]}`
	_, err = c.Versions(ctx, "j")
	var se *ShapeError
	if !errors.As(err, &se) || se.Got != "ckptio.versions/2" || se.Want != SchemaVersions || !strings.Contains(err.Error(), "same release") {
		t.Fatalf("newer shape: %v", err)
	}
	answer = `{"schema":"ckptio.stores/1","stores":[]}`
	if _, err := c.Versions(ctx, "j"); !errors.As(err, &se) {
		t.Fatalf("another document: %v", err)
	}
	// A dry run the manager does not confirm is an error, not a deletion
	// reported as a preview.
	answer = `{"schema":"ckptio.gc/1","dry_run":false,"stores":[]}`
	if _, err := c.GCDryRun(ctx); err == nil || !strings.Contains(err.Error(), "did not confirm a dry run") {
		t.Fatalf("unconfirmed dry run: %v", err)
	}
}
