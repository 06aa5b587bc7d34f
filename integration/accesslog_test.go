package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoKeyInCaddysAccessLog: with a plain `log` directive in the site and
// no filter, no credential header the gateway reads appears in Caddy's
// access log, whatever the route and answer; the entries are still there,
// with the headers redacted.
func TestNoKeyInCaddysAccessLog(t *testing.T) {
	t.Parallel()
	logFile := filepath.Join(t.TempDir(), "access.log")
	for _, tt := range []struct{ name, site string }{
		{"plain log", "log"},
		{"log to a file", fmt.Sprintf("log {\n\t\toutput file %s\n\t}", logFile)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mock := newMockUpstream(t)
			g := startGateway(t, gatewayConfig{Block: mockProvider(mock), Site: tt.site})
			k := g.newKey(map[string]any{"user_id": "alice"})
			unknown := "gw-" + strings.Repeat("Q", 64)
			chat := `{"model":"mock:ok","messages":[{"role":"user","content":"hi"}]}`
			msg := `{"model":"mock:ok","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`
			requests := []struct {
				method, path, body string
				headers            []string
				status             int
			}{
				{"POST", "/v1/chat/completions", chat, []string{"X-AnyLLM-Key", "Bearer " + k.Key}, 200},
				{"POST", "/v1/chat/completions", chat, []string{"AnyLLM-Key", "Bearer " + k.Key}, 200},
				{"POST", "/v1/chat/completions", chat, []string{"Authorization", "Bearer " + k.Key}, 200},
				{"POST", "/v1/messages", msg, []string{"x-api-key", k.Key}, 200},
				{"POST", "/v1/messages/count_tokens", msg, []string{"x-api-key", k.Key}, 200},
				{"POST", "/v1/messages", msg, []string{"x-api-key", unknown}, 401},
				{"POST", "/v1/chat/completions", chat, []string{"X-AnyLLM-Key", "Bearer " + unknown}, 401},
				{"GET", "/v1/models", "", []string{"x-api-key", k.Key}, 200},
				{"GET", "/v1/users", "", []string{"X-AnyLLM-Key", "Bearer " + masterKey}, 200},
				{"GET", "/v1/users", "", []string{"x-api-key", masterKey}, 200},
				{"GET", "/v1/nope", "", []string{"x-api-key", masterKey}, 404},
				{"GET", "/health", "", []string{"x-api-key", masterKey}, 200},
			}
			for _, rq := range requests {
				var body any
				if rq.body != "" {
					body = rq.body
				}
				expect(t, g.on(t).do(rq.method, rq.path, body, rq.headers...), rq.status)
			}
			g.stop() // flushes the logs

			out := g.output.String()
			if tt.site != "log" {
				data, err := os.ReadFile(logFile)
				if err != nil {
					t.Fatal(err)
				}
				out = string(data)
			}
			assertNoSecret(t, "the access log", []byte(out), k.Key, masterKey, unknown, providerKey)
			if n := strings.Count(out, `"msg":"handled request"`); n < len(requests) {
				t.Fatalf("%d access log entries for %d requests:\n%s", n, len(requests), out)
			}
			for _, want := range []string{`"X-Api-Key":["REDACTED"]`, `"X-Anyllm-Key":["REDACTED"]`, `"Anyllm-Key":["REDACTED"]`, `"uri":"/v1/messages/count_tokens"`} {
				if !strings.Contains(out, want) {
					t.Fatalf("the access log has no %s:\n%s", want, out)
				}
			}
		})
	}
}

// TestAccessLogEntryShowsTheRequestAsReceived: the entry the gateway writes
// in Caddy's stead logs the request as the client sent it, as Caddy's own
// entries do, not as a rewrite before the gateway left it (it logged
// /v1/chat/completions for /api/v1/chat/completions).
func TestAccessLogEntryShowsTheRequestAsReceived(t *testing.T) {
	t.Parallel()
	mock := newMockUpstream(t)
	g := startGateway(t, gatewayConfig{Block: mockProvider(mock), Site: "log\n\turi strip_prefix /api"})
	k := g.newKey(map[string]any{"user_id": "alice"})
	expect(t, g.do("POST", "/api/v1/chat/completions", `{"model":"mock:ok","messages":[{"role":"user","content":"hi"}]}`, "x-api-key", k.Key), 200)
	g.stop() // flushes the logs
	out := g.output.String()
	assertNoSecret(t, "the access log", []byte(out), k.Key, masterKey, providerKey)
	if !strings.Contains(out, `"uri":"/api/v1/chat/completions"`) || !strings.Contains(out, `"X-Api-Key":["REDACTED"]`) {
		t.Fatalf("no entry for /api/v1/chat/completions with the key redacted:\n%s", out)
	}
}
