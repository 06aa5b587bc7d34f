package llmgateway

import (
	"errors"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/internal/chart"
	"github.com/llmgateway/caddy-llm-gateway/internal/session"
	"github.com/llmgateway/caddy-llm-gateway/storage"
	"github.com/llmgateway/caddy-llm-gateway/ui"
)

// routes registers the dashboard's pages. Reads are GET; every write is a
// POST of a form carrying the CSRF token, answered with a redirect.
func (d *dashboard) routes() {
	m := d.mux
	m.HandleFunc("GET /ui", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ui/", http.StatusMovedPermanently)
	})
	m.HandleFunc("GET /ui/assets/{file}", d.asset)
	m.HandleFunc("GET /ui/login", d.signInPage)
	m.HandleFunc("POST /ui/login", d.signIn)
	m.HandleFunc("POST /ui/logout", d.authed(d.signOut))

	m.HandleFunc("GET /ui/{$}", d.authed(d.overview))

	m.HandleFunc("GET /ui/keys", d.authed(d.keysPage))
	m.HandleFunc("POST /ui/keys", d.authed(d.createKey))
	m.HandleFunc("GET /ui/keys/{id}", d.authed(d.keyPage))
	m.HandleFunc("GET /ui/keys/{id}/delete", d.authed(d.confirmDeleteKey))
	m.HandleFunc("POST /ui/keys/{id}/{action}", d.authed(d.keyAction))

	d.moreRoutes()
}

// asset serves a file of ui/assets.
func (d *dashboard) asset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	data, err := fs.ReadFile(ui.Files, "assets/"+name)
	if err != nil {
		d.message(w, r, nil, http.StatusNotFound, "Not found", "There is no such file.", "/ui/", "Go to the overview")
		return
	}
	types := map[string]string{
		".css": "text/css; charset=utf-8",
		".js":  "text/javascript; charset=utf-8",
		".svg": "image/svg+xml",
	}
	w.Header().Set("Content-Type", types[path.Ext(name)])
	w.Header().Set("Cache-Control", "private, max-age=300")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	_, _ = w.Write(data)
}

// signInPage shows the sign-in form, or goes to the overview when signed in.
func (d *dashboard) signInPage(w http.ResponseWriter, r *http.Request) {
	if s := d.currentSession(r); s != nil {
		http.Redirect(w, r, "/ui/", http.StatusSeeOther)
		return
	}
	d.render(w, r, nil, http.StatusOK, "login", "Sign in", "", nil)
}

// signIn checks the key against the admin API itself (a master-key read)
// and opens a session for it.
func (d *dashboard) signIn(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		d.message(w, r, nil, http.StatusForbidden, "Refused", "This request came from another site, so it was refused.", "/ui/login", "Sign in")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, dashboardBodyLimit)
	if err := r.ParseForm(); err != nil {
		d.message(w, r, nil, http.StatusRequestEntityTooLarge, "Refused", "The form could not be read.", "/ui/login", "Sign in")
		return
	}
	key := r.PostForm.Get("master_key")
	if key == "" {
		d.renderSignIn(w, r, http.StatusOK, "Enter the master key.")
		return
	}
	err := d.apiAs(r.Context(), key, http.MethodGet, "/v1/budgets?limit=1", nil, nil)
	var ae *apiError
	switch {
	case errors.As(err, &ae) && ae.Status == http.StatusServiceUnavailable:
		d.renderSignIn(w, r, ae.Status, ae.Message)
		return
	case errors.As(err, &ae) && (ae.Status == http.StatusUnauthorized || ae.Status == http.StatusBadRequest):
		// 200, not 401: the form is shown again, and the browser's
		// console stays free of a failed-resource error.
		d.renderSignIn(w, r, http.StatusOK, "That is not this gateway's master key.")
		return
	case err != nil:
		d.renderSignIn(w, r, http.StatusBadGateway, errorText(err))
		return
	}
	s, err := d.sessions.Create(key)
	if err != nil {
		d.renderSignIn(w, r, http.StatusServiceUnavailable, err.Error())
		return
	}
	d.setCookie(w, r, s)
	http.Redirect(w, r, "/ui/", http.StatusSeeOther)
}

// renderSignIn shows the sign-in form with an error.
func (d *dashboard) renderSignIn(w http.ResponseWriter, r *http.Request, status int, text string) {
	p := page{Title: "Sign in", Flashes: []session.Flash{{Kind: "error", Text: text}}}
	d.renderPage(w, status, "login", p)
}

func (d *dashboard) setCookie(w http.ResponseWriter, r *http.Request, s *session.Session) {
	lifetime := time.Duration(d.g.Dashboard.SessionLifetime)
	if lifetime <= 0 {
		lifetime = session.DefaultLifetime
	}
	setSessionCookie(w, r, s, lifetime)
}

// signOut ends the session on the server and removes the cookie.
func (d *dashboard) signOut(w http.ResponseWriter, r *http.Request, s *session.Session) {
	d.sessions.Delete(s.ID)
	setSessionCookie(w, r, nil, 0)
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}

// summaryRow is one row of GET /v1/usage/summary.
type summaryRow struct {
	Bucket           time.Time     `json:"bucket"`
	Group            *string       `json:"group"`
	Requests         int64         `json:"requests"`
	Errors           int64         `json:"errors"`
	PromptTokens     int64         `json:"prompt_tokens"`
	CompletionTokens int64         `json:"completion_tokens"`
	TotalTokens      int64         `json:"total_tokens"`
	Cost             storage.Money `json:"cost"`
}

// chartView is a laid-out chart with what its template needs besides.
type chartView struct {
	chart.Chart
	ID     string
	Bucket string // "hour" or "day"
	Errors bool   // drawn in the error colour
}

// topRow is one line of a top list.
type topRow struct {
	Name, Href               string
	Requests, Tokens, Spend  string
	requests, tokens, errors int64
	cost                     storage.Money
}

type overviewData struct {
	Range       chart.Range
	Ranges      []chart.Range
	Unavailable string
	Empty       bool
	Totals      struct{ Spend, Requests, Tokens, ErrorRate string }
	Charts      []chartView
	TopModels   []topRow
	TopUsers    []topRow
	TopKeys     []topRow
}

// topCount is how many rows a top list shows.
const topCount = 5

// overview shows spend, requests, tokens and the error rate over a period,
// from the usage summary, with the top models, users and keys.
func (d *dashboard) overview(w http.ResponseWriter, r *http.Request, s *session.Session) {
	rng := chart.FindRange(r.URL.Query().Get("range"))
	data := overviewData{Range: rng, Ranges: chart.Ranges}
	timeline := rng.Timeline(d.g.now())
	q := url.Values{}
	q.Set("interval", rng.Interval)
	q.Set("start_date", timeline[0].Format(time.RFC3339))

	var rows []summaryRow
	if err := d.api(r, s, http.MethodGet, apiPath("/v1/usage/summary", q), nil, &rows); err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
			data.Unavailable = "This gateway does not serve GET /v1/usage/summary, which the overview is drawn from. The usage log still lists every request."
			d.render(w, r, s, http.StatusOK, "overview", "Overview", "overview", data)
			return
		}
		d.showFailure(w, r, s, "Overview", err)
		return
	}
	byBucket := make(map[int64]summaryRow, len(rows))
	var total summaryRow
	for _, row := range rows {
		b := byBucket[row.Bucket.Unix()]
		addSummary(&b, row)
		byBucket[row.Bucket.Unix()] = b
		addSummary(&total, row)
	}
	series := func(value func(summaryRow) float64) []chart.Point {
		pts := make([]chart.Point, len(timeline))
		for i, t := range timeline {
			pts[i] = chart.Point{Time: t, Value: value(byBucket[t.Unix()])}
		}
		return pts
	}
	label := rng.BucketLabel
	view := func(id string, c chart.Chart, errs bool) chartView {
		return chartView{Chart: c, ID: id, Bucket: rng.Interval, Errors: errs}
	}
	spend := chart.Bars("Spend", "USD", series(func(b summaryRow) float64 { return b.Cost.Dollars() }), chart.USD, label)
	spend.Total = chart.USD(total.Cost.Dollars())
	reqs := chart.Bars("Requests", "requests", series(func(b summaryRow) float64 { return float64(b.Requests) }), chart.Count, label)
	reqs.Total = chart.Count(float64(total.Requests))
	toks := chart.Bars("Tokens", "tokens", series(func(b summaryRow) float64 { return float64(b.TotalTokens) }), chart.Count, label)
	toks.Total = chart.Count(float64(total.TotalTokens))
	errRate := chart.Bars("Error rate", "% of requests", series(func(b summaryRow) float64 { return errorRate(b) }), chart.Percent, label)
	errRate.Total = chart.Percent(errorRate(total))
	errRate.Empty = total.Requests == 0 // 0% of some requests is data
	data.Charts = []chartView{view("spend", spend, false), view("requests", reqs, false), view("tokens", toks, false), view("errors", errRate, true)}
	data.Totals.Spend = chart.USD(total.Cost.Dollars())
	data.Totals.Requests = chart.Count(float64(total.Requests))
	data.Totals.Tokens = chart.Count(float64(total.TotalTokens))
	data.Totals.ErrorRate = chart.Percent(errorRate(total))
	data.Empty = total.Requests == 0

	var err error
	if !data.Empty {
		if data.TopModels, err = d.top(r, s, q, "model", nil); err == nil {
			data.TopUsers, err = d.top(r, s, q, "user_id", func(id string) string { return "/ui/users/" + url.PathEscape(id) })
		}
		if err == nil {
			data.TopKeys, err = d.top(r, s, q, "api_key_id", func(id string) string { return "/ui/keys/" + url.PathEscape(id) })
		}
		if err == nil {
			d.nameKeys(r, s, data.TopKeys)
		}
	}
	if err != nil {
		d.showFailure(w, r, s, "Overview", err)
		return
	}
	d.render(w, r, s, http.StatusOK, "overview", "Overview", "overview", data)
}

func addSummary(dst *summaryRow, row summaryRow) {
	dst.Requests += row.Requests
	dst.Errors += row.Errors
	dst.PromptTokens += row.PromptTokens
	dst.CompletionTokens += row.CompletionTokens
	dst.TotalTokens += row.TotalTokens
	dst.Cost += row.Cost
}

func errorRate(b summaryRow) float64 {
	if b.Requests == 0 {
		return 0
	}
	return float64(b.Errors) / float64(b.Requests) * 100
}

// top sums the period's summary by group and keeps the biggest spenders
// (then the busiest).
func (d *dashboard) top(r *http.Request, s *session.Session, q url.Values, groupBy string, href func(string) string) ([]topRow, error) {
	gq := url.Values{}
	for k, v := range q {
		gq[k] = v
	}
	gq.Set("group_by", groupBy)
	var rows []summaryRow
	if err := d.api(r, s, http.MethodGet, apiPath("/v1/usage/summary", gq), nil, &rows); err != nil {
		return nil, err
	}
	sums := map[string]*topRow{}
	var order []*topRow
	for _, row := range rows {
		if row.Group == nil || *row.Group == "" {
			continue
		}
		t := sums[*row.Group]
		if t == nil {
			t = &topRow{Name: *row.Group}
			if href != nil {
				t.Href = href(*row.Group)
			}
			sums[*row.Group] = t
			order = append(order, t)
		}
		t.requests += row.Requests
		t.tokens += row.TotalTokens
		t.errors += row.Errors
		t.cost += row.Cost
	}
	slices.SortStableFunc(order, func(a, b *topRow) int {
		switch {
		case a.cost != b.cost:
			return compareDesc(int64(a.cost), int64(b.cost))
		case a.requests != b.requests:
			return compareDesc(a.requests, b.requests)
		}
		return 0
	})
	out := make([]topRow, 0, min(len(order), topCount))
	for _, t := range order[:min(len(order), topCount)] {
		t.Requests = chart.Count(float64(t.requests))
		t.Tokens = chart.Count(float64(t.tokens))
		t.Spend = t.cost.String()
		out = append(out, *t)
	}
	return out, nil
}

func compareDesc(a, b int64) int {
	switch {
	case a > b:
		return -1
	case a < b:
		return 1
	}
	return 0
}

// nameKeys shows each top key by its name, where it has one.
func (d *dashboard) nameKeys(r *http.Request, s *session.Session, rows []topRow) {
	for i := range rows {
		var k keyResponse
		if d.api(r, s, http.MethodGet, "/v1/keys/"+url.PathEscape(rows[i].Name), nil, &k) != nil {
			continue // deleted since: the id is all there is
		}
		name := "unnamed"
		if k.KeyName != nil && *k.KeyName != "" {
			name = *k.KeyName
		}
		rows[i].Name = name + " (" + k.KeyPrefix + "…)"
	}
}

// keysData is the keys page's content.
type keysData struct {
	Keys  []keyResponse
	Pager pager
}

func (d *dashboard) keysPage(w http.ResponseWriter, r *http.Request, s *session.Session) {
	skip, q := pageQuery(r)
	var keys []keyResponse
	if err := d.api(r, s, http.MethodGet, apiPath("/v1/keys", q), nil, &keys); err != nil {
		d.showFailure(w, r, s, "Keys", err)
		return
	}
	var data keysData
	data.Keys, data.Pager = pageOf(keys, skip, "/ui/keys", nil)
	d.render(w, r, s, http.StatusOK, "keys", "Keys", "keys", data)
}

// keyForm reads the key form's fields shared by create and edit.
func keyForm(r *http.Request) *formFields {
	f := newFormFields(r.PostForm)
	f.text("key_name", "key_name")
	f.datetime("expires_at", "expires_at", "Expires")
	f.models("allowed_models", "allowed_models")
	f.money("max_budget", "max_budget", "Budget (USD)")
	f.durationSec("budget_duration", "budget_duration_sec", "Budget period")
	f.count("rpm_limit", "rpm_limit", "Requests / minute")
	f.count("tpm_limit", "tpm_limit", "Tokens / minute")
	return f
}

// createKey creates a key and shows its secret once, on the next page.
func (d *dashboard) createKey(w http.ResponseWriter, r *http.Request, s *session.Session) {
	f := keyForm(r)
	f.text("user_id", "user_id")
	if f.err != nil {
		d.failed(w, r, s, "/ui/keys", f.err)
		return
	}
	var created createdKeyResponse
	if err := d.api(r, s, http.MethodPost, "/v1/keys", f.body, &created); err != nil {
		d.failed(w, r, s, "/ui/keys", err)
		return
	}
	s.AddFlash(secretFlash("Key created for user "+created.UserID+".", created.Key))
	http.Redirect(w, r, "/ui/keys", http.StatusSeeOther)
}

func secretFlash(text, secret string) session.Flash {
	return session.Flash{Kind: "secret", Text: text, Value: secret}
}

// keyData is one key's page.
type keyData struct {
	Key   keyResponse
	Usage usageTable
}

func (d *dashboard) keyPage(w http.ResponseWriter, r *http.Request, s *session.Session) {
	id := r.PathValue("id")
	var data keyData
	if err := d.api(r, s, http.MethodGet, "/v1/keys/"+url.PathEscape(id), nil, &data.Key); err != nil {
		d.showFailure(w, r, s, "Key", err)
		return
	}
	q := url.Values{"api_key_id": {id}, "limit": {"10"}}
	var recs []usageResponse
	if err := d.api(r, s, http.MethodGet, apiPath("/v1/usage", q), nil, &recs); err != nil {
		d.showFailure(w, r, s, "Key", err)
		return
	}
	data.Usage = usageTable{Records: recs, Empty: "This key has not been used yet."}
	title := "Key " + data.Key.KeyPrefix + "…"
	if data.Key.KeyName != nil && *data.Key.KeyName != "" {
		title = "Key " + *data.Key.KeyName
	}
	d.render(w, r, s, http.StatusOK, "key", title, "keys", data)
}

func (d *dashboard) confirmDeleteKey(w http.ResponseWriter, r *http.Request, s *session.Session) {
	id := r.PathValue("id")
	var k keyResponse
	if err := d.api(r, s, http.MethodGet, "/v1/keys/"+url.PathEscape(id), nil, &k); err != nil {
		d.showFailure(w, r, s, "Delete key", err)
		return
	}
	d.render(w, r, s, http.StatusOK, "confirm", "Delete key", "keys", confirmData{
		Question: "Delete the key " + k.KeyPrefix + "… of user " + k.UserID + "?",
		Detail:   "Apps using it are refused at once. Its usage history stays. To stop it for now only, deactivate it instead.",
		Action:   "/ui/keys/" + url.PathEscape(id) + "/delete",
		Button:   "Delete key",
		Cancel:   "/ui/keys/" + url.PathEscape(id),
	})
}

// keyAction runs one write on a key.
func (d *dashboard) keyAction(w http.ResponseWriter, r *http.Request, s *session.Session) {
	id := r.PathValue("id")
	keyPath := "/v1/keys/" + url.PathEscape(id)
	page := "/ui/keys/" + url.PathEscape(id)
	back := r.Referer()
	if u, err := url.Parse(back); err != nil || back == "" || u.Host != r.Host {
		back = page
	} else {
		back = u.RequestURI()
	}
	var err error
	switch r.PathValue("action") {
	case "activate", "deactivate":
		active := r.PathValue("action") == "activate"
		if err = d.api(r, s, http.MethodPatch, keyPath, map[string]any{"is_active": active}, nil); err == nil {
			redirect(w, r, s, back, map[bool]string{true: "Key activated.", false: "Key deactivated: it is refused from now on."}[active])
			return
		}
	case "rotate":
		var created createdKeyResponse
		if err = d.api(r, s, http.MethodPost, keyPath+"/rotate", nil, &created); err == nil {
			s.AddFlash(secretFlash("Key rotated: the old secret no longer works.", created.Key))
			http.Redirect(w, r, back, http.StatusSeeOther)
			return
		}
	case "update":
		f := keyForm(r)
		if err = f.err; err == nil {
			if err = d.api(r, s, http.MethodPatch, keyPath, f.body, nil); err == nil {
				redirect(w, r, s, page, "Key saved.")
				return
			}
		}
	case "delete":
		if err = d.api(r, s, http.MethodDelete, keyPath, nil, nil); err == nil {
			redirect(w, r, s, "/ui/keys", "Key deleted.")
			return
		}
		back = "/ui/keys"
	default:
		d.message(w, r, s, http.StatusNotFound, "Not found", "There is no such page.", "/ui/keys", "Go to the keys")
		return
	}
	d.failed(w, r, s, back, err)
}

// usageTable is a table of usage records with its pages.
type usageTable struct {
	Records []usageResponse
	Pager   pager
	Empty   string // what the table says when it has no rows
}
