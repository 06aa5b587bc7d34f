package llmgateway

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/llmgateway/caddy-llm-gateway/internal/session"
	"github.com/llmgateway/caddy-llm-gateway/ui"
)

// The dashboard is a server-rendered web UI at /ui/, on with `dashboard` in
// the llm_gateway block.
//
// Design: every page is HTML rendered here from html/template sources
// embedded in the binary (package ui), with one small script and one style
// sheet under /ui/assets/; there is no front-end build and nothing is
// loaded from another origin. The dashboard holds no privileged path of its
// own: a page's handler calls the gateway's admin API in process — the
// same route table, authentication and handlers as an HTTP client gets,
// see adminCall — presenting the master key the operator signed in with.
// That key is kept in the server-side session only; the browser holds an
// opaque session cookie (HttpOnly, SameSite=Strict, Secure under TLS) and
// every form carries the session's CSRF token. If the master key changes
// (a config reload), the admin API refuses the old one and the session
// ends.
//
// Sessions live in memory, shared across config reloads by the gateways
// of one store, and are lost on restart. Several instances (database_url)
// do not share them: put the dashboard behind sticky sessions, or sign in
// again when the load balancer moves you.

// DashboardConfig turns on the web dashboard at `/ui/`.
type DashboardConfig struct {
	// How long a session lasts after sign-in, however much it is used.
	// Default: 12h.
	SessionLifetime caddy.Duration `json:"session_lifetime,omitempty"`

	// How long a session lasts without a request. Default: 1h.
	SessionIdle caddy.Duration `json:"session_idle,omitempty"`
}

// validate refuses durations that make no sense.
func (c *DashboardConfig) validate() error {
	if c.SessionLifetime < 0 || c.SessionIdle < 0 {
		return fmt.Errorf("dashboard: session durations must be positive")
	}
	return nil
}

// Cookie and form field names.
const (
	sessionCookie = "llmgw_session"
	csrfField     = "csrf_token"
	// dashboardBodyLimit caps a dashboard form.
	dashboardBodyLimit = 64 << 10
)

// contentSecurityPolicy allows only the dashboard's own script, styles and
// images: no inline script or style, no other origin.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// dashboardSessions holds the session store of each gateway store
// (keyed like states), so a config reload keeps everyone signed in.
var dashboardSessions = caddy.NewUsagePool()

// sessionStore is a pooled session store.
type sessionStore struct{ *session.Store }

func (sessionStore) Destruct() error { return nil }

// dashboard serves /ui/ for one gateway.
type dashboard struct {
	g        *Gateway
	sessions *session.Store
	mux      *http.ServeMux
	pages    map[string]*template.Template
}

// provisionDashboard sets up the dashboard if the config turns it on.
func (g *Gateway) provisionDashboard() error {
	if g.Dashboard == nil {
		return nil
	}
	if err := g.Dashboard.validate(); err != nil {
		return err
	}
	pages, err := dashboardTemplates()
	if err != nil {
		return err
	}
	val, _, err := dashboardSessions.LoadOrNew(g.stateKey(), func() (caddy.Destructor, error) {
		return sessionStore{session.NewStore()}, nil
	})
	if err != nil {
		return fmt.Errorf("dashboard sessions: %w", err)
	}
	store := val.(sessionStore).Store
	store.SetLimits(time.Duration(g.Dashboard.SessionLifetime), time.Duration(g.Dashboard.SessionIdle), 0)
	d := &dashboard{g: g, sessions: store, pages: pages, mux: http.NewServeMux()}
	d.routes()
	g.ui = d
	return nil
}

// cleanupDashboard releases what provisionDashboard acquired.
func (g *Gateway) cleanupDashboard() {
	if g.ui != nil {
		_, _ = dashboardSessions.Delete(g.stateKey())
		g.ui = nil
	}
}

// isDashboardPath reports whether path is the dashboard's.
func isDashboardPath(p string) bool {
	return p == "/ui" || strings.HasPrefix(p, "/ui/")
}

// serveDashboard answers a request under /ui.
func (g *Gateway) serveDashboard(w http.ResponseWriter, r *http.Request) error {
	setSecurityHeaders(w.Header(), true)
	w.Header().Set("Content-Security-Policy", contentSecurityPolicy)
	w.Header().Set("Cross-Origin-Opener-Policy", "same-origin")
	w.Header().Add("Vary", "Cookie")
	if !g.waitReady(r) {
		return nil
	}
	if g.state == nil || !g.state.work.acquire() {
		g.ui.message(w, r, nil, http.StatusServiceUnavailable, "Unavailable",
			"The gateway's store is unavailable. Try again in a moment.", "/ui/", "Retry")
		return nil
	}
	defer g.state.work.release()
	g.ui.serve(w, r)
	return nil
}

func (d *dashboard) serve(w http.ResponseWriter, r *http.Request) {
	if _, pattern := d.mux.Handler(r); pattern == "" {
		d.message(w, r, d.currentSession(r), http.StatusNotFound, "Not found",
			"There is no such page.", "/ui/", "Go to the overview")
		return
	}
	d.mux.ServeHTTP(w, r)
}

// authed wraps a handler that needs a signed-in session; writes (POST)
// also need the session's CSRF token and a same-origin request.
func (d *dashboard) authed(h func(http.ResponseWriter, *http.Request, *session.Session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s := d.currentSession(r)
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if !sameOrigin(r) {
				d.message(w, r, s, http.StatusForbidden, "Refused",
					"This request came from another site, so it was refused.", "/ui/", "Go to the overview")
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, dashboardBodyLimit)
			if err := r.ParseForm(); err != nil {
				d.message(w, r, s, http.StatusRequestEntityTooLarge, "Refused", "The form could not be read.", "/ui/", "Go to the overview")
				return
			}
			if s == nil {
				d.message(w, r, nil, http.StatusUnauthorized, "Signed out",
					"Your session has ended, so nothing was changed. Sign in again.", "/ui/login", "Sign in")
				return
			}
			if !s.CheckCSRF(r.PostForm.Get(csrfField)) {
				d.message(w, r, s, http.StatusForbidden, "Refused",
					"This form is missing its security token (or it belongs to another session), so nothing was changed. Reload the page and try again.",
					r.URL.Path, "Reload")
				return
			}
		} else if s == nil {
			http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
			return
		}
		h(w, r, s)
	}
}

// currentSession is the request's live session, or nil.
func (d *dashboard) currentSession(r *http.Request) *session.Session {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	s, ok := d.sessions.Get(c.Value)
	if !ok {
		return nil
	}
	return s
}

// sameOrigin reports whether a write comes from the dashboard's own pages:
// the browser's Sec-Fetch-Site or Origin says so. A client that sends
// neither (not a browser) is let through to the CSRF check.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site == "same-origin" || site == "none"
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	return err == nil && u.Host == r.Host
}

// setSessionCookie gives the browser s's cookie, or removes it (s nil).
func setSessionCookie(w http.ResponseWriter, r *http.Request, s *session.Session, lifetime time.Duration) {
	c := &http.Cookie{
		Name:     sessionCookie,
		Path:     "/ui",
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteStrictMode,
	}
	if s != nil {
		c.Value = s.ID
		c.MaxAge = int(lifetime / time.Second)
	} else {
		c.MaxAge = -1
	}
	http.SetCookie(w, c)
}

// page is what every template gets.
type page struct {
	Title   string
	Nav     string // the current section, for the navigation
	Signed  bool
	CSRF    string
	Flashes []session.Flash
	Data    any
}

// render writes a page with the session's queued messages.
func (d *dashboard) render(w http.ResponseWriter, r *http.Request, s *session.Session, status int, name, title, nav string, data any) {
	p := page{Title: title, Nav: nav, Data: data}
	if s != nil {
		p.Signed, p.CSRF, p.Flashes = true, s.CSRF, s.TakeFlashes()
	}
	d.renderPage(w, status, name, p)
}

// renderPage writes the template name with p. A template that fails is a
// bug: it is logged, and the browser gets a short HTML page saying so.
func (d *dashboard) renderPage(w http.ResponseWriter, status int, name string, p page) {
	var buf bytes.Buffer
	t := d.pages[name]
	err := errors.New("no such template")
	if t != nil {
		err = t.ExecuteTemplate(&buf, "layout", p)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err != nil {
		d.g.logger.Error("dashboard: rendering a page", zap.String("template", name), zap.Error(err))
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(renderFailedPage))
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// renderFailedPage is the answer when a page cannot be rendered.
const renderFailedPage = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Error · LLM gateway</title></head>` +
	`<body><h1>This page could not be shown</h1><p>The gateway's log says why. <a href="/ui/">Go to the overview</a>.</p></body></html>`

// messageData is the message page's content.
type messageData struct{ Text, Href, Link string }

// message answers with a page that says one thing and links on.
func (d *dashboard) message(w http.ResponseWriter, r *http.Request, s *session.Session, status int, title, text, href, link string) {
	d.render(w, r, s, status, "message", title, "", messageData{Text: text, Href: href, Link: link})
}

// confirmData is the confirmation page's content: a form that posts the
// destructive action once the operator presses its button.
type confirmData struct {
	Question, Detail, Action, Button, Cancel string
	Fields                                   map[string]string
}

// redirect ends a write with a redirect to a page (post, redirect, get),
// queueing a notice for it.
func redirect(w http.ResponseWriter, r *http.Request, s *session.Session, to, notice string) {
	if notice != "" {
		s.AddFlash(session.Flash{Kind: "notice", Text: notice})
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// failed ends a write the admin API refused: its message is shown on the
// page the operator came from. A refused credential ends the session.
func (d *dashboard) failed(w http.ResponseWriter, r *http.Request, s *session.Session, back string, err error) {
	if d.signedOut(w, r, s, err) {
		return
	}
	s.AddFlash(session.Flash{Kind: "error", Text: errorText(err)})
	http.Redirect(w, r, back, http.StatusSeeOther)
}

// showFailure answers a page whose admin API read failed.
func (d *dashboard) showFailure(w http.ResponseWriter, r *http.Request, s *session.Session, title string, err error) {
	if d.signedOut(w, r, s, err) {
		return
	}
	status := http.StatusBadGateway
	var ae *apiError
	if errors.As(err, &ae) {
		status = ae.Status
	}
	d.message(w, r, s, status, title, errorText(err), "/ui/", "Go to the overview")
}

// signedOut ends the session when the admin API no longer takes its
// credential (the master key changed), and sends the browser to sign in.
func (d *dashboard) signedOut(w http.ResponseWriter, r *http.Request, s *session.Session, err error) bool {
	var ae *apiError
	if !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized {
		return false
	}
	d.sessions.Delete(s.ID)
	setSessionCookie(w, r, nil, 0)
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
	return true
}

// errorText is what an operator reads about a failed call.
func errorText(err error) string {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.Message
	}
	return "The gateway could not answer: " + err.Error()
}

var (
	templatesOnce sync.Once
	templatesSet  map[string]*template.Template
	templatesErr  error
)

// dashboardTemplates parses the embedded templates once: each page with
// the layout and the shared partials.
func dashboardTemplates() (map[string]*template.Template, error) {
	templatesOnce.Do(func() {
		names, err := fs.Glob(ui.Files, "templates/*.html")
		if err != nil {
			templatesErr = err
			return
		}
		templatesSet = make(map[string]*template.Template)
		for _, file := range names {
			name := strings.TrimSuffix(path.Base(file), ".html")
			if name == "layout" || name == "partials" {
				continue
			}
			t, err := template.New(name).Funcs(templateFuncs).ParseFS(ui.Files,
				"templates/layout.html", "templates/partials.html", file)
			if err != nil {
				templatesErr = fmt.Errorf("dashboard template %s: %w", name, err)
				return
			}
			templatesSet[name] = t
		}
	})
	return templatesSet, templatesErr
}
