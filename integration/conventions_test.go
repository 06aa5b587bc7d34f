package integration

import (
	"regexp"
	"testing"
)

// TestTimesAndPassThroughHeaders checks two conventions: times are RFC 3339
// in UTC with at most microseconds (what every client's parser takes), and
// requests the gateway passes to the next handler still carry the security
// headers (but not the gateway's no-store cache rules).
func TestTimesAndPassThroughHeaders(t *testing.T) {
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

	r := expect(t, g.do("GET", "/some/site/page", nil), 200)
	if string(r.Body) != "fallthrough" {
		t.Fatalf("a path outside /v1 and /health did not reach the next handler: %q", r.Body)
	}
	for name, want := range map[string]string{
		"X-Content-Type-Options": "nosniff",
		"X-Frame-Options":        "DENY",
		"Referrer-Policy":        "strict-origin-when-cross-origin",
	} {
		if got := r.Header.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if r.Header.Get("Cache-Control") != "" || r.Header.Get("X-Request-Id") != "" {
		t.Errorf("the gateway's /v1 headers leaked onto another handler's response: %v", r.Header)
	}
}
