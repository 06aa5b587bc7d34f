package integration

import (
	"regexp"
	"testing"
)

// TestTimesAreRFC3339InUTC checks that times are RFC 3339 in UTC with at
// most microseconds, what every client's parser takes.
func TestTimesAreRFC3339InUTC(t *testing.T) {
	t.Parallel()
	g := startGateway(t, gatewayConfig{})
	rfc3339Micros := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$`)
	u := expect(t, g.adminDo("POST", "/v1/users", map[string]any{"user_id": "tim"}), 200).Map(t)
	k := expect(t, g.adminDo("POST", "/v1/keys", map[string]any{"user_id": "tim", "expires_at": "2099-01-02T03:04:05.123456789+02:00"}), 200).Map(t)
	for name, v := range map[string]any{"user created_at": u["created_at"], "key created_at": k["created_at"], "key expires_at": k["expires_at"]} {
		s, _ := v.(string)
		if !rfc3339Micros.MatchString(s) {
			t.Errorf("%s = %q, want RFC 3339 UTC with at most 6 fractional digits", name, s)
		}
	}
	if k["expires_at"] != "2099-01-02T01:04:05.123456Z" {
		t.Errorf("expires_at = %v, want it in UTC", k["expires_at"])
	}
}

// TestPassedOnResponsesAreNotTouched checks the contract's rule for the
// security headers: the gateway sets them on the responses it answers
// itself (/v1, /health), and adds nothing to, and changes nothing in, the
// response of a path it passes on to the site's next handler.
func TestPassedOnResponsesAreNotTouched(t *testing.T) {
	t.Parallel()
	// The site sets headers of its own before llm_gateway runs: on a passed-on
	// path they must reach the client as the site set them.
	g := startGateway(t, gatewayConfig{Site: `header X-Frame-Options SAMEORIGIN
	header Vary Accept-Encoding`})
	gatewayHeaders := []string{"X-Content-Type-Options", "Referrer-Policy", "Cache-Control", "X-Request-Id"}
	for _, path := range []string{"/some/site/page", "/", "/v1x", "/healthz", "/static/v1/users"} {
		r := expect(t, g.do("GET", path, nil, bearer(masterKey)...), 200)
		if string(r.Body) != "fallthrough" {
			t.Fatalf("GET %s did not reach the next handler: %q", path, r.Body)
		}
		for _, name := range gatewayHeaders {
			if v := r.Header.Values(name); len(v) != 0 {
				t.Errorf("GET %s: the gateway added %s = %q to the next handler's response", path, name, v)
			}
		}
		if v := r.Header.Values("X-Frame-Options"); len(v) != 1 || v[0] != "SAMEORIGIN" {
			t.Errorf("GET %s: X-Frame-Options = %q, want the site's own SAMEORIGIN untouched", path, v)
		}
		if v := r.Header.Values("Vary"); len(v) != 1 || v[0] != "Accept-Encoding" {
			t.Errorf("GET %s: Vary = %q, want the site's own Accept-Encoding untouched", path, v)
		}
	}
	// The gateway's own answers, success or error, keep every header of its
	// own, its X-Frame-Options replacing the site's, its Vary merged with it.
	for _, r := range []*response{
		expect(t, g.adminDo("GET", "/v1/users", nil), 200),
		expect(t, g.do("GET", "/v1/users", nil), 401),
		expect(t, g.adminDo("GET", "/v1/no-such-thing", nil), 404),
		expect(t, g.adminDo("PUT", "/v1/users", nil), 405),
	} {
		checkHeaders(t, r, true)
		if !containsFold(varyTokens(r.Header), "Accept-Encoding") {
			t.Errorf("Vary = %q, want the site's Accept-Encoding kept next to Authorization", r.Header.Values("Vary"))
		}
	}
	for _, path := range []string{"/health", "/health/liveness", "/health/readiness", "/health/nope"} {
		checkHeaders(t, g.do("GET", path, nil), false)
	}
}
