package catalog

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/manifest"
)

// DefaultDialTimeout bounds connecting to the manager, so a manager that is
// down fails a command within seconds.
const DefaultDialTimeout = 3 * time.Second

// ClientOptions configure a Client. The zero value is ready to use.
type ClientOptions struct {
	// HTTPClient sends the requests. Nil means a client whose transport
	// dials with DialTimeout and waits at most 2 minutes for a response
	// header; overall deadlines come from each call's context.
	HTTPClient *http.Client
	// DialTimeout: zero means DefaultDialTimeout (3s). Ignored with
	// HTTPClient.
	DialTimeout time.Duration
	// Now is the clock requests are signed with. Nil means time.Now.
	Now func() time.Time
	// TLS, when not nil, speaks HTTPS to a manager run with --tls-cert
	// (tlsconf.Client builds it; an empty ServerName means the host of the
	// address): an address without a scheme gets https://, and the default
	// transport verifies the manager with it. With HTTPClient, only the
	// scheme follows TLS. Nil speaks plain HTTP.
	TLS *tls.Config
}

// Client talks to a manager over its HTTP API. It is safe for concurrent
// use. Errors wrap the manager's sentinels (ErrUnknownJob, ...),
// storage.ErrUnauthorized for a refused token or clock, and ErrUnreachable
// when the manager cannot be reached (an *UnreachableError) or not spoken
// to as ClientOptions.TLS says (TLS to a plain manager, plain to a TLS one,
// a certificate the CA does not vouch for).
type Client struct {
	addr  string
	base  string
	token []byte
	hc    *http.Client
	// long sends the requests whose answer may take minutes (GC): no
	// response header timeout, only the call's context.
	long *http.Client
	now  func() time.Time
}

// NewClient returns a client of the manager at addr ("host:port" or a URL).
func NewClient(addr string, token []byte, opts ClientOptions) *Client {
	base := strings.TrimSuffix(addr, "/")
	if !strings.Contains(base, "://") {
		if opts.TLS != nil {
			base = "https://" + base
		} else {
			base = "http://" + base
		}
	}
	hc, long := opts.HTTPClient, opts.HTTPClient
	if hc == nil {
		dt := opts.DialTimeout
		if dt <= 0 {
			dt = DefaultDialTimeout
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.DialContext = (&net.Dialer{Timeout: dt, KeepAlive: 30 * time.Second}).DialContext
		if opts.TLS != nil {
			tr.TLSClientConfig = opts.TLS.Clone()
			tr.TLSHandshakeTimeout = dt
		}
		long = &http.Client{Transport: tr.Clone()}
		tr.ResponseHeaderTimeout = 2 * time.Minute
		hc = &http.Client{Transport: tr}
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &Client{addr: addr, base: base, token: append([]byte(nil), token...), hc: hc, long: long, now: now}
}

// Addr returns the manager's address as given to NewClient.
func (c *Client) Addr() string { return c.addr }

// remoteError is an error the manager reported, with the sentinels it maps
// to.
type remoteError struct {
	msg  string
	errs []error
}

func (e *remoteError) Error() string   { return e.msg }
func (e *remoteError) Unwrap() []error { return e.errs }

// do sends a signed request and decodes a JSON answer into out (if not
// nil), or returns the response for the caller to read (raw).
func (c *Client) do(ctx context.Context, method, path, contentType string, body []byte, out any) (*http.Response, error) {
	return c.doWith(ctx, c.hc, method, path, contentType, body, out)
}

func (c *Client) doWith(ctx context.Context, hc *http.Client, method, path, contentType string, body []byte, out any) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("manager %s: %s %s: %w", c.addr, method, path, err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Authorization", Sign(c.token, method, req.URL.RequestURI(), c.now().Unix(), body))
	resp, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("manager %s: %s %s: %w", c.addr, method, path, ctx.Err())
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if terr := c.tlsErr(err); terr != nil {
			return nil, terr
		}
		return nil, &UnreachableError{Addr: c.addr, Err: err}
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		return nil, c.remoteErr(resp)
	}
	if out == nil {
		return resp, nil
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("manager %s: %s %s: reading the answer: %w", c.addr, method, path, err)
	}
	if d, ok := out.(schemaDoc); ok {
		if got, ok := checkSchema(raw, d.wantSchema()); !ok {
			return nil, &ShapeError{Addr: c.addr, Path: method + " " + path, Got: got, Want: d.wantSchema()}
		}
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return nil, fmt.Errorf("manager %s: %s %s: bad answer: %w", c.addr, method, path, err)
	}
	if d, ok := out.(schemaDoc); ok {
		d.setSchema()
	}
	return nil, nil
}

// tlsErr explains a failure to speak HTTPS with the manager, or returns
// nil. The error matches ErrUnreachable.
func (c *Client) tlsErr(err error) error {
	var ve *tls.CertificateVerificationError
	switch {
	case errors.Is(err, http.ErrSchemeMismatch):
		return &remoteError{
			msg:  fmt.Sprintf("manager %s does not speak TLS (started without --tls-cert?)", c.addr),
			errs: []error{ErrUnreachable, err},
		}
	case errors.As(err, &ve):
		return &remoteError{
			msg:  fmt.Sprintf("manager %s: its TLS certificate is not trusted (wrong --tls-ca / CKPT_TLS_CA?): %v", c.addr, err),
			errs: []error{ErrUnreachable, err},
		}
	}
	return nil
}

// plainToTLS is the body of net/http's answer to a plain HTTP request on
// an HTTPS port.
const plainToTLS = "Client sent an HTTP request to an HTTPS server"

func (c *Client) remoteErr(resp *http.Response) error {
	var eb ErrorBody
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode == http.StatusBadRequest && strings.Contains(string(raw), plainToTLS) {
		return &remoteError{
			msg: fmt.Sprintf("manager %s expects TLS (it runs with --tls-cert): "+
				"give the client its CA with --tls-ca or CKPT_TLS_CA", c.addr),
			errs: []error{ErrUnreachable},
		}
	}
	if json.Unmarshal(raw, &eb) != nil || eb.Error == "" {
		eb.Error = strings.TrimSpace(string(raw))
	}
	switch eb.Code {
	case CodeUnauthorized:
		return &remoteError{
			msg:  fmt.Sprintf("manager %s refused the cluster token (wrong CKPT_TOKEN / token file?)", c.addr),
			errs: []error{storage.ErrUnauthorized},
		}
	case CodeClockSkew:
		return &remoteError{
			msg:  fmt.Sprintf("manager %s refused the request: %s", c.addr, eb.Error),
			errs: []error{ErrClockSkew, storage.ErrUnauthorized},
		}
	}
	if s := sentinelOf(eb.Code); s != nil {
		return &remoteError{msg: eb.Error, errs: []error{s}}
	}
	if resp.StatusCode == http.StatusUnauthorized {
		return &remoteError{msg: fmt.Sprintf("manager %s refused the cluster token: %s", c.addr, eb.Error), errs: []error{storage.ErrUnauthorized}}
	}
	return fmt.Errorf("manager %s: %s %s: HTTP %d: %s", c.addr, resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, eb.Error)
}

func jobPath(job string) (string, error) {
	if err := ValidJobName(job); err != nil {
		return "", err
	}
	return "/v1/jobs/" + job, nil
}

func txnPath(id string) string { return "/v1/txns/" + url.PathEscape(id) }

// Ping checks that the manager answers and accepts the token.
func (c *Client) Ping(ctx context.Context) error {
	var p Pong
	_, err := c.do(ctx, http.MethodGet, "/v1/ping", "", nil, &p)
	return err
}

// Heartbeat reports a store's figures.
func (c *Client) Heartbeat(ctx context.Context, hb Heartbeat) error {
	body, err := json.Marshal(hb)
	if err != nil {
		return fmt.Errorf("manager: heartbeat: %w", err)
	}
	var ok struct {
		OK bool `json:"ok"`
	}
	_, err = c.do(ctx, http.MethodPost, "/v1/heartbeat", "application/json", body, &ok)
	return err
}

// Stores lists the stores the manager knows, alive or not.
func (c *Client) Stores(ctx context.Context) ([]StoreInfo, error) {
	l, err := c.StoreList(ctx)
	return l.Stores, err
}

// StoreList is Stores as the manager answers it (SchemaStores).
func (c *Client) StoreList(ctx context.Context) (StoreList, error) {
	var out StoreList
	_, err := c.do(ctx, http.MethodGet, "/v1/stores", "", nil, &out)
	if out.Stores == nil {
		out.Stores = []StoreInfo{}
	}
	return out, err
}

func storePath(id string) (string, error) {
	if id == "" || len(id) > 128 {
		return "", fmt.Errorf("%w: store ID %q: want 1 to 128 characters", ErrInvalid, id)
	}
	return "/v1/stores/" + url.PathEscape(id), nil
}

// DrainStore marks store id draining: writers place no new blocks on it
// and repair moves its copies elsewhere. It returns the store as the
// catalog now has it. Draining a draining store changes nothing.
func (c *Client) DrainStore(ctx context.Context, id string) (StoreInfo, error) {
	return c.drain(ctx, http.MethodPost, id)
}

// UndrainStore ends a drain: the store takes new blocks again.
func (c *Client) UndrainStore(ctx context.Context, id string) (StoreInfo, error) {
	return c.drain(ctx, http.MethodDelete, id)
}

func (c *Client) drain(ctx context.Context, method, id string) (StoreInfo, error) {
	p, err := storePath(id)
	if err != nil {
		return StoreInfo{}, err
	}
	var out StoreDoc
	_, err = c.do(ctx, method, p+"/drain", "", nil, &out)
	return out.StoreInfo, err
}

// StoreCopies says what the catalog's manifests place on store id.
func (c *Client) StoreCopies(ctx context.Context, id string) (StoreCopies, error) {
	p, err := storePath(id)
	if err != nil {
		return StoreCopies{}, err
	}
	var out StoreCopies
	_, err = c.do(ctx, http.MethodGet, p+"/copies", "", nil, &out)
	return out, err
}

// ForgetStore removes store id from the catalog. It fails with
// ErrOnlyCopy while the store holds the only copy of any block a version
// names, and with ErrConflict for an alive store that is not draining.
// The manager then refuses the store's heartbeats.
func (c *Client) ForgetStore(ctx context.Context, id string) (StoreCopies, error) {
	p, err := storePath(id)
	if err != nil {
		return StoreCopies{}, err
	}
	var out StoreCopies
	_, err = c.do(ctx, http.MethodDelete, p, "", nil, &out)
	return out, err
}

// Jobs lists the jobs.
func (c *Client) Jobs(ctx context.Context) ([]JobInfo, error) {
	l, err := c.JobList(ctx)
	return l.Jobs, err
}

// JobList is Jobs as the manager answers it (SchemaJobs).
func (c *Client) JobList(ctx context.Context) (JobList, error) {
	var out JobList
	_, err := c.do(ctx, http.MethodGet, "/v1/jobs", "", nil, &out)
	if out.Jobs == nil {
		out.Jobs = []JobInfo{}
	}
	return out, err
}

// Begin starts a version of job. Renew the transaction well within the
// manager's TxnTimeout while writing.
func (c *Client) Begin(ctx context.Context, job string) (Txn, error) {
	p, err := jobPath(job)
	if err != nil {
		return Txn{}, err
	}
	var t Txn
	_, err = c.do(ctx, http.MethodPost, p+"/txns", "", nil, &t)
	return t, err
}

// Renew keeps a transaction alive.
func (c *Client) Renew(ctx context.Context, txnID string) error {
	var t Txn
	_, err := c.do(ctx, http.MethodPost, txnPath(txnID)+"/renew", "", nil, &t)
	return err
}

// Commit sends the version's manifest, encoded (manifest.Marshal or
// manifest.Splice), and returns the version number the manager assigned.
func (c *Client) Commit(ctx context.Context, txnID string, body []byte) (int64, error) {
	// Only the number is read, whatever the answer's schema: refusing the
	// answer of a committed version would report a commit that happened
	// as failed.
	var vi struct {
		Version int64 `json:"version"`
	}
	if _, err := c.do(ctx, http.MethodPost, txnPath(txnID)+"/commit", ManifestContentType, body, &vi); err != nil {
		return 0, err
	}
	return vi.Version, nil
}

// Abort discards a transaction. An unknown or expired one gives
// ErrUnknownTxn.
func (c *Client) Abort(ctx context.Context, txnID string) error {
	resp, err := c.do(ctx, http.MethodDelete, txnPath(txnID), "", nil, nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// Versions lists a job's committed versions, oldest first.
func (c *Client) Versions(ctx context.Context, job string) ([]VersionInfo, error) {
	p, err := jobPath(job)
	if err != nil {
		return nil, err
	}
	var out VersionList
	_, err = c.do(ctx, http.MethodGet, p+"/versions", "", nil, &out)
	return out.Versions, err
}

// VersionList is Versions as the manager answers it (SchemaVersions).
func (c *Client) VersionList(ctx context.Context, job string) (VersionList, error) {
	vs, err := c.Versions(ctx, job)
	if vs == nil {
		vs = []VersionInfo{}
	}
	return VersionList{Schema: SchemaVersions, Job: job, Versions: vs}, err
}

func versionPath(job string, version int64) (string, error) {
	p, err := jobPath(job)
	if err != nil {
		return "", err
	}
	if version < 0 {
		return "", fmt.Errorf("%w: version %d", ErrInvalid, version)
	}
	v := "latest"
	if version > 0 {
		v = strconv.FormatInt(version, 10)
	}
	return p + "/versions/" + v, nil
}

// Version returns one version's info; version 0 means the latest.
func (c *Client) Version(ctx context.Context, job string, version int64) (VersionInfo, error) {
	p, err := versionPath(job, version)
	if err != nil {
		return VersionInfo{}, err
	}
	var vi VersionInfo
	_, err = c.do(ctx, http.MethodGet, p, "", nil, &vi)
	return vi, err
}

// Manifest fetches and decodes one version's manifest; version 0 means the
// latest.
func (c *Client) Manifest(ctx context.Context, job string, version int64) (*manifest.Manifest, error) {
	data, v, err := c.ManifestBytes(ctx, job, version)
	if err != nil {
		return nil, err
	}
	m, err := manifest.Unmarshal(data)
	if err != nil {
		return nil, fmt.Errorf("manager %s: manifest of job %s version %d: %w", c.addr, job, v, err)
	}
	return m, nil
}

// ManifestBytes fetches one version's manifest as the manager stores it
// (an Arrow IPC stream, not decoded: a writer forwards it to the other I/O
// leaders as it is) and the version number it resolved; version 0 means
// the latest. The bytes are at most manifest.MaxStreamBytes.
func (c *Client) ManifestBytes(ctx context.Context, job string, version int64) ([]byte, int64, error) {
	p, err := versionPath(job, version)
	if err != nil {
		return nil, 0, err
	}
	resp, err := c.do(ctx, http.MethodGet, p+"/manifest", "", nil, nil)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	v, err := strconv.ParseInt(resp.Header.Get(HeaderVersion), 10, 64)
	if err != nil || v <= 0 {
		return nil, 0, fmt.Errorf("manager %s: manifest of job %s: the answer has no version number (%s %q)", c.addr, job, HeaderVersion, resp.Header.Get(HeaderVersion))
	}
	var buf bytes.Buffer
	if resp.ContentLength > 0 && resp.ContentLength <= manifest.MaxStreamBytes {
		buf.Grow(int(resp.ContentLength) + bytes.MinRead) // ReadFrom wants room to see EOF
	}
	if _, err := buf.ReadFrom(io.LimitReader(resp.Body, manifest.MaxStreamBytes+1)); err != nil {
		return nil, 0, fmt.Errorf("manager %s: manifest of job %s version %d: %w", c.addr, job, v, err)
	}
	if buf.Len() > manifest.MaxStreamBytes {
		return nil, 0, fmt.Errorf("manager %s: manifest of job %s version %d: %w: more than %d bytes", c.addr, job, v, manifest.ErrTooLarge, manifest.MaxStreamBytes)
	}
	return buf.Bytes(), v, nil
}

// Retention returns a job's retention policy (the zero policy when none is
// set).
func (c *Client) Retention(ctx context.Context, job string) (Retention, error) {
	p, err := jobPath(job)
	if err != nil {
		return Retention{}, err
	}
	var r RetentionPolicy
	_, err = c.do(ctx, http.MethodGet, p+"/retention", "", nil, &r)
	return r.Retention, err
}

// SetRetention sets a job's retention policy (the zero policy removes it),
// applies it at once and returns the versions it deleted. The job need not
// have committed yet.
func (c *Client) SetRetention(ctx context.Context, job string, r Retention) ([]int64, error) {
	p, err := jobPath(job)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("manager: retention: %w", err)
	}
	var out RetentionResult
	_, err = c.do(ctx, http.MethodPut, p+"/retention", "application/json", body, &out)
	return out.Deleted, err
}

// PreviewRetention returns the versions SetRetention would delete now with
// policy r, deleting nothing and storing no policy (a dry run).
func (c *Client) PreviewRetention(ctx context.Context, job string, r Retention) ([]int64, error) {
	p, err := jobPath(job)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(RetentionRequest{Retention: r, DryRun: true})
	if err != nil {
		return nil, fmt.Errorf("manager: retention: %w", err)
	}
	var out RetentionResult
	_, err = c.do(ctx, http.MethodPut, p+"/retention", "application/json", body, &out)
	if err == nil && !out.DryRun {
		// A manager from before dry runs refuses the field; never trust
		// an answer that did not say it deleted nothing.
		err = fmt.Errorf("manager %s did not confirm a dry run of the retention policy of %s: it may be older than this ckpt (compare 'ckpt-manager --version')", c.addr, job)
	}
	return out.Deleted, c.olderManager(err, "dry runs of retention policies")
}

// olderManager explains the refusal of a field or body by a manager of an
// older release.
func (c *Client) olderManager(err error, what string) error {
	if err == nil || !errors.Is(err, ErrInvalid) {
		return err
	}
	msg := err.Error()
	if strings.Contains(msg, "unknown field") || strings.Contains(msg, "takes no body") {
		return fmt.Errorf("manager %s does not support %s (it is older than this ckpt; compare 'ckpt-manager --version'): %w", c.addr, what, err)
	}
	return err
}

// DeleteVersion deletes one version (version > 0) of a job and returns
// what it was. A pinned version is refused with ErrPinned.
func (c *Client) DeleteVersion(ctx context.Context, job string, version int64) (VersionInfo, error) {
	if version <= 0 {
		return VersionInfo{}, fmt.Errorf("%w: version %d: deleting takes a positive version number", ErrInvalid, version)
	}
	p, err := versionPath(job, version)
	if err != nil {
		return VersionInfo{}, err
	}
	var vi VersionInfo
	_, err = c.do(ctx, http.MethodDelete, p, "", nil, &vi)
	return vi, err
}

// Pin keeps a version (0 = the latest) from every retention policy and
// from DeleteVersion until Unpin.
func (c *Client) Pin(ctx context.Context, job string, version int64) (VersionInfo, error) {
	return c.pin(ctx, http.MethodPost, job, version)
}

// Unpin undoes Pin.
func (c *Client) Unpin(ctx context.Context, job string, version int64) (VersionInfo, error) {
	return c.pin(ctx, http.MethodDelete, job, version)
}

func (c *Client) pin(ctx context.Context, method, job string, version int64) (VersionInfo, error) {
	p, err := versionPath(job, version)
	if err != nil {
		return VersionInfo{}, err
	}
	var vi VersionInfo
	_, err = c.do(ctx, method, p+"/pin", "", nil, &vi)
	return vi, err
}

// GC runs one garbage collection on the manager and returns its report;
// it may take minutes on large stores (bound it with ctx). ErrGCRunning
// when one is already running.
func (c *Client) GC(ctx context.Context) (GCReport, error) {
	var rep GCReport
	_, err := c.doWith(ctx, c.long, http.MethodPost, "/v1/gc", "", nil, &rep)
	return rep, err
}

// GCDryRun lists every alive store and reports, per store, the blocks a
// garbage collection would ask it to delete and an estimate of their
// bytes; nothing is deleted. ErrGCRunning when a collection is running.
func (c *Client) GCDryRun(ctx context.Context) (GCReport, error) {
	body, err := json.Marshal(GCRequest{DryRun: true})
	if err != nil {
		return GCReport{}, err
	}
	var rep GCReport
	_, err = c.doWith(ctx, c.long, http.MethodPost, "/v1/gc", "application/json", body, &rep)
	if err == nil && !rep.DryRun {
		err = fmt.Errorf("manager %s did not confirm a dry run of garbage collection: it may be older than this ckpt (compare 'ckpt-manager --version')", c.addr)
	}
	return rep, c.olderManager(err, "garbage collection dry runs")
}

// GCStatus says whether a garbage collection is running and returns the
// last one's report.
func (c *Client) GCStatus(ctx context.Context) (GCStatus, error) {
	var st GCStatus
	_, err := c.do(ctx, http.MethodGet, "/v1/gc", "", nil, &st)
	return st, err
}

// Health asks the manager for the state of a job's versions: every
// version when version is 0, else that one. The manager asks the alive
// stores which blocks they hold (no data is read), so it takes a moment on
// large jobs.
func (c *Client) Health(ctx context.Context, job string, version int64) (JobHealth, error) {
	p, err := jobPath(job)
	if err != nil {
		return JobHealth{}, err
	}
	if version < 0 {
		return JobHealth{}, fmt.Errorf("%w: version %d", ErrInvalid, version)
	}
	if version > 0 {
		p += "/versions/" + strconv.FormatInt(version, 10)
	}
	var h JobHealth
	_, err = c.doWith(ctx, c.long, http.MethodGet, p+"/health", "", nil, &h)
	return h, err
}

// Repair asks the manager to run a repair pass now over job (every job
// when job is "") and returns its report. It waits for a pass already
// running to end first; bound it with ctx.
func (c *Client) Repair(ctx context.Context, job string) (RepairReport, error) {
	p := "/v1/repair"
	if job != "" {
		if err := ValidJobName(job); err != nil {
			return RepairReport{}, err
		}
		p += "?" + url.Values{"job": {job}}.Encode()
	}
	var rep RepairReport
	_, err := c.doWith(ctx, c.long, http.MethodPost, p, "", nil, &rep)
	return rep, err
}

// RepairStatus says whether a repair pass is running and returns the last
// one's report.
func (c *Client) RepairStatus(ctx context.Context) (RepairStatus, error) {
	var st RepairStatus
	_, err := c.do(ctx, http.MethodGet, "/v1/repair", "", nil, &st)
	return st, err
}
