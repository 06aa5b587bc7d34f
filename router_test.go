package llmgateway

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

// TestRouteLabelsAreTheMetricsEndpointLabels pins the endpoint labels the
// metrics have always used (any-llm's route templates), now read from the
// route table.
func TestRouteLabelsAreTheMetricsEndpointLabels(t *testing.T) {
	for path, want := range map[string]string{
		"/v1/chat/completions":               "/v1/chat/completions",
		"/v1/chat/completions/":              "/v1/chat/completions",
		"/v1/completions":                    "/v1/completions",
		"/v1/embeddings":                     "/v1/embeddings",
		"/v1/messages":                       "/v1/messages",
		"/v1/messages/count_tokens":          "other",
		"/v1/responses":                      "/v1/responses",
		"/v1/models":                         "/v1/models",
		"/v1/models/openrouter:openai/gpt-4": "/v1/models/{id}",
		"/v1/pricing":                        "/v1/pricing",
		"/v1/pricing/openai:gpt-4o":          "/v1/pricing/{id}",
		"/v1/pricing/openrouter:openai/x":    "/v1/pricing/{id}",
		"/v1/usage":                          "/v1/usage",
		"/v1/users":                          "/v1/users",
		"/v1/users/alice":                    "/v1/users/{id}",
		"/v1/users/alice/usage":              "/v1/users/{id}/usage",
		"/v1/users/alice/budget-history":     "/v1/users/{id}/budget-history",
		"/v1/keys/k1":                        "/v1/keys/{id}",
		"/v1/keys/k1/rotate":                 "/v1/keys/{id}/rotate",
		"/v1/keys/k1/budget-history":         "/v1/keys/{id}/budget-history",
		"/v1/budgets":                        "/v1/budgets",
		"/v1/budgets/b1":                     "/v1/budgets/{id}",
		"/health":                            "/health",
		"/health/liveness":                   "/health/liveness",
		"/health/readiness":                  "/health/readiness",
		"/v1":                                "other",
		"/v1/no-such-thing":                  "other",
		"/v1/chat":                           "other",
		"/v1/users/alice/bogus":              "other",
		"/v1/keys/a/b/c":                     "other",
		"/health/nope":                       "other",
	} {
		for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodPut} {
			if got := lookupRoute(method, path).label; got != want {
				t.Errorf("%s %s: label %q, want %q", method, path, got, want)
			}
		}
	}
}

func TestRouteTableAnswersUnknownPathsAndMethods(t *testing.T) {
	m := lookupRoute(http.MethodPut, "/v1/users/alice")
	if m.route != nil || m.err.Status != http.StatusMethodNotAllowed ||
		!slices.Equal(m.err.Header.Values("Allow"), []string{"GET", "PATCH", "DELETE"}) {
		t.Fatalf("PUT /v1/users/alice: %+v", m.err)
	}
	m = lookupRoute(http.MethodPost, "/health")
	if m.err == nil || !slices.Equal(m.err.Header.Values("Allow"), []string{"GET", "HEAD"}) {
		t.Fatalf("POST /health: %+v", m.err)
	}
	for _, path := range []string{"/v1", "/v1/", "/v1/users/a/b", "/v1//users", "/v1/users/%00", "/%76%31/users"} {
		if m := lookupRoute(http.MethodGet, path); m.route != nil || m.err.Status != http.StatusNotFound {
			t.Errorf("GET %s: %+v, want 404", path, m)
		}
	}
	m = lookupRoute(http.MethodGet, "/v1/users/a%2Fb")
	if m.route == nil || m.param != "a/b" {
		t.Fatalf("an escaped '/' in an id: %+v", m)
	}
	m = lookupRoute(http.MethodDelete, "/v1/pricing/openrouter:openai/gpt-4o/")
	if m.route == nil || m.param != "openrouter:openai/gpt-4o" || m.route.access != authMaster {
		t.Fatalf("a model key with '/': %+v", m)
	}
}

// TestEveryRouteIsReachable checks that no pattern shadows another: a path
// built from each pattern finds that pattern's row.
func TestEveryRouteIsReachable(t *testing.T) {
	for _, rt := range routes {
		var b strings.Builder
		for _, s := range rt.segs {
			switch {
			case s.rest:
				b.WriteString("/p:x/y")
			case s.literal == "":
				b.WriteString("/x")
			default:
				b.WriteString("/" + s.literal)
			}
		}
		m := lookupRoute(rt.method, b.String())
		if m.route == nil || m.route.pattern != rt.pattern || m.route.method != rt.method {
			t.Errorf("%s %s (as %s) routes to %+v", rt.method, rt.pattern, b.String(), m.route)
		}
	}
}

func BenchmarkLookupRoute(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		lookupRoute(http.MethodPost, "/v1/chat/completions")
	}
}
