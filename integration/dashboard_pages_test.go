package integration

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestDashboardManagesUsersBudgetsPricing drives the users, budgets,
// pricing, usage log and providers pages in Chromium and checks each
// change through the admin API.
func TestDashboardManagesUsersBudgetsPricing(t *testing.T) {
	g, _ := startDashboard(t, "\n\t\t\troute smart {\n\t\t\t\tto mock:ok weight 3\n\t\t\t\tfallback stuck:ok\n\t\t\t}")
	b := newBrowser(t, g.URL)
	b.signIn(masterKey)

	// Budgets: the empty state, then one created.
	b.open("/ui/budgets", "#create-budget")
	if !b.exists("#budgets-empty") {
		t.Fatal("the budgets page without budgets does not say what to do next")
	}
	b.submit(map[string]string{"#budget_max": "10", "#budget_duration": "30d"}, "#create-budget button[type=submit]", ".flash.notice")
	budgetID := b.attr("#budgets-table tbody tr", "data-budget-id")
	if row := b.text("#budgets-table tbody tr"); !strings.Contains(row, "10") || !strings.Contains(row, "30d") {
		t.Fatalf("budget row: %q", row)
	}
	budget := g.adminDo("GET", "/v1/budgets/"+budgetID, nil).Map(t)
	if budget["max_budget"] != 10.0 || budget["budget_duration_sec"] != float64(30*86400) {
		t.Fatalf("the created budget is %v", budget)
	}
	b.screenshot("budgets")
	b.open("/ui/budgets/"+url.PathEscape(budgetID), "#edit-budget")
	b.submit(map[string]string{"#edit_budget_max": "12.5"}, "#edit-budget button[type=submit]", ".flash.notice")
	if got := g.adminDo("GET", "/v1/budgets/"+budgetID, nil).Map(t)["max_budget"]; got != 12.5 {
		t.Fatalf("edited budget: max_budget = %v", got)
	}
	b.screenshot("budget")

	// Users: created on a budget, edited, blocked, searched, paged, deleted.
	b.open("/ui/users", "#create-user")
	if !b.exists("#users-empty") {
		t.Fatal("the users page without users does not say what to do next")
	}
	b.do(chromedp.SetValue(chromedp.CSS("#user_budget"), budgetID))
	b.submit(map[string]string{"#user_id": "alice", "#user_alias": "Alice"}, "#create-user button[type=submit]", "#user-facts")
	u := g.adminDo("GET", "/v1/users/alice", nil).Map(t)
	if u["alias"] != "Alice" || u["budget_id"] != budgetID {
		t.Fatalf("created user: %v", u)
	}
	b.submit(map[string]string{"#edit_alias": "Alice B."}, "#edit-user button[type=submit]", ".flash.notice")
	edited := g.adminDo("GET", "/v1/users/alice", nil).Map(t)
	if edited["alias"] != "Alice B." {
		t.Fatalf("edited alias = %v", edited["alias"])
	}
	if edited["budget_started_at"] != u["budget_started_at"] {
		t.Fatalf("editing the alias restarted the budget period: %v, was %v", edited["budget_started_at"], u["budget_started_at"])
	}
	b.click("#toggle-user", ".flash.notice")
	if got := g.adminDo("GET", "/v1/users/alice", nil).Map(t)["blocked"]; got != true {
		t.Fatalf("after Block, blocked = %v", got)
	}
	b.screenshot("user")

	for i := range 52 {
		expect(t, g.adminDo("POST", "/v1/users", map[string]any{"user_id": fmt.Sprintf("bulk-%02d", i)}), http.StatusOK)
	}
	b.open("/ui/users", "#users-table")
	if got := b.text(".pager .muted"); got != "Rows 1–50" {
		t.Fatalf("first page: %q", got)
	}
	b.screenshot("users")
	b.click(`.pager a[rel="next"]`, "#users-table")
	if got := b.text(".pager .muted"); got != "Rows 51–53" {
		t.Fatalf("second page: %q", got)
	}
	b.open("/ui/users?q=alice", "#users-table")
	if rows := get(b, chromedp.Evaluate[int](`document.querySelectorAll("#users-table tbody tr").length`)); rows != 1 || !strings.Contains(b.text("#users-table tbody tr"), "blocked") {
		t.Fatalf("search for alice: %d rows", rows)
	}
	b.open("/ui/users?q=nobody", "#users-empty")
	b.open("/ui/users/alice/delete", "#confirm")
	b.screenshot("confirm-delete")
	b.click("#confirm button[type=submit]", ".flash.notice")
	expect(t, g.adminDo("GET", "/v1/users/alice", nil), http.StatusNotFound)

	// Pricing: a config price is read-only; one set here can be deleted.
	b.open("/ui/pricing", "#set-price")
	if !strings.Contains(b.text(`#prices-table tr[data-model-key="mock:ok"]`), "config") || b.exists(`#prices-table tr[data-model-key="mock:ok"] a`) {
		t.Fatal("the config price is not shown as read-only")
	}
	b.submit(map[string]string{"#price_model": "mock/extra", "#price_input": "1.5", "#price_output": "3"}, "#set-price button[type=submit]", ".flash.notice")
	p := g.adminDo("GET", "/v1/pricing/mock:extra", nil).Map(t)
	if p["input_price_per_million"] != 1.5 || p["output_price_per_million"] != 3.0 {
		t.Fatalf("set price: %v", p)
	}
	b.screenshot("pricing")
	b.open("/ui/pricing/delete?model_key=mock:extra", "#confirm")
	b.click("#confirm button[type=submit]", ".flash.notice")
	expect(t, g.adminDo("GET", "/v1/pricing/mock:extra", nil), http.StatusNotFound)

	// The usage log, filtered by status and key.
	k1 := g.newKey(map[string]any{"user_id": "bob"})
	k2 := g.newKey(map[string]any{"user_id": "carol"})
	g.chat(k1.Key)
	g.chat(k2.Key)
	r := g.do("POST", "/v1/chat/completions", `{"model": "mock:err-500", "messages": [{"role": "user", "content": "hi"}]}`, bearer(k2.Key)...)
	expect(t, r, http.StatusBadGateway)
	failedID := r.Header.Get("X-Request-Id")
	waitFor(t, "the failed call's record", func() bool {
		return strings.Contains(string(g.adminDo("GET", "/v1/usage?limit=10", nil).Body), failedID)
	})
	b.open("/ui/usage", ".usage-table")
	if n := get(b, chromedp.Evaluate[int](`document.querySelectorAll(".usage-table tbody tr").length`)); n != 3 {
		t.Fatalf("the usage log lists %d calls, want 3", n)
	}
	b.do(chromedp.SetValue(chromedp.CSS("#f_status"), "error"))
	b.click("#usage-filters button[type=submit]", ".usage-table")
	if n := get(b, chromedp.Evaluate[int](`document.querySelectorAll(".usage-table tbody tr").length`)); n != 1 || !b.exists(fmt.Sprintf("tr[data-request-id=%q]", failedID)) {
		t.Fatalf("status=error lists %d rows", n)
	}
	if !strings.Contains(b.text(".usage-table tbody tr"), "502") {
		t.Fatalf("the failed call's row: %q", b.text(".usage-table tbody tr"))
	}
	b.screenshot("usage-errors")
	b.open("/ui/usage?api_key_id="+url.QueryEscape(k1.ID), ".usage-table")
	if n := get(b, chromedp.Evaluate[int](`document.querySelectorAll(".usage-table tbody tr").length`)); n != 1 || !strings.Contains(b.text(".usage-table tbody tr"), "bob") {
		t.Fatalf("the key filter lists %d rows", n)
	}
	b.open("/ui/usage?start_date=2099-01-01T00:00", ".usage-empty")
	b.open("/ui/usage", ".usage-table")
	b.screenshot("usage")

	// Providers: what the config has, and the recent failure.
	b.open("/ui/providers", "#providers-table")
	mock := b.text(`#providers-table tr[data-provider="mock"]`)
	if !strings.Contains(mock, "openai") || !strings.Contains(mock, "/v1") || !strings.Contains(mock, "set") {
		t.Fatalf("the mock provider's row: %q", mock)
	}
	if !b.exists(`#providers-table tr[data-provider="stuck"]`) {
		t.Fatal("the stuck provider is not listed")
	}
	if !b.exists(fmt.Sprintf("tr[data-request-id=%q]", failedID)) {
		t.Fatal("the providers page does not list the recent failure")
	}
	route := b.text(`#routes-table tr[data-route="smart"]`)
	for _, want := range []string{"mock:ok × 3", "stuck:ok", "in service"} {
		if !strings.Contains(route, want) {
			t.Errorf("the route's row %q lacks %q", route, want)
		}
	}
	var routes []map[string]any
	g.adminDo("GET", "/v1/routes", nil).JSON(t, &routes)
	if len(routes) != 1 || routes[0]["name"] != "smart" || len(routes[0]["targets"].([]any)) != 2 {
		t.Fatalf("GET /v1/routes = %v", routes)
	}
	html := get(b, chromedp.OuterHTML(chromedp.CSS("html")))
	assertNoSecret(t, "the providers page", []byte(html), providerKey)
	b.screenshot("providers")

	b.checkClean()
}
