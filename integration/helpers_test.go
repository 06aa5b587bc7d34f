package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Helpers shared by the admin, auth, reference-flow and persistence tests.

// on returns a view of g whose requests report failures on t, for use in
// subtests (a subtest must not call FailNow on its parent).
func (g *gateway) on(t *testing.T) *gateway {
	c := *g
	c.t = t
	return &c
}

// bearer returns X-AnyLLM-Key header pairs for token.
func bearer(token string) []string {
	return []string{"X-AnyLLM-Key", "Bearer " + token}
}

// keyPattern is the shape of a virtual key: gw- and 64 URL-safe characters.
var keyPattern = regexp.MustCompile(`^gw-[A-Za-z0-9_-]{64}$`)

// uuidPattern matches a canonical UUID string.
var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// errorBody is the contract's error shape.
type errorBody struct {
	Detail string `json:"detail"`
	Error  struct {
		Message string `json:"message"`
		Type    string `json:"type"`
		Code    string `json:"code"`
	} `json:"error"`
}

// expectErrorType is expectError plus the error type the status implies.
func expectErrorType(t *testing.T, r *response, status int, message, typ string) {
	t.Helper()
	expectError(t, r, status, message)
	var body errorBody
	r.JSON(t, &body)
	if body.Error.Type != typ {
		t.Fatalf("error type = %q, want %q; body: %s", body.Error.Type, typ, r.Body)
	}
}

// expectValidation checks a 422 in both error shapes whose message names field.
func expectValidation(t *testing.T, r *response, field string) {
	t.Helper()
	expect(t, r, http.StatusUnprocessableEntity)
	var body errorBody
	r.JSON(t, &body)
	if body.Detail == "" || body.Detail != body.Error.Message {
		t.Fatalf("detail %q and error.message %q must be equal and non-empty", body.Detail, body.Error.Message)
	}
	if body.Error.Type != "invalid_request_error" || body.Error.Code == "" {
		t.Fatalf("error type/code = %q/%q, want invalid_request_error/non-empty", body.Error.Type, body.Error.Code)
	}
	if field != "" && !strings.Contains(body.Detail, field) {
		t.Fatalf("422 message %q does not name %q", body.Detail, field)
	}
}

// expectNotFoundJSON checks a 404 in the contract's error shape, any message.
func expectNotFoundJSON(t *testing.T, r *response) {
	t.Helper()
	expect(t, r, http.StatusNotFound)
	var body errorBody
	r.JSON(t, &body)
	if body.Detail == "" || body.Detail != body.Error.Message || body.Error.Type != "not_found_error" || body.Error.Code == "" {
		t.Fatalf("404 body not in the contract's shape: %s", r.Body)
	}
}

// expectNoContent checks a 204 with an empty body.
func expectNoContent(t *testing.T, r *response) {
	t.Helper()
	expect(t, r, http.StatusNoContent)
	if len(r.Body) != 0 {
		t.Fatalf("204 with body %q", r.Body)
	}
}

// checkHeaders checks the security headers every gateway response carries,
// and, on /v1 paths, the cache headers and X-Request-Id.
func checkHeaders(t *testing.T, r *response, v1 bool) {
	t.Helper()
	want := map[string]string{
		"X-Content-Type-Options": "nosniff",
		"X-Frame-Options":        "DENY",
		"Referrer-Policy":        "strict-origin-when-cross-origin",
	}
	for name, v := range want {
		if got := r.Header.Values(name); len(got) != 1 || got[0] != v {
			t.Fatalf("%s = %q, want exactly %q", name, got, v)
		}
	}
	cc := r.Header.Values("Cache-Control")
	vary := varyTokens(r.Header)
	if v1 {
		if len(cc) != 1 || cc[0] != "private, no-store, no-cache" {
			t.Fatalf("Cache-Control = %q, want \"private, no-store, no-cache\"", cc)
		}
		if !containsFold(vary, "Authorization") {
			t.Fatalf("Vary = %q, want it to contain Authorization", r.Header.Values("Vary"))
		}
		if id := r.Header.Get("X-Request-Id"); id == "" {
			t.Fatalf("no X-Request-Id on a /v1 response (status %d)", r.Status)
		}
	} else {
		if len(cc) != 0 {
			t.Fatalf("Cache-Control = %q on a /health path, want none", cc)
		}
		if containsFold(vary, "Authorization") {
			t.Fatalf("Vary = %q on a /health path, want no Authorization", r.Header.Values("Vary"))
		}
	}
}

// varyTokens splits every Vary header into its comma-separated names.
func varyTokens(h http.Header) []string {
	var out []string
	for _, v := range h.Values("Vary") {
		for _, tok := range strings.Split(v, ",") {
			if tok = strings.TrimSpace(tok); tok != "" {
				out = append(out, tok)
			}
		}
	}
	return out
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

// assertNoSecret fails if any of the secrets occurs in data.
func assertNoSecret(t *testing.T, what string, data []byte, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && bytes.Contains(data, []byte(s)) {
			t.Fatalf("%s contains a secret (%.12s…)", what, s)
		}
	}
}

// filesContaining walks dir and returns the files whose bytes contain needle.
func filesContaining(t *testing.T, dir, needle string) []string {
	t.Helper()
	var hits []string
	n := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		n++
		if bytes.Contains(data, []byte(needle)) {
			hits = append(hits, path)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walking %s: %v", dir, err)
	}
	if n == 0 {
		t.Fatalf("no files under %s: the store did not write there", dir)
	}
	return hits
}

// doReader sends a request whose body is read from rd with no declared
// length, so it goes out chunked.
func (g *gateway) doReader(method, path string, rd io.Reader, headers ...string) *response {
	g.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, g.URL+path, io.NopCloser(rd))
	if err != nil {
		g.t.Fatal(err)
	}
	req.ContentLength = -1
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		g.t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return &response{Status: resp.StatusCode, Header: resp.Header, Body: data}
}

// gatedChat is a chat stream on the mock's gated model: it sends one chunk,
// then holds until the mock is released.
const gatedChat = `{"model":"mock:gated","stream":true,"messages":[{"role":"user","content":"hi"}]}`

// postStream posts the JSON body to path with key as a bearer token and
// returns the response unread, for a stream the test reads as it comes
// (the caller closes the body); ctx ends the request.
func (g *gateway) postStream(ctx context.Context, t *testing.T, path, body, key string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "POST", g.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// userOnBudget creates a user on a new budget of max USD and a key for it
// (with the key fields given), and returns the key's secret.
func (g *gateway) userOnBudget(t *testing.T, user string, max float64, key map[string]any) string {
	t.Helper()
	budget := g.newBudget(map[string]any{"max_budget": max})
	g.newUser(map[string]any{"user_id": user, "budget_id": budget})
	if key == nil {
		key = map[string]any{}
	}
	key["user_id"] = user
	return g.newKey(key).Key
}

// spend is the spend the admin API reports at path (a user or a key).
func (g *gateway) spend(t *testing.T, path string) float64 {
	t.Helper()
	var v struct{ Spend float64 }
	expect(t, g.adminDo("GET", path, nil), 200).JSON(t, &v)
	return v.Spend
}

// createdKey is the answer to POST /v1/keys (and rotate).
type createdKey struct {
	ID        string          `json:"id"`
	Key       string          `json:"key"`
	KeyName   *string         `json:"key_name"`
	KeyPrefix string          `json:"key_prefix"`
	UserID    string          `json:"user_id"`
	CreatedAt string          `json:"created_at"`
	ExpiresAt *string         `json:"expires_at"`
	IsActive  bool            `json:"is_active"`
	Metadata  json.RawMessage `json:"metadata"`
}

// newKey creates a virtual key through the admin API.
func (g *gateway) newKey(body any) createdKey {
	g.t.Helper()
	r := expect(g.t, g.adminDo("POST", "/v1/keys", body), http.StatusOK)
	var k createdKey
	r.JSON(g.t, &k)
	if !keyPattern.MatchString(k.Key) {
		g.t.Fatalf("created key %q does not look like gw- + 64 URL-safe characters", k.Key)
	}
	return k
}

// newUser creates a user through the admin API and returns the response.
func (g *gateway) newUser(body any) map[string]any {
	g.t.Helper()
	return expect(g.t, g.adminDo("POST", "/v1/users", body), http.StatusOK).Map(g.t)
}

// newBudget creates a budget and returns its id.
func (g *gateway) newBudget(body any) string {
	g.t.Helper()
	m := expect(g.t, g.adminDo("POST", "/v1/budgets", body), http.StatusOK).Map(g.t)
	id, _ := m["budget_id"].(string)
	if id == "" {
		g.t.Fatalf("budget without budget_id: %v", m)
	}
	return id
}

// list decodes a response that must be a bare JSON array of objects.
func list(t *testing.T, r *response) []map[string]any {
	t.Helper()
	expect(t, r, http.StatusOK)
	if b := bytes.TrimSpace(r.Body); len(b) == 0 || b[0] != '[' {
		t.Fatalf("list is not a bare JSON array: %s", r.Body)
	}
	var out []map[string]any
	r.JSON(t, &out)
	return out
}

// apiTimeOf parses a response time: RFC 3339 in UTC.
func apiTimeOf(t *testing.T, v any) time.Time {
	t.Helper()
	s, ok := v.(string)
	if !ok {
		t.Fatalf("time %v (%T) is not a string", v, v)
	}
	if !strings.HasSuffix(s, "Z") {
		t.Fatalf("time %q is not in UTC (Z)", s)
	}
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("time %q is not RFC 3339: %v", s, err)
	}
	return tm
}

// recent fails unless tm lies within a minute of now.
func recent(t *testing.T, what string, tm time.Time) {
	t.Helper()
	if d := time.Since(tm); d < -time.Minute || d > time.Minute {
		t.Fatalf("%s = %s, not close to now", what, tm)
	}
}

// jsonEqual reports whether a and b are the same JSON value.
func jsonEqual(t *testing.T, a, b any) bool {
	t.Helper()
	norm := func(v any) any {
		var data []byte
		switch x := v.(type) {
		case json.RawMessage:
			data = x
		case []byte:
			data = x
		case string:
			data = []byte(x)
		default:
			var err error
			if data, err = json.Marshal(x); err != nil {
				t.Fatal(err)
			}
		}
		var out any
		if err := json.Unmarshal(data, &out); err != nil {
			t.Fatalf("not JSON: %s", data)
		}
		return out
	}
	ja, _ := json.Marshal(norm(a))
	jb, _ := json.Marshal(norm(b))
	return bytes.Equal(ja, jb)
}

// mockProvider is the config of a provider "mock" served by m, with the
// model mock:ok priced at 1 and 2 USD per million tokens, and of the
// provider "stuck" (see stuckProvider).
func mockProvider(m *mockUpstream) string {
	return fmt.Sprintf(`provider mock {
			api_key {env.PROVIDER_KEY}
			base_url %s
		}
		%s
		price mock:ok 1 2`, m.BaseURL(), stuckProvider(m))
}

// stuckTimeout is the whole-call timeout of the provider "stuck".
const stuckTimeout = 2 * time.Second

// stuckProvider is the config of a provider "stuck" served by m with a
// short timeout, for the tests of that timeout (stuck:hang never answers,
// so only the timeout can end it). The provider "mock" keeps the default
// timeout (10 min), so no clock can cut a mock request or a held stream on
// a slow machine.
func stuckProvider(m *mockUpstream) string {
	return fmt.Sprintf(`provider stuck {
			api_key {env.PROVIDER_KEY}
			base_url %s
			timeout %s
		}`, m.BaseURL(), stuckTimeout)
}

// mockCost is what one mock:ok chat completion costs.
const mockCost = float64(mockPromptTokens)/1e6*1 + float64(mockCompletionTokens)/1e6*2

// chat sends one non-stream chat completion for mock:ok with a virtual key
// and waits until its usage record is listed.
func (g *gateway) chat(key string) {
	g.t.Helper()
	r := g.do("POST", "/v1/chat/completions", `{"model": "mock:ok", "messages": [{"role": "user", "content": "hi"}]}`, bearer(key)...)
	expect(g.t, r, http.StatusOK)
	id := r.Header.Get("X-Request-Id")
	waitFor(g.t, "the usage record of "+id, func() bool {
		return bytes.Contains(g.adminDo("GET", "/v1/usage?limit=1000", nil).Body, []byte(id))
	})
}

// startChecked is startGateway that also fails the test if the gateway
// reported a data race (when built with -race) or a panic.
func startChecked(t *testing.T, c gatewayConfig) *gateway {
	t.Helper()
	g := startGateway(t, c)
	checkOutputWhenDone(t, g)
	return g
}

// checkOutputWhenDone stops g when the test ends and fails the test if g
// reported a data race (when built with -race) or a panic.
func checkOutputWhenDone(t *testing.T, g *gateway) {
	t.Cleanup(func() {
		g.stop()
		out := g.output.String()
		for _, bad := range []string{"WARNING: DATA RACE", "panic:"} {
			if strings.Contains(out, bad) {
				t.Errorf("the gateway's output contains %q:\n%s", bad, out)
			}
		}
	})
}
