package manager

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	bolterrors "go.etcd.io/bbolt/errors"
	"go.uber.org/zap"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/catalog"
)

// classify is catalog.Classify, with the catalog file closed under a
// request counted as the manager closing.
func classify(err error) (int, string) {
	if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		return http.StatusServiceUnavailable, catalog.CodeClosed
	}
	return catalog.Classify(err)
}

// Handler returns the HTTP API (see the package documentation). Every
// request must be signed with the cluster token.
func (m *Manager) Handler() http.Handler {
	mux := http.NewServeMux()
	j := int64(maxJSONBody)
	m.route(mux, "GET /v1/ping", j, m.servePing)
	m.route(mux, "POST /v1/heartbeat", j, m.serveHeartbeat)
	m.route(mux, "GET /v1/stores", j, func(w http.ResponseWriter, r *http.Request, _ []byte) error {
		writeJSON(w, http.StatusOK, catalog.StoreList{Schema: catalog.SchemaStores, Stores: nonNil(m.Stores())})
		return nil
	})
	m.route(mux, "POST /v1/stores/{id}/drain", j, m.serveDrain(true))
	m.route(mux, "DELETE /v1/stores/{id}/drain", j, m.serveDrain(false))
	m.route(mux, "GET /v1/stores/{id}/copies", j, func(w http.ResponseWriter, r *http.Request, _ []byte) error {
		c, err := m.StoreCopies(r.PathValue("id"))
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, c)
		return nil
	})
	m.route(mux, "DELETE /v1/stores/{id}", j, func(w http.ResponseWriter, r *http.Request, body []byte) error {
		if err := emptyBody(body); err != nil {
			return err
		}
		c, err := m.ForgetStore(r.PathValue("id"))
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, c)
		return nil
	})
	m.route(mux, "GET /v1/jobs", j, func(w http.ResponseWriter, r *http.Request, _ []byte) error {
		jobs, err := m.Jobs()
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, catalog.JobList{Schema: catalog.SchemaJobs, Jobs: nonNil(jobs)})
		return nil
	})
	m.route(mux, "POST /v1/jobs/{job}/txns", j, m.serveBegin)
	m.route(mux, "POST /v1/txns/{id}/renew", j, func(w http.ResponseWriter, r *http.Request, body []byte) error {
		if err := emptyBody(body); err != nil {
			return err
		}
		t, err := m.Renew(r.PathValue("id"))
		if err != nil {
			return err
		}
		t.Schema = catalog.SchemaTxn
		writeJSON(w, http.StatusOK, t)
		return nil
	})
	m.route(mux, "POST /v1/txns/{id}/commit", m.opts.MaxManifestBytes, m.serveCommit)
	m.route(mux, "DELETE /v1/txns/{id}", j, func(w http.ResponseWriter, r *http.Request, _ []byte) error {
		if err := m.Abort(r.PathValue("id")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	m.route(mux, "GET /v1/jobs/{job}/versions", j, func(w http.ResponseWriter, r *http.Request, _ []byte) error {
		vs, err := m.Versions(r.PathValue("job"))
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, catalog.VersionList{Schema: catalog.SchemaVersions, Job: r.PathValue("job"), Versions: nonNil(vs)})
		return nil
	})
	m.route(mux, "GET /v1/jobs/{job}/versions/{v}", j, func(w http.ResponseWriter, r *http.Request, _ []byte) error {
		v, err := parseVersion(r.PathValue("v"))
		if err != nil {
			return err
		}
		vi, err := m.Version(r.PathValue("job"), v)
		if err != nil {
			return err
		}
		vi.Schema = catalog.SchemaVersion
		writeJSON(w, http.StatusOK, vi)
		return nil
	})
	m.route(mux, "GET /v1/jobs/{job}/versions/{v}/manifest", j, m.serveManifest)
	m.route(mux, "DELETE /v1/jobs/{job}/versions/{v}", j, m.serveDeleteVersion)
	m.route(mux, "POST /v1/jobs/{job}/versions/{v}/pin", j, m.servePin(true))
	m.route(mux, "DELETE /v1/jobs/{job}/versions/{v}/pin", j, m.servePin(false))
	m.route(mux, "GET /v1/jobs/{job}/retention", j, func(w http.ResponseWriter, r *http.Request, _ []byte) error {
		ret, err := m.Retention(r.PathValue("job"))
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, catalog.RetentionPolicy{Schema: catalog.SchemaRetentionPolicy, Job: r.PathValue("job"), Retention: ret})
		return nil
	})
	m.route(mux, "PUT /v1/jobs/{job}/retention", j, m.serveSetRetention)
	m.route(mux, "POST /v1/gc", j, func(w http.ResponseWriter, r *http.Request, body []byte) error {
		var req catalog.GCRequest
		if len(bytes.TrimSpace(body)) != 0 {
			if err := decodeJSON(body, &req); err != nil {
				return err
			}
		}
		// The collection is the manager's: it finishes (and GET /v1/gc
		// shows it) if the client goes away.
		gc := m.GC
		if req.DryRun {
			gc = m.GCDryRun
		}
		rep, err := gc(context.WithoutCancel(r.Context()))
		if err != nil {
			return err
		}
		rep.Schema = catalog.SchemaGC
		writeJSON(w, http.StatusOK, rep)
		return nil
	})
	m.route(mux, "POST /v1/blocks/discard", j, m.serveDiscard)
	m.route(mux, "GET /v1/gc", j, func(w http.ResponseWriter, r *http.Request, _ []byte) error {
		st := m.GCStatus()
		st.Schema = catalog.SchemaGCStatus
		writeJSON(w, http.StatusOK, st)
		return nil
	})
	m.route(mux, "GET /v1/jobs/{job}/health", j, m.serveHealth(false))
	m.route(mux, "GET /v1/jobs/{job}/versions/{v}/health", j, m.serveHealth(true))
	m.route(mux, "POST /v1/repair", j, m.serveRepair)
	m.route(mux, "POST /v1/jobs/{job}/corrupt", j, m.serveCorrupt)
	m.route(mux, "GET /v1/repair", j, func(w http.ResponseWriter, r *http.Request, _ []byte) error {
		st := m.RepairStatus()
		st.Schema = catalog.SchemaRepairStatus
		writeJSON(w, http.StatusOK, st)
		return nil
	})
	m.mountDashboard(mux) // /ui/: the web dashboard, cookie-authenticated (dashboard.go)
	mux.HandleFunc("/", m.observed("other", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, catalog.ErrorBody{Schema: catalog.SchemaError, Error: fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path), Code: catalog.CodeNotFound})
	}))
	return mux
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

type handlerFunc func(w http.ResponseWriter, r *http.Request, body []byte) error

// route registers h behind authentication: the timestamp is checked before
// the body is read (at most limit bytes), the signature after.
func (m *Manager) route(mux *http.ServeMux, pattern string, limit int64, h handlerFunc) {
	mux.HandleFunc(pattern, m.observed(pattern, func(w http.ResponseWriter, r *http.Request) {
		err := m.serve(w, r, limit, h)
		if err == nil {
			return
		}
		status, code := classify(err)
		switch {
		case status == http.StatusUnauthorized:
			// Log the 1st, 2nd, 4th...: a stranger hammering the API must
			// not grow the manager's log at its rate.
			if n := m.refused.Add(1); n&(n-1) == 0 {
				m.log.Warn("request refused", zap.String("remote", r.RemoteAddr), zap.String("method", r.Method),
					zap.String("path", r.URL.Path), zap.Error(err), zap.Int64("refused_total", n))
			}
		case status >= 500:
			m.log.Error("request failed", zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Error(err))
		default:
			m.log.Debug("request rejected", zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Error(err))
		}
		writeJSON(w, status, catalog.ErrorBody{Schema: catalog.SchemaError, Error: errorText(err), Code: code})
	}))
}

// errorText is err's message for an error body, saying "manager: " once:
// an error wrapped around a catalog sentinel ("manager: commit X of job
// j: manager: unknown or expired transaction: ...") would say it at each
// layer.
func errorText(err error) string {
	msg := err.Error()
	rest, had := strings.CutPrefix(msg, "manager: ")
	rest = strings.ReplaceAll(rest, ": manager: ", ": ")
	if had {
		return "manager: " + rest
	}
	return rest
}

func (m *Manager) serve(w http.ResponseWriter, r *http.Request, limit int64, h handlerFunc) error {
	m.mu.Lock()
	closed := m.mu.closed
	m.mu.Unlock()
	if closed {
		return storage.ErrClosed
	}
	header := r.Header.Get("Authorization")
	now := m.now()
	// Check the header and the clock before spending time on the body.
	if ts, _, ok := catalog.ParseAuth(header); !ok || now.Sub(time.Unix(ts, 0)).Abs() > catalog.MaxClockSkew {
		return catalog.Verify(m.opts.Token, header, r.Method, r.URL.RequestURI(), now, nil)
	}
	if r.ContentLength > limit {
		return fmt.Errorf("%w: %d bytes, the limit is %d", catalog.ErrTooLarge, r.ContentLength, limit)
	}
	body, err := readBody(w, r, limit)
	if err != nil {
		return err
	}
	if err := catalog.Verify(m.opts.Token, header, r.Method, r.URL.RequestURI(), now, body); err != nil {
		return err
	}
	return h(w, r, body)
}

// maxPreGrow bounds the buffer readBody allocates before the body arrives.
const maxPreGrow = 1 << 20

func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	rd := http.MaxBytesReader(w, r.Body, limit)
	var buf bytes.Buffer
	// The announced length is the client's word, not bytes received: grow
	// to it only up to maxPreGrow, and past that as the bytes arrive, so a
	// stranger announcing 256 MiB and stalling costs no memory.
	if r.ContentLength > 0 {
		buf.Grow(int(min(r.ContentLength, maxPreGrow)) + bytes.MinRead) // ReadFrom wants room to see EOF
	}
	if _, err := buf.ReadFrom(rd); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, fmt.Errorf("%w: more than %d bytes", catalog.ErrTooLarge, limit)
		}
		return nil, fmt.Errorf("%w: reading the body: %w", catalog.ErrInvalid, err)
	}
	return buf.Bytes(), nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v) // the client went away; nothing to do
}

// decodeJSON decodes exactly one JSON value with no unknown fields.
func decodeJSON(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: JSON body: %w", catalog.ErrInvalid, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: JSON body: data after the value", catalog.ErrInvalid)
	}
	return nil
}

func emptyBody(body []byte) error {
	if len(bytes.TrimSpace(body)) != 0 {
		return fmt.Errorf("%w: this endpoint takes no body", catalog.ErrInvalid)
	}
	return nil
}

// DecodeHeartbeat decodes the body of POST /v1/heartbeat strictly and
// validates it.
func DecodeHeartbeat(body []byte) (catalog.Heartbeat, error) {
	var hb catalog.Heartbeat
	if err := decodeJSON(body, &hb); err != nil {
		return catalog.Heartbeat{}, err
	}
	if err := hb.Validate(); err != nil {
		return catalog.Heartbeat{}, err
	}
	return hb, nil
}

func parseVersion(s string) (int64, error) {
	if s == "latest" {
		return 0, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("%w: version %q: want a positive number or \"latest\"", catalog.ErrInvalid, s)
	}
	return v, nil
}

func (m *Manager) servePing(w http.ResponseWriter, r *http.Request, _ []byte) error {
	writeJSON(w, http.StatusOK, catalog.Pong{Schema: catalog.SchemaPong, OK: true, Time: m.now().UTC(), DeadAfter: m.opts.DeadAfter.String(), TxnTimeout: m.opts.TxnTimeout.String()})
	return nil
}

func (m *Manager) serveHeartbeat(w http.ResponseWriter, r *http.Request, body []byte) error {
	hb, err := DecodeHeartbeat(body)
	if err != nil {
		return err
	}
	if err := m.Heartbeat(hb); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, catalog.OK{Schema: catalog.SchemaOK, OK: true})
	return nil
}

func (m *Manager) serveBegin(w http.ResponseWriter, r *http.Request, body []byte) error {
	if err := emptyBody(body); err != nil {
		return err
	}
	t, err := m.Begin(r.PathValue("job"))
	if err != nil {
		return err
	}
	t.Schema = catalog.SchemaTxn
	writeJSON(w, http.StatusCreated, t)
	return nil
}

func (m *Manager) serveCommit(w http.ResponseWriter, r *http.Request, body []byte) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != catalog.ManifestContentType {
			return fmt.Errorf("%w: Content-Type %q, want %s", catalog.ErrInvalid, ct, catalog.ManifestContentType)
		}
	}
	vi, err := m.Commit(r.PathValue("id"), body)
	if err != nil {
		return err
	}
	vi.Schema = catalog.SchemaVersion
	writeJSON(w, http.StatusCreated, vi)
	return nil
}

func (m *Manager) serveManifest(w http.ResponseWriter, r *http.Request, _ []byte) error {
	v, err := parseVersion(r.PathValue("v"))
	if err != nil {
		return err
	}
	data, v, err := m.Manifest(r.PathValue("job"), v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", catalog.ManifestContentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.Header().Set(catalog.HeaderVersion, strconv.FormatInt(v, 10))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(data) // the client went away; nothing to do
	return nil
}

func (m *Manager) serveDeleteVersion(w http.ResponseWriter, r *http.Request, body []byte) error {
	if err := emptyBody(body); err != nil {
		return err
	}
	s := r.PathValue("v")
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v <= 0 {
		return fmt.Errorf("%w: version %q: deleting takes a positive version number", catalog.ErrInvalid, s)
	}
	vi, err := m.DeleteVersion(r.PathValue("job"), v)
	if err != nil {
		return err
	}
	vi.Schema = catalog.SchemaVersion
	writeJSON(w, http.StatusOK, vi)
	return nil
}

func (m *Manager) servePin(pinned bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, body []byte) error {
		if err := emptyBody(body); err != nil {
			return err
		}
		v, err := parseVersion(r.PathValue("v"))
		if err != nil {
			return err
		}
		vi, err := m.Pin(r.PathValue("job"), v, pinned)
		if err != nil {
			return err
		}
		vi.Schema = catalog.SchemaVersion
		writeJSON(w, http.StatusOK, vi)
		return nil
	}
}

func (m *Manager) serveSetRetention(w http.ResponseWriter, r *http.Request, body []byte) error {
	var req catalog.RetentionRequest
	if err := decodeJSON(body, &req); err != nil {
		return err
	}
	set := m.SetRetention
	if req.DryRun {
		set = m.PreviewRetention
	}
	deleted, err := set(r.PathValue("job"), req.Retention)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, catalog.RetentionResult{Schema: catalog.SchemaRetention, Job: r.PathValue("job"),
		Retention: req.Retention, Deleted: nonNil(deleted), DryRun: req.DryRun})
	return nil
}

func (m *Manager) serveHealth(one bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, _ []byte) error {
		var v int64
		if one {
			var err error
			if v, err = parseVersion(r.PathValue("v")); err != nil {
				return err
			}
			if v == 0 { // latest
				vi, err := m.Version(r.PathValue("job"), 0)
				if err != nil {
					return err
				}
				v = vi.Version
			}
		}
		h, err := m.Health(r.Context(), r.PathValue("job"), v)
		if err != nil {
			return err
		}
		h.Schema = catalog.SchemaHealth
		writeJSON(w, http.StatusOK, h)
		return nil
	}
}

func (m *Manager) serveRepair(w http.ResponseWriter, r *http.Request, body []byte) error {
	if err := emptyBody(body); err != nil {
		return err
	}
	q := r.URL.Query()
	for k := range q {
		if k != "job" {
			return fmt.Errorf("%w: unknown parameter %q (POST /v1/repair takes only job)", catalog.ErrInvalid, k)
		}
	}
	// The pass is the manager's: it finishes (and GET /v1/repair shows
	// it) if the client goes away.
	rep, err := m.Repair(context.WithoutCancel(r.Context()), q.Get("job"))
	if err != nil {
		return err
	}
	rep.Schema = catalog.SchemaRepair
	writeJSON(w, http.StatusOK, rep)
	return nil
}
