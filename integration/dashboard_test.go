package integration

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// startDashboard runs a gateway with the dashboard on and the mock provider.
func startDashboard(t *testing.T, block string) (*gateway, *mockUpstream) {
	t.Helper()
	m := newMockUpstream(t)
	g := startChecked(t, gatewayConfig{Block: mockProvider(m) + "\n\t\t\tdashboard" + block})
	return g, m
}

// signIn signs the browser in with key and waits for the overview.
func (b *browser) signIn(key string) {
	b.t.Helper()
	b.open("/ui/", "#master_key")
	b.submit(map[string]string{"#master_key": key}, "#sign-in button", "#main h1")
}

// TestDashboardInTheBrowser walks the operator's main flow in Chromium:
// sign-in refused then accepted, a key created with its secret shown once,
// the key used for a call that then shows on the overview and in the usage
// log, the key deactivated and refused, a write without the CSRF token
// refused, sign-out ending the session on the server; and throughout, no
// request to another origin and no console error.
func TestDashboardInTheBrowser(t *testing.T) {
	g, _ := startDashboard(t, "")
	b := newBrowser(t, g.URL)

	// A wrong key is refused, and no session cookie is set.
	b.open("/ui/", "#master_key")
	b.screenshot("sign-in")
	b.submit(map[string]string{"#master_key": "mk-wrong-" + strings.Repeat("x", 40)}, "#sign-in button", ".flash.error")
	if got := b.text(".flash.error"); !strings.Contains(got, "not this gateway's master key") {
		t.Fatalf("refused sign-in says %q", got)
	}
	b.screenshot("sign-in-refused")
	if !b.exists("#master_key") || b.exists("#sign-out") {
		t.Fatal("a wrong key signed in")
	}

	// The right key opens the overview.
	b.submit(map[string]string{"#master_key": masterKey}, "#sign-in button", "#sign-out")
	if got := b.text("#main h1"); got != "Overview" {
		t.Fatalf("after sign-in the page is %q", got)
	}
	c := b.cookie("llmgw_session")
	if !c.HTTPOnly || c.SameSite != network.CookieSameSiteStrict || c.Path != "/ui" || c.Expires <= 0 {
		t.Fatalf("session cookie: HttpOnly=%v SameSite=%v Path=%q Expires=%v", c.HTTPOnly, c.SameSite, c.Path, c.Expires)
	}
	if strings.Contains(c.Value, masterKey) {
		t.Fatal("the cookie holds the master key")
	}

	// A key: created, its secret shown once, gone on reload.
	b.open("/ui/keys", "#create-key")
	if !b.exists("#keys-empty") {
		t.Fatal("the keys page without keys does not say what to do next")
	}
	b.submit(map[string]string{
		"#key_name":           "browser-key",
		"#key_user_id":        "browser-user",
		"#key_allowed_models": "mock:ok",
		"#key_max_budget":     "5",
		"#key_rpm_limit":      "100",
	}, "#create-key button[type=submit]", "#new-secret")
	secret := b.value("#new-secret")
	if !keyPattern.MatchString(secret) {
		t.Fatalf("shown secret %q is not a key", secret)
	}
	b.do(chromedp.Click(chromedp.CSS("#copy-secret")), chromedp.WaitVisible(`//button[@id="copy-secret" and text()="Copied"]`))
	b.screenshot("keys-secret-once")
	row := b.text("#keys-table tbody tr")
	for _, want := range []string{"browser-key", "browser-user", "active", "mock:ok", "$5", "100 req/min"} {
		if !strings.Contains(row, want) {
			t.Errorf("the key's row %q lacks %q", row, want)
		}
	}
	b.do(markStale, chromedp.Reload(), waitNewPage("#keys-table"))
	html := get(b, chromedp.OuterHTML(chromedp.CSS("html")))
	if b.exists("#new-secret") || strings.Contains(html, secret) {
		t.Fatal("the secret is still shown after a reload")
	}
	b.screenshot("keys")
	keyID := b.attr("#keys-table tbody tr", "data-key-id")

	// The key works, and its call shows on the overview and in the log.
	r := g.do("POST", "/v1/chat/completions", `{"model": "mock:ok", "messages": [{"role": "user", "content": "hi"}]}`, bearer(secret)...)
	expect(t, r, http.StatusOK)
	requestID := r.Header.Get("X-Request-Id")
	waitFor(t, "the usage record of "+requestID, func() bool {
		return strings.Contains(string(g.adminDo("GET", "/v1/usage?limit=10", nil).Body), requestID)
	})

	b.open("/ui/usage", ".usage-table")
	if !b.exists(fmt.Sprintf("tr[data-request-id=%q]", requestID)) {
		t.Fatal("the usage log does not list the call")
	}
	if row := b.text(fmt.Sprintf("tr[data-request-id=%q]", requestID)); !strings.Contains(row, "browser-user") || !strings.Contains(row, "mock:ok") || !strings.Contains(row, "200") {
		t.Fatalf("the call's row in the usage log: %q", row)
	}

	b.open("/ui/keys/"+url.PathEscape(keyID), "#key-facts")
	if !b.exists(fmt.Sprintf("tr[data-request-id=%q]", requestID)) {
		t.Fatal("the key's page does not list its call")
	}
	b.screenshot("key")

	// Deactivated from the key's page, the key is refused.
	b.click("#toggle-key", ".flash.notice")
	if got := b.text(".flash.notice"); !strings.Contains(got, "deactivated") {
		t.Fatalf("after deactivating: %q", got)
	}
	r = g.do("POST", "/v1/chat/completions", `{"model": "mock:ok", "messages": [{"role": "user", "content": "hi"}]}`, bearer(secret)...)
	expectError(t, r, http.StatusUnauthorized, "API key is inactive")

	// A write without the CSRF token (or with another's) is refused, even
	// with a live session cookie, and changes nothing.
	session := b.cookie("llmgw_session").Value
	csrf := b.value("form.signout input[name=csrf_token]")
	for name, form := range map[string]url.Values{
		"no token":    {},
		"wrong token": {"csrf_token": {strings.Repeat("A", 43)}},
	} {
		resp := dashboardRequest(t, "POST", g.URL+"/ui/keys/"+url.PathEscape(keyID)+"/activate", session, form)
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("activate with %s: status %d, want 403", name, resp.StatusCode)
		}
	}
	if active := g.adminDo("GET", "/v1/keys/"+keyID, nil).Map(t)["is_active"]; active != false {
		t.Fatalf("a refused write changed the key: is_active = %v", active)
	}
	// The same write with the token goes through: the refusals above were
	// the token's doing, not the request's.
	resp := dashboardRequest(t, "POST", g.URL+"/ui/keys/"+url.PathEscape(keyID)+"/activate", session, url.Values{"csrf_token": {csrf}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("activate with the token: status %d, want 303", resp.StatusCode)
	}
	if active := g.adminDo("GET", "/v1/keys/"+keyID, nil).Map(t)["is_active"]; active != true {
		t.Fatalf("a write with the token did not apply: is_active = %v", active)
	}

	// Sign-out ends the session on the server: its cookie is refused.
	b.open("/ui/keys", "#sign-out")
	b.click("#sign-out", "#master_key")
	resp = dashboardRequest(t, "GET", g.URL+"/ui/keys", session, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/login" {
		t.Fatalf("replayed cookie after sign-out: %d %q, want 303 to /ui/login", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp = dashboardRequest(t, "POST", g.URL+"/ui/keys/"+url.PathEscape(keyID)+"/deactivate", session, url.Values{"csrf_token": {csrf}})
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("replayed write after sign-out: status %d, want 401", resp.StatusCode)
	}
	if active := g.adminDo("GET", "/v1/keys/"+keyID, nil).Map(t)["is_active"]; active != true {
		t.Fatal("a write with a dead session changed the key")
	}

	b.checkClean()
	assertNoSecret(t, "the gateway's output", []byte(g.output.String()), masterKey, secret)
	if _, err := os.Stat(artifactsDir); err != nil {
		t.Fatal(err)
	}
}

// summaryServed reports whether the gateway answers GET /v1/usage/summary,
// which the overview is drawn from.
func summaryServed(t *testing.T, g *gateway) bool {
	t.Helper()
	return g.adminDo("GET", "/v1/usage/summary", nil).Status == http.StatusOK
}

// TestDashboardOverviewShowsTraffic: calls made with keys show on the
// overview's totals, charts and top lists, over each period, and on the
// providers page's health.
func TestDashboardOverviewShowsTraffic(t *testing.T) {
	g, _ := startDashboard(t, "")
	if !summaryServed(t, g) {
		t.Skip("this tree has no GET /v1/usage/summary (issue 17 item 1), which the overview reads")
	}
	b := newBrowser(t, g.URL)
	b.signIn(masterKey)
	if !b.exists("#overview-empty") {
		t.Fatal("a gateway with no requests does not say what to do next on the overview")
	}
	b.screenshot("overview-empty")

	k1 := g.newKey(map[string]any{"user_id": "bob", "key_name": "bob-laptop"})
	k2 := g.newKey(map[string]any{"user_id": "carol"})
	g.chat(k1.Key)
	g.chat(k2.Key)
	r := g.do("POST", "/v1/chat/completions", `{"model": "mock:err-500", "messages": [{"role": "user", "content": "hi"}]}`, bearer(k2.Key)...)
	expect(t, r, http.StatusBadGateway)
	failedID := r.Header.Get("X-Request-Id")
	waitFor(t, "the failed call's record", func() bool {
		return strings.Contains(string(g.adminDo("GET", "/v1/usage?limit=10", nil).Body), failedID)
	})

	for _, rng := range []string{"24h", "7d", "30d"} {
		b.open("/ui/?range="+rng, "#totals")
		if got := b.text("#total-requests"); got != "3" {
			t.Fatalf("%s: overview shows %q requests, want 3", rng, got)
		}
		if got := b.text("#total-tokens"); got != fmt.Sprint(2*(mockPromptTokens+mockCompletionTokens)) {
			t.Fatalf("%s: overview shows %q tokens", rng, got)
		}
		if got := b.text("#total-errors"); got != "33.33%" {
			t.Fatalf("%s: error rate %q, want 33.33%% (1 of 3)", rng, got)
		}
		// Two mock:ok calls: 2 × (11 × $1 + 7 × $2) / 1M tokens.
		if got, want := b.text("#total-spend"), "$0.00005"; got != want {
			t.Fatalf("%s: spend %q, want %q", rng, got, want)
		}
		for _, c := range []string{"spend", "requests", "tokens", "errors"} {
			bars := get(b, chromedp.Evaluate[int](fmt.Sprintf(`Array.from(document.querySelectorAll("#chart-%s rect.bar")).filter(r => r.height.baseVal.value > 0).length`, c)))
			if bars != 1 {
				t.Fatalf("%s: the %s chart has %d non-empty bars, want 1 (this bucket)", rng, c, bars)
			}
		}
		if got := b.text("#top-users"); !strings.Contains(got, "bob") || !strings.Contains(got, "carol") {
			t.Fatalf("%s: top users %q", rng, got)
		}
		if got := b.text("#top-keys"); !strings.Contains(got, "bob-laptop") {
			t.Fatalf("%s: top keys %q", rng, got)
		}
		if got := b.text("#top-models"); !strings.Contains(got, "mock:ok") || !strings.Contains(got, "mock:err-500") {
			t.Fatalf("%s: top models %q", rng, got)
		}
		b.screenshot("overview-" + rng)
	}
	b.open("/ui/", "#totals")
	b.screenshot("overview")

	b.open("/ui/providers", "#providers-table")
	if mock := b.text(`#providers-table tr[data-provider="mock"]`); !strings.Contains(mock, "degraded") {
		t.Fatalf("the mock provider, 1 failure in 3, is not shown degraded: %q", mock)
	}
	b.checkClean()
}
