package manager

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/ckptio/ckptio/storage/catalog"
)

// The web dashboard (docs/dashboard.md) is served under /ui/ beside the
// API. The API's requests are signed with the token; a browser cannot sign,
// so the dashboard has its own login: the operator pastes the cluster token
// into a form (never a URL), and gets a session cookie that is not the
// token but an expiry and its HMAC under a key derived from the token. The
// pages are static, embedded files; their script reads GET /ui/api/state,
// a read-only view built from the manager's own methods.

//go:embed ui
var uiFiles embed.FS

const (
	// SessionCookie names the dashboard's session cookie.
	SessionCookie = "ckpt_session"
	// SessionTTL is how long a dashboard login lasts.
	SessionTTL = 12 * time.Hour
	// uiVersionsPerJob bounds the versions the state lists per job (the
	// newest ones).
	uiVersionsPerJob = 20
	// maxLoginBody bounds the login form.
	maxLoginBody = 16 << 10
	// sessionFormat starts every session value; a change of format makes
	// older cookies invalid rather than misread.
	sessionFormat = "v1"
)

// contentSecurityPolicy allows the dashboard's own files only: no inline
// script or style, no other origin, no framing.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// dashboard serves /ui/. Its methods are safe for concurrent use.
type dashboard struct {
	m     *Manager
	key   []byte // signs session cookies: HMAC-SHA256(token, label)
	token [sha256.Size]byte
	login *template.Template
	// throttle slows down guessing the token (throttle.go).
	throttle loginThrottle
}

// sessionKey derives the key session cookies are signed with from the
// cluster token, so that the cookie reveals nothing of the token and
// changing the token ends every session.
func sessionKey(token []byte) []byte {
	mac := hmac.New(sha256.New, token)
	mac.Write([]byte("ckptio dashboard session key"))
	return mac.Sum(nil)
}

// mountDashboard registers the dashboard's routes on mux.
func (m *Manager) mountDashboard(mux *http.ServeMux) {
	d := &dashboard{m: m, key: sessionKey(m.opts.Token), token: sha256.Sum256(m.opts.Token),
		login: template.Must(template.ParseFS(uiFiles, "ui/login.html"))}
	static, err := fs.Sub(uiFiles, "ui/static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	// POSTs from another origin (a page that auto-submits a login or a
	// logout form) are refused before any handler runs.
	cop := http.NewCrossOriginProtection()
	handle := func(pattern string, h http.HandlerFunc) {
		mux.Handle(pattern, m.observed(pattern, secureHeaders(cop.Handler(h)).ServeHTTP))
	}
	// A browser pointed at the manager's address lands on the dashboard.
	handle("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ui/", http.StatusFound)
	})
	handle("GET /ui", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ui/", http.StatusMovedPermanently)
	})
	handle("GET /ui/{$}", d.serveIndex)
	handle("GET /ui/login", d.serveLoginPage)
	handle("POST /ui/login", d.serveLogin)
	handle("POST /ui/logout", d.serveLogout)
	handle("GET /ui/api/state", d.serveState)
	handle("GET /ui/static/", http.StripPrefix("/ui/static/", http.FileServerFS(static)).ServeHTTP)
	handle("/ui/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, fmt.Sprintf("no such dashboard page: %s %s (the dashboard is at /ui/)", r.Method, r.URL.Path), http.StatusNotFound)
	})
}

// secureHeaders sets the headers every dashboard response carries.
func secureHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", contentSecurityPolicy)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}

// newSession returns a session value valid until expires.
func (d *dashboard) newSession(expires time.Time) string {
	payload := sessionFormat + "." + strconv.FormatInt(expires.Unix(), 10)
	return payload + "." + base64.RawURLEncoding.EncodeToString(d.mac(payload))
}

func (d *dashboard) mac(payload string) []byte {
	mac := hmac.New(sha256.New, d.key)
	mac.Write([]byte(payload))
	return mac.Sum(nil)
}

// errSession is why a request has no valid session.
var errSession = errors.New("manager: not logged in to the dashboard")

// checkSession reports whether r carries a session cookie this manager
// signed that has not expired at now. The signature is compared in
// constant time.
func (d *dashboard) checkSession(r *http.Request, now time.Time) error {
	c, err := r.Cookie(SessionCookie)
	if err != nil {
		return fmt.Errorf("%w: no session cookie; log in at /ui/login with the cluster token", errSession)
	}
	format, rest, ok1 := strings.Cut(c.Value, ".")
	exp, sig, ok2 := strings.Cut(rest, ".")
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if !ok1 || !ok2 || format != sessionFormat || err != nil || !hmac.Equal(got, d.mac(format+"."+exp)) {
		return fmt.Errorf("%w: the session cookie was not issued by this manager (or the cluster token changed); log in again", errSession)
	}
	unix, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || !now.Before(time.Unix(unix, 0)) {
		return fmt.Errorf("%w: the session expired; log in again", errSession)
	}
	return nil
}

// tokenMatches compares a pasted token with the cluster token in constant
// time (both are hashed first, so their lengths do not show either).
func (d *dashboard) tokenMatches(pasted string) bool {
	h := sha256.Sum256([]byte(strings.TrimSpace(pasted)))
	return subtle.ConstantTimeCompare(h[:], d.token[:]) == 1
}

func (d *dashboard) serveIndex(w http.ResponseWriter, r *http.Request) {
	if d.checkSession(r, d.m.now()) != nil {
		http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
		return
	}
	http.ServeFileFS(w, r, uiFiles, "ui/index.html")
}

// loginPage is what the login template shows.
type loginPage struct {
	Error string
}

func (d *dashboard) renderLogin(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = d.login.Execute(w, loginPage{Error: msg}) // the browser went away
}

// errTokenInURL is shown when a token arrives in a query string: URLs end
// up in logs, proxies and the browser's history.
const errTokenInURL = "The dashboard never takes the token from the URL (URLs end up in logs and browser history). Paste it into the form instead."

func (d *dashboard) serveLoginPage(w http.ResponseWriter, r *http.Request) {
	if r.URL.RawQuery != "" {
		d.renderLogin(w, http.StatusBadRequest, errTokenInURL)
		return
	}
	d.renderLogin(w, http.StatusOK, "")
}

func (d *dashboard) serveLogin(w http.ResponseWriter, r *http.Request) {
	if r.URL.RawQuery != "" {
		d.renderLogin(w, http.StatusBadRequest, errTokenInURL)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxLoginBody)
	if err := r.ParseForm(); err != nil {
		d.renderLogin(w, http.StatusBadRequest, "The login form could not be read: "+err.Error())
		return
	}
	pasted := r.PostForm.Get("token") // the body only, never the URL
	host := clientHost(r.RemoteAddr)
	if wait := d.throttle.wait(host, d.m.now()); wait > 0 {
		// Refused without looking at the token, so guessing stays slow.
		secs := int((wait + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		d.renderLogin(w, http.StatusTooManyRequests, fmt.Sprintf("Too many wrong tokens from %s: try again in %d s.", host, secs))
		return
	}
	if strings.TrimSpace(pasted) == "" {
		d.renderLogin(w, http.StatusBadRequest, "Paste the cluster token: the contents of the manager's --token-file (or its CKPT_TOKEN).")
		return
	}
	if !d.tokenMatches(pasted) {
		d.throttle.failed(host, d.m.now())
		d.m.log.Warn("dashboard login refused: wrong token", zap.String("remote", r.RemoteAddr))
		d.renderLogin(w, http.StatusUnauthorized, "Wrong token: it is not this cluster's token. Paste the contents of the manager's --token-file (or its CKPT_TOKEN).")
		return
	}
	d.throttle.succeeded(host)
	expires := d.m.now().Add(SessionTTL)
	http.SetCookie(w, &http.Cookie{
		Name:     SessionCookie,
		Value:    d.newSession(expires),
		Path:     "/ui/",
		Expires:  expires,
		MaxAge:   int(SessionTTL / time.Second),
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteStrictMode,
	})
	d.m.log.Info("dashboard login", zap.String("remote", r.RemoteAddr))
	http.Redirect(w, r, "/ui/", http.StatusSeeOther)
}

func (d *dashboard) serveLogout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/ui/", MaxAge: -1,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}

// DashboardState is the body of GET /ui/api/state: the catalog as the
// dashboard shows it.
type DashboardState struct {
	Now    time.Time            `json:"now"` // the manager's clock when the state was read
	Stores []catalog.StoreInfo  `json:"stores"`
	Jobs   []DashboardJob       `json:"jobs"`
	Txns   []catalog.Txn        `json:"txns"` // in flight, oldest first
	GC     catalog.GCStatus     `json:"gc"`
	Repair catalog.RepairStatus `json:"repair"`
}

// DashboardJob is a job with its newest versions.
type DashboardJob struct {
	catalog.JobInfo
	// Recent holds the newest versions (at most 20), newest first.
	// Each is the ckptio.version/1 document (docs/json.md): a numeric step
	// is its "step" field, any other in "meta".
	Recent []catalog.VersionInfo `json:"recent"`
}

// DashboardState reads what the dashboard shows.
func (m *Manager) DashboardState() (DashboardState, error) {
	st := DashboardState{Now: m.now(), Stores: m.Stores(), GC: m.GCStatus(), Repair: m.RepairStatus()}
	jobs, err := m.Jobs()
	if err != nil {
		return DashboardState{}, err
	}
	st.Jobs = make([]DashboardJob, 0, len(jobs))
	for _, j := range jobs {
		dj := DashboardJob{JobInfo: j, Recent: []catalog.VersionInfo{}}
		if j.Versions > 0 {
			vs, err := m.Versions(j.Name)
			switch {
			case errors.Is(err, catalog.ErrUnknownJob):
				continue // deleted since Jobs read it
			case err != nil:
				return DashboardState{}, err
			}
			for _, v := range slices.Backward(vs) {
				if len(dj.Recent) == uiVersionsPerJob {
					break
				}
				dj.Recent = append(dj.Recent, v)
			}
		}
		st.Jobs = append(st.Jobs, dj)
	}
	if st.Txns, err = m.Txns(); err != nil {
		return DashboardState{}, err
	}
	return st, nil
}

func (d *dashboard) serveState(w http.ResponseWriter, r *http.Request) {
	if err := d.checkSession(r, d.m.now()); err != nil {
		writeJSON(w, http.StatusUnauthorized, catalog.ErrorBody{Error: err.Error(), Code: catalog.CodeUnauthorized})
		return
	}
	d.m.mu.Lock()
	closed := d.m.mu.closed
	d.m.mu.Unlock()
	if closed {
		writeJSON(w, http.StatusServiceUnavailable, catalog.ErrorBody{Error: "the manager is shutting down", Code: catalog.CodeClosed})
		return
	}
	st, err := d.m.DashboardState()
	if err != nil {
		status, code := classify(err)
		d.m.log.Error("dashboard state", zap.Error(err))
		writeJSON(w, status, catalog.ErrorBody{Error: err.Error(), Code: code})
		return
	}
	writeJSON(w, http.StatusOK, st)
}
