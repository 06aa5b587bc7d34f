package integration

import (
	"net/http"
	"strings"
	"testing"
)

// CORS, security headers, admin isolation and health hygiene (issue 6,
// item 8).

const (
	appOrigin   = "https://app.example.com"
	otherOrigin = "https://other.example.org"
)

// preflight sends a CORS preflight for a POST with the headers a browser
// client of the gateway asks for.
func preflight(t *testing.T, g *gateway, path, origin, method string) *response {
	t.Helper()
	return g.on(t).do("OPTIONS", path, nil,
		"Origin", origin,
		"Access-Control-Request-Method", method,
		"Access-Control-Request-Headers", "content-type,x-anyllm-key")
}

// corsHeaders returns the response's Access-Control-* headers.
func corsHeaders(r *response) http.Header {
	out := http.Header{}
	for name, v := range r.Header {
		if strings.HasPrefix(strings.ToLower(name), "access-control-") {
			out[name] = v
		}
	}
	return out
}

// expectNoCORS fails if the response carries any Access-Control-* header.
func expectNoCORS(t *testing.T, r *response) {
	t.Helper()
	if h := corsHeaders(r); len(h) > 0 {
		t.Fatalf("status %d carries CORS headers %v", r.Status, h)
	}
}

// headerTokens splits every value of a comma-separated header.
func headerTokens(h http.Header, name string) []string {
	var out []string
	for _, v := range h.Values(name) {
		for _, tok := range strings.Split(v, ",") {
			if tok = strings.TrimSpace(tok); tok != "" {
				out = append(out, tok)
			}
		}
	}
	return out
}

// expectAllowed checks the CORS headers of an allowed origin: the origin
// (or *), credentials only for a listed origin, and Vary merged (Origin,
// and Authorization on /v1).
func expectAllowed(t *testing.T, r *response, origin string, wildcard, v1 bool) {
	t.Helper()
	want := origin
	if wildcard {
		want = "*"
	}
	if got := r.Header.Values("Access-Control-Allow-Origin"); len(got) != 1 || got[0] != want {
		t.Fatalf("Access-Control-Allow-Origin = %q, want exactly %q (status %d)", got, want, r.Status)
	}
	creds := r.Header.Values("Access-Control-Allow-Credentials")
	if wildcard && len(creds) != 0 {
		t.Fatalf("Access-Control-Allow-Credentials = %q with *, want none", creds)
	}
	if !wildcard && (len(creds) != 1 || creds[0] != "true") {
		t.Fatalf("Access-Control-Allow-Credentials = %q, want exactly \"true\"", creds)
	}
	if v := varyTokens(r.Header); !wildcard && !containsFold(v, "Origin") {
		t.Fatalf("Vary = %q, want Origin in it", r.Header.Values("Vary"))
	}
	if v := varyTokens(r.Header); v1 && !containsFold(v, "Authorization") {
		t.Fatalf("Vary = %q, want Authorization in it", r.Header.Values("Vary"))
	}
}

// expectPreflightAnswer checks a preflight answered as CORS.
func expectPreflightAnswer(t *testing.T, r *response, origin string, wildcard, v1 bool) {
	t.Helper()
	if r.Status != http.StatusNoContent || len(r.Body) != 0 {
		t.Fatalf("preflight = %d %q, want 204 with no body", r.Status, r.Body)
	}
	expectAllowed(t, r, origin, wildcard, v1)
	methods := headerTokens(r.Header, "Access-Control-Allow-Methods")
	for _, m := range []string{"GET", "POST", "PATCH", "DELETE"} {
		if !containsFold(methods, m) {
			t.Fatalf("Access-Control-Allow-Methods = %q, want %s in it", methods, m)
		}
	}
	headers := headerTokens(r.Header, "Access-Control-Allow-Headers")
	for _, h := range []string{"X-AnyLLM-Key", "Authorization", "Content-Type", "x-api-key"} {
		if !containsFold(headers, h) {
			t.Fatalf("Access-Control-Allow-Headers = %q, want %s in it", headers, h)
		}
	}
	for name, want := range map[string]string{
		"X-Content-Type-Options": "nosniff",
		"X-Frame-Options":        "DENY",
		"Referrer-Policy":        "strict-origin-when-cross-origin",
	} {
		if got := r.Header.Get(name); got != want {
			t.Fatalf("preflight %s = %q, want %q", name, got, want)
		}
	}
}

// hostileOrigins are origins a list naming appOrigin must not allow.
var hostileOrigins = []string{
	"https://evil.example.com",
	"https://app.example.com.evil.com",
	"https://evil-app.example.com",
	"http://app.example.com",
	"https://app.example.com:8443",
	"https://app.example.com/",
	"null",
	"https://app.example.com, https://evil.example.com",
	"*",
}

func TestCORSAndHeaders(t *testing.T) {
	t.Parallel()

	t.Run("cors off by default", func(t *testing.T) {
		t.Parallel()
		g := startChecked(t, gatewayConfig{Block: "provider openai\n\t\tprice openai:gpt-4o-mini 0.15 0.60"})
		for _, path := range []string{"/v1/chat/completions", "/v1/users", "/v1/pricing", "/health"} {
			r := preflight(t, g, path, appOrigin, "POST")
			expectNoCORS(t, r)
			if r.Status == http.StatusNoContent || r.Status == http.StatusOK {
				t.Fatalf("OPTIONS %s with CORS off = %d, answered as a preflight", path, r.Status)
			}
			if strings.HasPrefix(path, "/v1") {
				expectGatewayError(t, g, path, r, statusAny4xx, "", "")
			} else {
				checkHeaders(t, r, false)
			}
		}
		for _, h := range [][]string{bearer(masterKey), nil} {
			r := g.do("GET", "/v1/pricing", nil, append([]string{"Origin", appOrigin}, h...)...)
			expectNoCORS(t, r)
			checkHeaders(t, r, true)
		}
		expectNoCORS(t, g.do("GET", "/health", nil, "Origin", appOrigin))
		expectAlive(t, g)
	})

	t.Run("cors with a list of origins", func(t *testing.T) {
		t.Parallel()
		m := newMockUpstream(t)
		g := startChecked(t, gatewayConfig{Block: mockProvider(m) + "\n\t\t\tcors_allow_origins " + appOrigin + " " + otherOrigin})
		vk := g.newKey(map[string]any{"key_name": "browser"})

		t.Run("preflight from a listed origin", func(t *testing.T) {
			for _, origin := range []string{appOrigin, otherOrigin} {
				for _, req := range [][2]string{{"/v1/chat/completions", "POST"}, {"/v1/users", "DELETE"}, {"/v1/keys/x", "PATCH"}, {"/v1/models", "GET"}} {
					expectPreflightAnswer(t, preflight(t, g, req[0], origin, req[1]), origin, false, true)
				}
			}
		})
		t.Run("preflight carries the headers of every /v1 response", func(t *testing.T) {
			r := preflight(t, g, "/v1/chat/completions", appOrigin, "POST")
			expect(t, r, http.StatusNoContent)
			checkHeaders(t, r, true)
		})
		t.Run("other origins get nothing", func(t *testing.T) {
			for _, origin := range hostileOrigins {
				r := preflight(t, g, "/v1/chat/completions", origin, "POST")
				expectNoCORS(t, r)
				if r.Status == http.StatusNoContent {
					t.Fatalf("preflight from %q answered 204", origin)
				}
				for _, r := range []*response{
					g.do("GET", "/v1/pricing", nil, "Origin", origin, "X-AnyLLM-Key", "Bearer "+masterKey),
					g.do("POST", "/v1/chat/completions", `{"model":"mock:ok","messages":[{"role":"user","content":"hi"}]}`, "Origin", origin, "Authorization", "Bearer "+vk.Key),
					g.do("GET", "/v1/users", nil, "Origin", origin),
				} {
					expectNoCORS(t, r)
					checkHeaders(t, r, true)
				}
			}
		})
		t.Run("listed origin on real responses", func(t *testing.T) {
			for _, c := range []struct {
				name    string
				method  string
				path    string
				body    any
				headers []string
				status  int
			}{
				{"admin list", "GET", "/v1/pricing", nil, bearer(masterKey), 200},
				{"chat", "POST", "/v1/chat/completions", `{"model":"mock:ok","messages":[{"role":"user","content":"hi"}]}`, bearer(vk.Key), 200},
				{"stream", "POST", "/v1/chat/completions", `{"model":"mock:ok","stream":true,"messages":[{"role":"user","content":"hi"}]}`, bearer(vk.Key), 200},
				{"models", "GET", "/v1/models", nil, []string{"Authorization", "Bearer " + vk.Key}, 200},
				{"401", "GET", "/v1/users", nil, nil, 401},
				{"401 virtual key on admin", "GET", "/v1/users", nil, bearer(vk.Key), 401},
				{"404", "GET", "/v1/nope", nil, bearer(vk.Key), 404},
				{"405", "GET", "/v1/chat/completions", nil, bearer(vk.Key), 405},
				{"422", "POST", "/v1/chat/completions", `{"model":`, bearer(vk.Key), 422},
				{"502", "POST", "/v1/chat/completions", `{"model":"mock:err-500","messages":[{"role":"user","content":"hi"}]}`, bearer(vk.Key), 502},
			} {
				t.Run(c.name, func(t *testing.T) {
					r := g.on(t).do(c.method, c.path, c.body, append([]string{"Origin", appOrigin}, c.headers...)...)
					expect(t, r, c.status)
					checkHeaders(t, r, true)
					expectAllowed(t, r, appOrigin, false, true)
					if c.status >= 400 {
						expectGatewayError(t, g, c.path, r, c.status, "", "")
					}
				})
			}
		})
		t.Run("health", func(t *testing.T) {
			expectPreflightAnswer(t, preflight(t, g, "/health", appOrigin, "GET"), appOrigin, false, false)
			r := g.do("GET", "/health/readiness", nil, "Origin", appOrigin)
			expect(t, r, http.StatusOK)
			checkHeaders(t, r, false)
			if got := r.Header.Get("Access-Control-Allow-Origin"); got != appOrigin {
				t.Fatalf("/health/readiness Access-Control-Allow-Origin = %q", got)
			}
		})
		t.Run("admin routes refuse a virtual key", func(t *testing.T) {
			expectAdminClosedToVirtualKey(t, g, vk)
		})
	})

	t.Run("cors wildcard", func(t *testing.T) {
		t.Parallel()
		g := startChecked(t, gatewayConfig{Block: "cors_allow_origins *"})
		for _, origin := range []string{appOrigin, "https://anyone.example.net", "null"} {
			expectPreflightAnswer(t, preflight(t, g, "/v1/chat/completions", origin, "POST"), origin, true, true)
			for _, r := range []*response{
				g.do("GET", "/v1/pricing", nil, "Origin", origin, "X-AnyLLM-Key", "Bearer "+masterKey),
				g.do("GET", "/v1/users", nil, "Origin", origin),
			} {
				expectAllowed(t, r, origin, true, true)
				checkHeaders(t, r, true)
			}
			r := g.do("GET", "/health", nil, "Origin", origin)
			expectAllowed(t, r, origin, true, false)
			checkHeaders(t, r, false)
		}
		// No Origin, no CORS.
		expectNoCORS(t, g.do("GET", "/v1/pricing", nil, "X-AnyLLM-Key", "Bearer "+masterKey))
	})

	t.Run("security headers", func(t *testing.T) {
		t.Parallel()
		m := newMockUpstream(t)
		g := startChecked(t, gatewayConfig{Block: mockProvider(m)})
		vk := g.newKey(map[string]any{"key_name": "headers"})
		for _, c := range []struct {
			method, path string
			body         any
			headers      []string
			status       int
		}{
			{"GET", "/health", nil, nil, 200},
			{"HEAD", "/health", nil, nil, 200},
			{"GET", "/health/liveness", nil, nil, 200},
			{"GET", "/health/readiness", nil, nil, 200},
			{"GET", "/health/nope", nil, nil, 404},
			{"POST", "/health", `{}`, nil, 405},
			{"DELETE", "/health/readiness", nil, bearer(masterKey), 405},
			{"GET", "/v1/users", nil, bearer(masterKey), 200},
			{"GET", "/v1/users", nil, nil, 401},
			{"GET", "/v1/users", nil, []string{"Authorization", "Basic eDp5"}, 401},
			{"GET", "/v1/users/nobody", nil, bearer(masterKey), 404},
			{"PUT", "/v1/users", `{}`, bearer(masterKey), 405},
			{"POST", "/v1/users", `{"user_id":`, bearer(masterKey), 422},
			{"POST", "/v1/users", `{"user_id": "u", "pad": "` + strings.Repeat("x", 1<<20) + `"}`, bearer(masterKey), 413},
			{"POST", "/v1/chat/completions", `{"model":"mock:ok","messages":[{"role":"user","content":"hi"}]}`, bearer(vk.Key), 200},
			{"POST", "/v1/chat/completions", `{"model":"mock:ok","stream":true,"messages":[{"role":"user","content":"hi"}]}`, bearer(vk.Key), 200},
			{"POST", "/v1/chat/completions", `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`, bearer(vk.Key), 400},
			{"POST", "/v1/chat/completions", `{"model":"mock:err-503","messages":[{"role":"user","content":"hi"}]}`, bearer(vk.Key), 502},
			{"POST", "/v1/chat/completions", `{"model":"stuck:hang","messages":[{"role":"user","content":"hi"}]}`, bearer(vk.Key), 504},
			{"POST", "/v1/embeddings", `{"model":"mock:ok","input":"x"}`, bearer("gw-" + strings.Repeat("N", 64)), 401},
			{"GET", "/v1/models/mock:nope", nil, bearer(vk.Key), 404},
			{"OPTIONS", "/v1/models", nil, bearer(vk.Key), 405},
		} {
			t.Run(c.method+" "+c.path+" "+http.StatusText(c.status), func(t *testing.T) {
				r := g.on(t).do(c.method, c.path, c.body, c.headers...)
				expect(t, r, c.status)
				health := strings.HasPrefix(c.path, "/health")
				checkHeaders(t, r, !health)
				if c.status >= 400 && c.method != "HEAD" {
					expectGatewayError(t, g, c.path, r, c.status, "", "")
				}
			})
		}
		t.Run("readiness reveals nothing internal", func(t *testing.T) {
			for _, h := range [][]string{nil, bearer(masterKey), bearer(vk.Key)} {
				r := g.on(t).do("GET", "/health/readiness", nil, h...)
				expect(t, r, http.StatusOK)
				assertNoInternals(t, g, "/health/readiness", r.Body)
				m := r.Map(t)
				for k := range m {
					if k != "status" && k != "database" && k != "version" {
						t.Fatalf("/health/readiness has field %q: %s", k, r.Body)
					}
				}
			}
		})
		expectAlive(t, g)
	})
}

// expectAdminClosedToVirtualKey sends every admin method and path with vk
// in every credential header: each must be 401 Invalid master key, and
// nothing may change.
func expectAdminClosedToVirtualKey(t *testing.T, g *gateway, vk createdKey) {
	t.Helper()
	g = g.on(t)
	budget := g.newBudget(`{"max_budget": 5}`)
	before := storeSnapshot(t, g)
	uid, kid := vk.UserID, vk.ID
	routes := []struct {
		method, path string
		body         any
	}{
		{"GET", "/v1/users", nil},
		{"POST", "/v1/users", `{"user_id": "intruder"}`},
		{"GET", "/v1/users/" + uid, nil},
		{"PATCH", "/v1/users/" + uid, `{"blocked": false, "budget_id": null}`},
		{"DELETE", "/v1/users/" + uid, nil},
		{"GET", "/v1/users/" + uid + "/usage", nil},
		{"GET", "/v1/users/" + uid + "/usage?limit=1000", nil},
		{"GET", "/v1/keys", nil},
		{"GET", "/v1/keys?skip=0&limit=1000", nil},
		{"POST", "/v1/keys", `{"key_name": "escalate", "user_id": "` + uid + `"}`},
		{"GET", "/v1/keys/" + kid, nil},
		{"PATCH", "/v1/keys/" + kid, `{"rpm_limit": 100000, "max_budget": 1000000}`},
		{"DELETE", "/v1/keys/" + kid, nil},
		{"POST", "/v1/keys/" + kid + "/rotate", nil},
		{"GET", "/v1/budgets", nil},
		{"POST", "/v1/budgets", `{"max_budget": 1}`},
		{"GET", "/v1/budgets/" + budget, nil},
		{"PATCH", "/v1/budgets/" + budget, `{"max_budget": 1000000}`},
		{"DELETE", "/v1/budgets/" + budget, nil},
		{"POST", "/v1/pricing", `{"model_key": "mock:ok", "input_price_per_million": 0, "output_price_per_million": 0}`},
		{"DELETE", "/v1/pricing/mock:ok", nil},
		{"DELETE", "/v1/pricing/mock/ok", nil},
		{"GET", "/v1/usage", nil},
		{"GET", "/v1/usage?user_id=" + uid, nil},
		// The same routes spelt differently.
		{"GET", "/v1/users/", nil},
		{"GET", "/v1/keys/", nil},
		{"DELETE", "/v1/keys/" + kid + "/", nil},
		{"GET", "/v1/users/" + uid + "/usage/", nil},
		{"GET", "/v1/%75sers", nil},
		{"DELETE", "/v1/pricing/mock%3Aok", nil},
	}
	styles := [][]string{
		{"X-AnyLLM-Key", "Bearer " + vk.Key},
		{"AnyLLM-Key", "Bearer " + vk.Key},
		{"Authorization", "Bearer " + vk.Key},
		{"x-api-key", vk.Key},
	}
	for _, rt := range routes {
		for _, h := range styles {
			r := g.do(rt.method, rt.path, rt.body, h...)
			if r.Status != http.StatusUnauthorized {
				t.Fatalf("%s %s with a virtual key in %s = %d, want 401: %.300s", rt.method, rt.path, h[0], r.Status, r.Body)
			}
			expectGatewayError(t, g, rt.path, r, http.StatusUnauthorized, msgInvalidMaster, "")
			assertNoSecret(t, "401 body", r.Body, vk.Key)
		}
	}
	// Paths that leave the admin routes lead nowhere either.
	for _, path := range []string{
		"/v1/chat/../users", "/v1/models/../users", "/v1/models/..%2Fusers", "/v1/pricing/..%2Fusers",
		"/v1/pricing/../../v1/users", "/v1//users", "/v1/./users", "/v1/Users", "/v1/USAGE",
	} {
		r := g.do("GET", path, nil, "Authorization", "Bearer "+vk.Key)
		if r.Status == http.StatusOK {
			t.Fatalf("GET %s with a virtual key = 200: %.300s", path, r.Body)
		}
		expectGatewayError(t, g, path, r, statusAny4xx, "", "")
		if strings.Contains(string(r.Body), `"user_id"`) || strings.Contains(string(r.Body), `"key_prefix"`) {
			t.Fatalf("GET %s with a virtual key shows admin data: %.300s", path, r.Body)
		}
	}
	if after := storeSnapshot(t, g); after != before {
		t.Fatalf("a virtual key changed the store:\nbefore %s\nafter  %s", before, after)
	}
	// The key still works where it should.
	expect(t, g.do("GET", "/v1/pricing", nil, "Authorization", "Bearer "+vk.Key), http.StatusOK)
}
