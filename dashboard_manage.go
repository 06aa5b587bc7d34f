package llmgateway

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/internal/session"
)

// The users, budgets, pricing, usage log and providers pages.

// moreRoutes registers the pages beyond the overview and the keys.
func (d *dashboard) moreRoutes() {
	m := d.mux
	m.HandleFunc("GET /ui/users", d.authed(d.usersPage))
	m.HandleFunc("POST /ui/users", d.authed(d.createUser))
	m.HandleFunc("GET /ui/users/{id}", d.authed(d.userPage))
	m.HandleFunc("GET /ui/users/{id}/delete", d.authed(d.confirmDeleteUser))
	m.HandleFunc("POST /ui/users/{id}/{action}", d.authed(d.userAction))

	m.HandleFunc("GET /ui/budgets", d.authed(d.budgetsPage))
	m.HandleFunc("POST /ui/budgets", d.authed(d.createBudget))
	m.HandleFunc("GET /ui/budgets/{id}", d.authed(d.budgetPage))
	m.HandleFunc("GET /ui/budgets/{id}/delete", d.authed(d.confirmDeleteBudget))
	m.HandleFunc("POST /ui/budgets/{id}/{action}", d.authed(d.budgetAction))

	m.HandleFunc("GET /ui/pricing", d.authed(d.pricingPage))
	m.HandleFunc("POST /ui/pricing", d.authed(d.setPrice))
	m.HandleFunc("GET /ui/pricing/delete", d.authed(d.confirmDeletePrice))
	m.HandleFunc("POST /ui/pricing/delete", d.authed(d.deletePrice))

	m.HandleFunc("GET /ui/usage", d.authed(d.usagePage))
	m.HandleFunc("GET /ui/providers", d.authed(d.providersPage))
}

// allBudgets lists budgets for the pickers and names (the first 1000).
func (d *dashboard) allBudgets(r *http.Request, s *session.Session) ([]budgetResponse, error) {
	var budgets []budgetResponse
	err := d.api(r, s, http.MethodGet, "/v1/budgets?limit=1000", nil, &budgets)
	return budgets, err
}

// backTo is the same-site page a write came from (its Referer), else def.
func backTo(r *http.Request, def string) string {
	ref := r.Referer()
	u, err := url.Parse(ref)
	if err != nil || ref == "" || u.Host != r.Host || !isDashboardPath(u.Path) {
		return def
	}
	return u.RequestURI()
}

type usersData struct {
	Users   []userResponse
	Budgets []budgetResponse
	Pager   pager
	Query   string
}

// usersPage lists users a page at a time; a search finds one user by its
// exact id (the admin API looks users up by id, it has no text search).
func (d *dashboard) usersPage(w http.ResponseWriter, r *http.Request, s *session.Session) {
	var data usersData
	var err error
	if data.Budgets, err = d.allBudgets(r, s); err != nil {
		d.showFailure(w, r, s, "Users", err)
		return
	}
	if data.Query = r.URL.Query().Get("q"); data.Query != "" {
		var u userResponse
		err := d.api(r, s, http.MethodGet, "/v1/users/"+url.PathEscape(data.Query), nil, &u)
		var ae *apiError
		switch {
		case err == nil:
			data.Users = []userResponse{u}
		case errors.As(err, &ae) && (ae.Status == http.StatusNotFound || ae.Status == http.StatusUnprocessableEntity):
		default:
			d.showFailure(w, r, s, "Users", err)
			return
		}
		d.render(w, r, s, http.StatusOK, "users", "Users", "users", data)
		return
	}
	skip, q := pageQuery(r)
	var users []userResponse
	if err := d.api(r, s, http.MethodGet, apiPath("/v1/users", q), nil, &users); err != nil {
		d.showFailure(w, r, s, "Users", err)
		return
	}
	data.Users, data.Pager = pageOf(users, skip, "/ui/users", nil)
	d.render(w, r, s, http.StatusOK, "users", "Users", "users", data)
}

func (d *dashboard) createUser(w http.ResponseWriter, r *http.Request, s *session.Session) {
	f := newFormFields(r.PostForm)
	f.text("user_id", "user_id")
	f.text("alias", "alias")
	f.text("budget_id", "budget_id")
	var u userResponse
	if err := d.api(r, s, http.MethodPost, "/v1/users", f.body, &u); err != nil {
		d.failed(w, r, s, "/ui/users", err)
		return
	}
	redirect(w, r, s, "/ui/users/"+url.PathEscape(u.UserID), "User "+u.UserID+" created.")
}

type userData struct {
	User    userResponse
	Budgets []budgetResponse
	Usage   usageTable
}

func (d *dashboard) userPage(w http.ResponseWriter, r *http.Request, s *session.Session) {
	id := r.PathValue("id")
	var data userData
	var err error
	if err = d.api(r, s, http.MethodGet, "/v1/users/"+url.PathEscape(id), nil, &data.User); err == nil {
		data.Budgets, err = d.allBudgets(r, s)
	}
	if err == nil {
		err = d.api(r, s, http.MethodGet, "/v1/users/"+url.PathEscape(id)+"/usage?limit=10", nil, &data.Usage.Records)
	}
	if err != nil {
		d.showFailure(w, r, s, "User", err)
		return
	}
	data.Usage.Empty = "No requests from this user yet."
	d.render(w, r, s, http.StatusOK, "user", "User "+id, "users", data)
}

func (d *dashboard) confirmDeleteUser(w http.ResponseWriter, r *http.Request, s *session.Session) {
	id := r.PathValue("id")
	if err := d.api(r, s, http.MethodGet, "/v1/users/"+url.PathEscape(id), nil, nil); err != nil {
		d.showFailure(w, r, s, "Delete user", err)
		return
	}
	d.render(w, r, s, http.StatusOK, "confirm", "Delete user", "users", confirmData{
		Question: "Delete user " + id + "?",
		Detail:   "Their keys stop working at once. Their usage history stays. To stop them for now only, block them instead.",
		Action:   "/ui/users/" + url.PathEscape(id) + "/delete",
		Button:   "Delete user",
		Cancel:   "/ui/users/" + url.PathEscape(id),
	})
}

func (d *dashboard) userAction(w http.ResponseWriter, r *http.Request, s *session.Session) {
	id := r.PathValue("id")
	userPath := "/v1/users/" + url.PathEscape(id)
	page := "/ui/users/" + url.PathEscape(id)
	back := backTo(r, page)
	var err error
	switch r.PathValue("action") {
	case "block", "unblock":
		blocked := r.PathValue("action") == "block"
		if err = d.api(r, s, http.MethodPatch, userPath, map[string]any{"blocked": blocked}, nil); err == nil {
			redirect(w, r, s, back, map[bool]string{true: "User " + id + " blocked: their requests are refused.", false: "User " + id + " unblocked."}[blocked])
			return
		}
	case "update":
		f := newFormFields(r.PostForm)
		if _, ok := r.PostForm["alias"]; ok {
			f.body["alias"] = f.value("alias")
		}
		// Re-sending the budget the user has would restart its period.
		if b := f.value("budget_id"); b != "" && b != f.value("current_budget_id") {
			f.body["budget_id"] = b
		}
		if err = d.api(r, s, http.MethodPatch, userPath, f.body, nil); err == nil {
			redirect(w, r, s, page, "User "+id+" saved.")
			return
		}
	case "delete":
		if err = d.api(r, s, http.MethodDelete, userPath, nil, nil); err == nil {
			redirect(w, r, s, "/ui/users", "User "+id+" deleted; their keys no longer work.")
			return
		}
		back = "/ui/users"
	default:
		d.message(w, r, s, http.StatusNotFound, "Not found", "There is no such page.", "/ui/users", "Go to the users")
		return
	}
	d.failed(w, r, s, back, err)
}

type budgetsData struct {
	Budgets []budgetResponse
	Pager   pager
}

func (d *dashboard) budgetsPage(w http.ResponseWriter, r *http.Request, s *session.Session) {
	skip, q := pageQuery(r)
	var budgets []budgetResponse
	if err := d.api(r, s, http.MethodGet, apiPath("/v1/budgets", q), nil, &budgets); err != nil {
		d.showFailure(w, r, s, "Budgets", err)
		return
	}
	var data budgetsData
	data.Budgets, data.Pager = pageOf(budgets, skip, "/ui/budgets", nil)
	d.render(w, r, s, http.StatusOK, "budgets", "Budgets", "budgets", data)
}

func budgetForm(r *http.Request) *formFields {
	f := newFormFields(r.PostForm)
	f.money("max_budget", "max_budget", "Limit (USD)")
	f.durationSec("budget_duration", "budget_duration_sec", "Period")
	return f
}

func (d *dashboard) createBudget(w http.ResponseWriter, r *http.Request, s *session.Session) {
	f := budgetForm(r)
	if f.err != nil {
		d.failed(w, r, s, "/ui/budgets", f.err)
		return
	}
	var b budgetResponse
	if err := d.api(r, s, http.MethodPost, "/v1/budgets", f.body, &b); err != nil {
		d.failed(w, r, s, "/ui/budgets", err)
		return
	}
	redirect(w, r, s, "/ui/budgets", "Budget "+b.BudgetID+" created. Assign it to users on their page.")
}

func (d *dashboard) budgetPage(w http.ResponseWriter, r *http.Request, s *session.Session) {
	id := r.PathValue("id")
	var b budgetResponse
	if err := d.api(r, s, http.MethodGet, "/v1/budgets/"+url.PathEscape(id), nil, &b); err != nil {
		d.showFailure(w, r, s, "Budget", err)
		return
	}
	d.render(w, r, s, http.StatusOK, "budget", "Budget "+budgetLabel(b), "budgets", b)
}

func (d *dashboard) confirmDeleteBudget(w http.ResponseWriter, r *http.Request, s *session.Session) {
	id := r.PathValue("id")
	if err := d.api(r, s, http.MethodGet, "/v1/budgets/"+url.PathEscape(id), nil, nil); err != nil {
		d.showFailure(w, r, s, "Delete budget", err)
		return
	}
	d.render(w, r, s, http.StatusOK, "confirm", "Delete budget", "budgets", confirmData{
		Question: "Delete budget " + id + "?",
		Detail:   "Users on it lose it: their spend is no longer limited by it.",
		Action:   "/ui/budgets/" + url.PathEscape(id) + "/delete",
		Button:   "Delete budget",
		Cancel:   "/ui/budgets/" + url.PathEscape(id),
	})
}

func (d *dashboard) budgetAction(w http.ResponseWriter, r *http.Request, s *session.Session) {
	id := r.PathValue("id")
	budgetPath := "/v1/budgets/" + url.PathEscape(id)
	page := "/ui/budgets/" + url.PathEscape(id)
	var err error
	switch r.PathValue("action") {
	case "update":
		f := budgetForm(r)
		if err = f.err; err == nil {
			if err = d.api(r, s, http.MethodPatch, budgetPath, f.body, nil); err == nil {
				redirect(w, r, s, page, "Budget saved.")
				return
			}
		}
	case "delete":
		if err = d.api(r, s, http.MethodDelete, budgetPath, nil, nil); err == nil {
			redirect(w, r, s, "/ui/budgets", "Budget "+id+" deleted.")
			return
		}
		page = "/ui/budgets"
	default:
		d.message(w, r, s, http.StatusNotFound, "Not found", "There is no such page.", "/ui/budgets", "Go to the budgets")
		return
	}
	d.failed(w, r, s, page, err)
}

type pricingData struct {
	Prices []priceResponse
	Pager  pager
}

func (d *dashboard) pricingPage(w http.ResponseWriter, r *http.Request, s *session.Session) {
	skip, q := pageQuery(r)
	var prices []priceResponse
	if err := d.api(r, s, http.MethodGet, apiPath("/v1/pricing", q), nil, &prices); err != nil {
		d.showFailure(w, r, s, "Pricing", err)
		return
	}
	var data pricingData
	data.Prices, data.Pager = pageOf(prices, skip, "/ui/pricing", nil)
	d.render(w, r, s, http.StatusOK, "pricing", "Pricing", "pricing", data)
}

func (d *dashboard) setPrice(w http.ResponseWriter, r *http.Request, s *session.Session) {
	f := newFormFields(r.PostForm)
	f.text("model_key", "model_key")
	for _, p := range []struct{ name, label string }{
		{"input_price_per_million", "Input price"}, {"output_price_per_million", "Output price"},
	} {
		v, err := strconv.ParseFloat(f.value(p.name), 64)
		if err != nil || !validPrice(v) {
			f.fail(p.label, "a number of US dollars per million tokens, 0 or more")
			continue
		}
		f.body[p.name] = v
	}
	if f.err != nil {
		d.failed(w, r, s, "/ui/pricing", f.err)
		return
	}
	var p priceResponse
	if err := d.api(r, s, http.MethodPost, "/v1/pricing", f.body, &p); err != nil {
		d.failed(w, r, s, "/ui/pricing", err)
		return
	}
	redirect(w, r, s, "/ui/pricing", "Price of "+p.ModelKey+" saved.")
}

func (d *dashboard) confirmDeletePrice(w http.ResponseWriter, r *http.Request, s *session.Session) {
	key := r.URL.Query().Get("model_key")
	var p priceResponse
	if err := d.api(r, s, http.MethodGet, "/v1/pricing/"+url.PathEscape(key), nil, &p); err != nil {
		d.showFailure(w, r, s, "Delete price", err)
		return
	}
	d.render(w, r, s, http.StatusOK, "confirm", "Delete price", "pricing", confirmData{
		Question: "Delete the price of " + p.ModelKey + "?",
		Detail:   "Requests to this model then cost nothing and pass every budget.",
		Action:   "/ui/pricing/delete",
		Button:   "Delete price",
		Cancel:   "/ui/pricing",
		Fields:   map[string]string{"model_key": p.ModelKey},
	})
}

func (d *dashboard) deletePrice(w http.ResponseWriter, r *http.Request, s *session.Session) {
	key := r.PostForm.Get("model_key")
	if err := d.api(r, s, http.MethodDelete, "/v1/pricing/"+url.PathEscape(key), nil, nil); err != nil {
		d.failed(w, r, s, "/ui/pricing", err)
		return
	}
	redirect(w, r, s, "/ui/pricing", "Price of "+key+" deleted.")
}

// usageFilter is the usage log's filter form, as the browser sent it.
type usageFilter struct {
	UserID, APIKeyID, Model, Status, Start, End string
}

type usageData struct {
	Filter   usageFilter
	Filtered bool
	Table    usageTable
}

// usagePage is the usage log: GET /v1/usage with the form's filters, a
// page of rows at a time, newest first.
func (d *dashboard) usagePage(w http.ResponseWriter, r *http.Request, s *session.Session) {
	in := r.URL.Query()
	f := usageFilter{
		UserID: in.Get("user_id"), APIKeyID: in.Get("api_key_id"), Model: in.Get("model"),
		Status: in.Get("status"), Start: in.Get("start_date"), End: in.Get("end_date"),
	}
	base := url.Values{}
	q := url.Values{}
	for name, v := range map[string]string{"user_id": f.UserID, "api_key_id": f.APIKeyID, "model": f.Model, "status": f.Status} {
		if v != "" {
			base.Set(name, v)
			q.Set(name, v)
		}
	}
	for name, v := range map[string]string{"start_date": f.Start, "end_date": f.End} {
		if v == "" {
			continue
		}
		t, ok := parseFormTime(v)
		if !ok {
			s.AddFlash(session.Flash{Kind: "error", Text: "Dates must look like 2026-12-31T23:59 (UTC)."})
			http.Redirect(w, r, "/ui/usage", http.StatusSeeOther)
			return
		}
		if name == "end_date" && len(v) == len("2006-01-02T15:04") {
			t = t.Add(time.Minute - time.Nanosecond) // the whole minute the form names
		}
		base.Set(name, v)
		q.Set(name, t.Format(time.RFC3339Nano))
	}
	skip, pq := pageQuery(r)
	for k, v := range pq {
		q[k] = v
	}
	var recs []usageResponse
	if err := d.api(r, s, http.MethodGet, apiPath("/v1/usage", q), nil, &recs); err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.Status == http.StatusUnprocessableEntity {
			d.failed(w, r, s, "/ui/usage", err)
			return
		}
		d.showFailure(w, r, s, "Usage log", err)
		return
	}
	data := usageData{Filter: f, Filtered: len(base) > 0}
	data.Table.Records, data.Table.Pager = pageOf(recs, skip, "/ui/usage", base)
	switch {
	case data.Table.Pager.Prev != "":
		data.Table.Empty = "No more requests."
	case data.Filtered:
		data.Table.Empty = "No request matches these filters."
	default:
		data.Table.Empty = "No requests yet. Every call to the gateway's /v1 inference routes is listed here, newest first."
	}
	d.render(w, r, s, http.StatusOK, "usage", "Usage log", "usage", data)
}

// providerView is a provider with its last 24 hours of traffic.
type providerView struct {
	providerResponse
	Requests, Errors int64
	Health           string // "healthy", "degraded", "failing" or "" (no traffic)
}

type providersData struct {
	Providers []providerView
	Routes    []routeResponse
	Errors    usageTable
}

// providersPage shows the configured providers, their traffic and errors
// over the last 24 hours (from the usage summary) and the latest errors.
func (d *dashboard) providersPage(w http.ResponseWriter, r *http.Request, s *session.Session) {
	var providers []providerResponse
	if err := d.api(r, s, http.MethodGet, "/v1/providers", nil, &providers); err != nil {
		d.showFailure(w, r, s, "Providers", err)
		return
	}
	q := url.Values{}
	q.Set("group_by", "provider")
	q.Set("interval", "day")
	q.Set("start_date", d.g.now().Add(-24*time.Hour).Format(time.RFC3339))
	var rows []summaryRow
	if err := d.api(r, s, http.MethodGet, apiPath("/v1/usage/summary", q), nil, &rows); err != nil {
		var ae *apiError
		if !errors.As(err, &ae) || ae.Status != http.StatusNotFound {
			d.showFailure(w, r, s, "Providers", err)
			return
		}
	}
	traffic := map[string]*summaryRow{}
	for _, row := range rows {
		if row.Group == nil {
			continue
		}
		t := traffic[*row.Group]
		if t == nil {
			t = &summaryRow{}
			traffic[*row.Group] = t
		}
		addSummary(t, row)
	}
	var data providersData
	for _, p := range providers {
		v := providerView{providerResponse: p}
		if t := traffic[p.Name]; t != nil {
			v.Requests, v.Errors = t.Requests, t.Errors
			v.Health = providerHealth(*t)
		}
		data.Providers = append(data.Providers, v)
	}
	if err := d.api(r, s, http.MethodGet, "/v1/routes", nil, &data.Routes); err != nil {
		d.showFailure(w, r, s, "Providers", err)
		return
	}
	eq := url.Values{"status": {"error"}, "limit": {"20"}}
	if err := d.api(r, s, http.MethodGet, apiPath("/v1/usage", eq), nil, &data.Errors.Records); err != nil {
		d.showFailure(w, r, s, "Providers", err)
		return
	}
	data.Errors.Empty = "No failed requests. Failures (provider errors, timeouts, refusals) are listed here as they happen."
	d.render(w, r, s, http.StatusOK, "providers", "Providers and routes", "providers", data)
}

// providerHealth judges a provider by its recent error rate: over half
// failing, some failing, or none.
func providerHealth(t summaryRow) string {
	switch {
	case t.Requests == 0:
		return ""
	case t.Errors*2 > t.Requests:
		return "failing"
	case t.Errors > 0:
		return "degraded"
	}
	return "healthy"
}
