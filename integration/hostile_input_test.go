package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Hostile input (issue 6, item 4): every request below must be refused with
// a JSON 4xx in the contract's shape and must leave the store exactly as it
// was, with nothing sent to the provider and the process still alive.

// statusAny4xx in a hostile case accepts any 4xx, for inputs the contract
// does not pin to one status.
const statusAny4xx = 0

// hostileCase is one hostile request and the refusal it must get.
type hostileCase struct {
	name    string
	method  string
	path    string
	body    any      // string or []byte sent verbatim; nil for none
	chunked bool     // send the body without a Content-Length
	headers []string // credentials and extra headers, as name, value pairs
	// contentType replaces application/json when set.
	contentType string
	// raw, when set, is sent as is on a new TCP connection instead.
	raw string
	// status is the expected status (statusAny4xx: any 4xx).
	status int
	// message is the exact expected message, if not empty.
	message string
	// field must occur in the message, if not empty.
	field string
	// protocolOK accepts a plain-text 400 or 431 written by Go's HTTP
	// server itself, before the gateway sees the request (for bytes no
	// HTTP/1.1 server accepts).
	protocolOK bool
}

// contractErrorType is the error type the contract's table gives a status.
func contractErrorType(status int) string {
	switch status {
	case 400, 409, 413, 422:
		return "invalid_request_error"
	case 401:
		return "authentication_error"
	case 403:
		return "permission_error"
	case 404:
		return "not_found_error"
	case 429:
		return "rate_limit_error"
	case 502, 504:
		return "upstream_error"
	case 500, 503:
		return "server_error"
	}
	if status >= 400 && status < 500 {
		return "invalid_request_error" // 405 and the like: not in the table
	}
	return ""
}

// expectGatewayError checks an error the gateway itself produced: its status
// (statusAny4xx: any 4xx), the contract's two shapes with one non-empty
// message (exactly message, or containing field, when given), the type the
// status implies, a code, a JSON content type, the headers of every /v1
// response, and no internal detail in the body.
func expectGatewayError(t *testing.T, g *gateway, path string, r *response, status int, message, field string) {
	t.Helper()
	if status == statusAny4xx {
		if r.Status < 400 || r.Status > 499 {
			t.Fatalf("status = %d, want a 4xx; body: %.300s", r.Status, r.Body)
		}
	} else if r.Status != status {
		t.Fatalf("status = %d, want %d; body: %.300s", r.Status, status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type = %q, want JSON; body: %.300s", ct, r.Body)
	}
	var body errorBody
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Fatalf("error body is not JSON: %v: %.300s", err, r.Body)
	}
	if body.Detail == "" || body.Detail != body.Error.Message {
		t.Fatalf("detail %q and error.message %q must be equal and non-empty", body.Detail, body.Error.Message)
	}
	if message != "" && body.Detail != message {
		t.Fatalf("message = %.300q, want %q", body.Detail, message)
	}
	if field != "" && !strings.Contains(body.Detail, field) {
		t.Fatalf("message %.300q does not name %q", body.Detail, field)
	}
	if want := contractErrorType(r.Status); body.Error.Type != want && !(r.Status == 403 && body.Error.Type == "budget_exceeded") {
		t.Fatalf("error.type = %q, want %q for %d", body.Error.Type, want, r.Status)
	}
	if body.Error.Code == "" {
		t.Fatalf("error.code is empty: %.300s", r.Body)
	}
	checkHeaders(t, r, !strings.HasPrefix(path, "/health"))
	assertNoInternals(t, g, "error body", r.Body)
}

// internalMarkers are fragments of Go errors, stack traces and file paths
// that no response body may contain.
var internalMarkers = []string{
	"badger", "Badger", ".go:", "goroutine ", "panic", "runtime error", "json: ",
	"dial tcp", "connection refused", "connection reset", "broken pipe", "context deadline exceeded",
	"context canceled", "unexpected EOF", "net/http", "/tmp/", "/home/", "/work/", "/var/",
	"storage_path", "invalid character '", "cannot unmarshal", "sk-provider",
}

// assertNoInternals fails if body reveals the storage path, a Go error,
// a file path or a secret.
func assertNoInternals(t *testing.T, g *gateway, what string, body []byte) {
	t.Helper()
	if g.Dir != "" && bytes.Contains(body, []byte(g.Dir)) {
		t.Fatalf("%s contains the storage path %s: %.300s", what, g.Dir, body)
	}
	for _, m := range internalMarkers {
		if bytes.Contains(body, []byte(m)) {
			t.Fatalf("%s contains %q: %.300s", what, m, body)
		}
	}
	assertNoSecret(t, what, body, masterKey, providerKey)
}

// send performs a hostile case and returns the response.
func (c hostileCase) send(t *testing.T, g *gateway) *response {
	t.Helper()
	if c.raw != "" {
		return rawHTTP(t, g, c.raw)
	}
	var rd io.Reader
	switch b := c.body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		t.Fatalf("body of type %T", c.body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if c.chunked && rd != nil {
		rd = io.NopCloser(rd) // hides the length, so the body goes out chunked
	}
	req, err := http.NewRequestWithContext(ctx, c.method, g.URL+c.path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if c.chunked {
		req.ContentLength = -1
	}
	if rd != nil {
		ct := "application/json"
		if c.contentType != "" {
			ct = c.contentType
		}
		req.Header.Set("Content-Type", ct)
	}
	for i := 0; i+1 < len(c.headers); i += 2 {
		req.Header.Add(c.headers[i], c.headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %.80s: %v", c.method, c.path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %.80s: reading body: %v", c.method, c.path, err)
	}
	return &response{Status: resp.StatusCode, Header: resp.Header, Body: data}
}

// rawHTTP writes raw as one request on a new connection to the gateway and
// reads the response. It is how requests that Go's client refuses to send
// (CR or LF inside a header value) reach the server.
func rawHTTP(t *testing.T, g *gateway, raw string) *response {
	t.Helper()
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(g.URL, "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the response to a raw request: %v", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the body of a raw response: %v", err)
	}
	return &response{Status: resp.StatusCode, Header: resp.Header, Body: data}
}

// rawRequest builds an HTTP/1.1 request with the given header lines
// (written exactly as given, each followed by CRLF) and body.
func rawRequest(method, path, body string, headerLines ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n", method, path)
	for _, h := range headerLines {
		b.WriteString(h)
		b.WriteString("\r\n")
	}
	if body != "" {
		fmt.Fprintf(&b, "Content-Type: application/json\r\nContent-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n")
	b.WriteString(body)
	return b.String()
}

// storeSnapshot is everything the admin API shows: users, keys (without
// last_used_at, which authenticated requests may move), budgets, prices
// and usage records, as normalised JSON.
func storeSnapshot(t *testing.T, g *gateway) string {
	t.Helper()
	var out strings.Builder
	for _, path := range []string{"/v1/users?limit=1000", "/v1/keys?limit=1000", "/v1/budgets?limit=1000", "/v1/pricing?limit=1000", "/v1/usage?limit=1000"} {
		r := g.adminDo("GET", path, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("snapshot: GET %s = %d: %.300s", path, r.Status, r.Body)
		}
		var v any
		r.JSON(t, &v)
		data, err := json.Marshal(dropLastUsed(v))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&out, "%s: %s\n", path, data)
	}
	return out.String()
}

// expectAlive fails unless the process is running and answers /health.
func expectAlive(t *testing.T, g *gateway) {
	t.Helper()
	select {
	case <-g.exited:
		t.Fatalf("caddy exited:\n%s", tail(g.output.String(), 4000))
	default:
	}
	r, err := g.tryDo("GET", "/health", nil)
	if err != nil || r.Status != http.StatusOK {
		t.Fatalf("GET /health after hostile input: %v %v\n%s", r, err, tail(g.output.String(), 4000))
	}
}

// expectNoPanic fails if the gateway's output reports a panic or a race.
func expectNoPanic(t *testing.T, g *gateway) {
	t.Helper()
	out := g.output.String()
	for _, bad := range []string{"panic:", "WARNING: DATA RACE", "fatal error:"} {
		if strings.Contains(out, bad) {
			t.Fatalf("the gateway's output contains %q:\n%s", bad, tail(out, 8000))
		}
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// nested returns n opening brackets of open followed, if closeToo, by the
// matching closing ones: JSON nested n levels deep.
func nested(open, closing string, n int, closeToo bool) string {
	s := strings.Repeat(open, n)
	if closeToo {
		s += strings.Repeat(closing, n)
	}
	return s
}

// oneOff returns key with its i-th character replaced by another valid
// key character.
func oneOff(key string, i int) string {
	b := []byte(key)
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

// startHostileInputGateway starts a gateway in front of the usual mock with
// a 64 KiB inference body limit and Caddy's header limit raised to 1 MiB, so
// that ids longer than Badger's 65000-byte key limit reach the gateway; it
// creates user alice and a virtual key for her.
func startHostileInputGateway(t *testing.T) *inferenceGateway {
	t.Helper()
	mock := newMockUpstream(t)
	g := startGateway(t, gatewayConfig{
		Block:  mockProvider(mock) + "\n\t\tprice mock:emb 1 1\n\t\tmax_request_body 64KiB",
		Global: "servers {\n\t\tmax_header_size 1MiB\n\t}",
	})
	expect(t, g.adminDo("POST", "/v1/users", map[string]any{"user_id": "alice"}), http.StatusOK)
	var k struct{ ID, Key string }
	expect(t, g.adminDo("POST", "/v1/keys", map[string]any{"user_id": "alice", "key_name": "app"}), http.StatusOK).JSON(t, &k)
	return &inferenceGateway{gateway: g, mock: mock, key: k.Key, kid: k.ID}
}

func TestHostileInput(t *testing.T) {
	t.Parallel()

	t.Run("default inference body limit is 10 MiB", func(t *testing.T) {
		t.Parallel()
		ig := startInferenceGateway(t, "")
		before := storeSnapshot(t, ig.gateway)
		// Just under the limit is forwarded; 11 MiB is refused unread.
		msg := `{"model":"mock:ok","messages":[{"role":"user","content":"`
		end := `"}]}`
		under := msg + strings.Repeat("a", 10<<20-len(msg)-len(end)) + end
		expect(t, ig.do("POST", "/v1/chat/completions", under, bearer(ig.key)...), http.StatusOK)
		before = storeSnapshot(t, ig.gateway)
		calls := len(ig.mock.Requests())
		over := msg + strings.Repeat("a", 11<<20) + end
		for _, c := range []hostileCase{
			{name: "11 MiB", method: "POST", path: "/v1/chat/completions", body: over, headers: bearer(ig.key)},
			{name: "11 MiB chunked", method: "POST", path: "/v1/chat/completions", body: over, chunked: true, headers: bearer(ig.key)},
			{name: "10 MiB + 1", method: "POST", path: "/v1/chat/completions", body: under + " ", headers: bearer(ig.key)},
			{name: "11 MiB embeddings", method: "POST", path: "/v1/embeddings", body: over, headers: bearer(ig.key)},
			{name: "100k arrays", method: "POST", path: "/v1/chat/completions", body: nested("[", "]", 100_000, true), headers: bearer(ig.key), status: 422},
			{name: "100k unclosed arrays", method: "POST", path: "/v1/chat/completions", body: nested("[", "", 100_000, false), headers: bearer(ig.key), status: 422},
			{name: "1M arrays in a field", method: "POST", path: "/v1/chat/completions", headers: bearer(ig.key), status: 422,
				body: `{"model":"mock:ok","messages":[{"role":"user","content":"hi"}],"tools":` + nested("[", "]", 1_000_000, true) + `}`},
			{name: "100k objects", method: "POST", path: "/v1/embeddings", headers: bearer(ig.key), status: 422,
				body: `{"model":"mock:emb","input":` + nested(`{"a":`, "}", 100_000, false) + "1" + strings.Repeat("}", 100_000) + `}`},
			{name: "100k arrays, master key", method: "POST", path: "/v1/chat/completions", body: nested("[", "]", 100_000, true), headers: bearer(masterKey), status: 422},
		} {
			t.Run(c.name, func(t *testing.T) {
				status := c.status
				if status == 0 {
					status = http.StatusRequestEntityTooLarge
				}
				r := c.send(t, ig.gateway)
				expectGatewayError(t, ig.gateway, c.path, r, status, "", "")
				expectAlive(t, ig.gateway)
			})
		}
		if after := storeSnapshot(t, ig.gateway); after != before {
			t.Fatalf("the store changed:\nbefore %s\nafter  %s", before, after)
		}
		if n := len(ig.mock.Requests()); n != calls {
			t.Fatalf("%d oversized requests reached the provider", n-calls)
		}
		expectAlive(t, ig.gateway)
		expectNoPanic(t, ig.gateway)
	})

	ig := startHostileInputGateway(t)
	g := ig.gateway
	// Something in every table, so that "unchanged" means something.
	budget := g.newBudget(`{"max_budget": 100, "budget_duration_sec": 86400}`)
	expect(t, g.adminDo("PATCH", "/v1/users/alice", map[string]any{"alias": "Alice", "budget_id": budget, "metadata": map[string]any{"team": "a"}}), http.StatusOK)
	expect(t, g.adminDo("POST", "/v1/pricing", `{"model_key": "openai:gpt-4o-mini", "input_price_per_million": 0.15, "output_price_per_million": 0.6}`), http.StatusOK)
	expect(t, g.do("POST", "/v1/chat/completions", `{"model":"mock:ok","messages":[{"role":"user","content":"hi"}]}`, bearer(ig.key)...), http.StatusOK)

	mk, vk, kid := bearer(masterKey), bearer(ig.key), ig.kid
	long := strings.Repeat("x", 10_000)
	longer := strings.Repeat("y", 70_000) // over Badger's 65000-byte key limit
	const chat, emb, msgs = "/v1/chat/completions", "/v1/embeddings", `"messages":[{"role":"user","content":"hi"}]`
	okChat := `{"model":"mock:ok",` + msgs + `}`
	pad := func(prefix, suffix string, size int) string {
		return prefix + strings.Repeat("p", size-len(prefix)-len(suffix)) + suffix
	}
	bigAdmin := pad(`{"key_name": "big", "metadata": {"pad": "`, `"}}`, 1<<20+1)
	bigChat := pad(`{"model":"mock:ok","messages":[{"role":"user","content":"`, `"}]}`, 64<<10+1)
	deepArrays := nested("[", "]", 100_000, true)
	deepOpen := nested("[", "", 100_000, false)
	deepObjects := nested(`{"a":`, "}", 100_000, false) + "1" + strings.Repeat("}", 100_000)
	// Inference bodies must fit in 64 KiB here; 100k levels are sent to
	// the default limit's gateway above.
	deepArrays30k := nested("[", "]", 30_000, true)
	deepOpen60k := nested("[", "", 60_000, false)
	deepObjects10k := nested(`{"a":`, "}", 10_000, false) + "1" + strings.Repeat("}", 10_000)

	cases := []hostileCase{
		// Malformed and truncated JSON.
		{name: "admin trailing comma", method: "POST", path: "/v1/users", body: `{"user_id": "mal",}`, status: 422},
		{name: "admin truncated", method: "POST", path: "/v1/keys", body: `{"key_name": "tr`, status: 422},
		{name: "admin truncated escape", method: "POST", path: "/v1/users", body: `{"user_id": "a\u00`, status: 422},
		{name: "admin single quotes", method: "POST", path: "/v1/budgets", body: `{'max_budget': 1}`, status: 422},
		{name: "admin NaN", method: "POST", path: "/v1/budgets", body: `{"max_budget": NaN}`, status: 422},
		{name: "admin not an object", method: "POST", path: "/v1/budgets", body: `[1, 2]`, status: 422},
		{name: "admin two objects", method: "POST", path: "/v1/pricing", body: `{"model_key": "a:b", "input_price_per_million": 1, "output_price_per_million": 1}{}`, status: 422},
		{name: "admin patch truncated", method: "PATCH", path: "/v1/keys/" + kid, body: `{"is_active": fal`, status: 422},
		{name: "inference truncated", method: "POST", path: chat, body: `{"model":"mock:ok","messages":[{"role":"user","content":"hi"`, status: 422},
		{name: "inference trailing garbage", method: "POST", path: chat, body: okChat + `x`, status: 422},
		{name: "inference two objects", method: "POST", path: chat, body: okChat + okChat, status: 422},
		{name: "inference not an object", method: "POST", path: chat, body: `["mock:ok"]`, status: 422},
		{name: "inference null", method: "POST", path: chat, body: `null`, status: 422},
		{name: "inference string", method: "POST", path: emb, body: `"mock:emb"`, status: 422},
		{name: "inference empty body", method: "POST", path: chat, body: "", status: 422},
		{name: "inference no body", method: "POST", path: chat, status: 422},
		{name: "inference whitespace body", method: "POST", path: emb, body: " \n\t ", status: 422},

		// Wrong types, named in the 422.
		{name: "max_budget string", method: "POST", path: "/v1/budgets", body: `{"max_budget": "10"}`, status: 422, field: "max_budget"},
		{name: "max_budget overflow", method: "POST", path: "/v1/budgets", body: `{"max_budget": 1e400}`, status: 422, field: "max_budget"},
		{name: "max_budget negative", method: "POST", path: "/v1/budgets", body: `{"max_budget": -1}`, status: 422, field: "max_budget"},
		{name: "budget_duration_sec float", method: "POST", path: "/v1/budgets", body: `{"budget_duration_sec": 1.5}`, status: 422, field: "budget_duration_sec"},
		{name: "budget_duration_sec overflow", method: "POST", path: "/v1/budgets", body: `{"budget_duration_sec": 99999999999999999999}`, status: 422, field: "budget_duration_sec"},
		{name: "rpm_limit string", method: "POST", path: "/v1/keys", body: `{"rpm_limit": "5"}`, status: 422, field: "rpm_limit"},
		{name: "allowed_models object", method: "POST", path: "/v1/keys", body: `{"allowed_models": {"mock:ok": true}}`, status: 422, field: "allowed_models"},
		{name: "expires_at number", method: "POST", path: "/v1/keys", body: `{"expires_at": 1767225600}`, status: 422, field: "expires_at"},
		{name: "is_active string", method: "PATCH", path: "/v1/keys/" + kid, body: `{"is_active": "false"}`, status: 422, field: "is_active"},
		{name: "metadata array", method: "PATCH", path: "/v1/users/alice", body: `{"metadata": ["x"]}`, status: 422, field: "metadata"},
		{name: "blocked number", method: "PATCH", path: "/v1/users/alice", body: `{"blocked": 1}`, status: 422, field: "blocked"},
		{name: "model_key array", method: "POST", path: "/v1/pricing", body: `{"model_key": ["a:b"], "input_price_per_million": 1, "output_price_per_million": 1}`, status: 422, field: "model_key"},
		{name: "price string", method: "POST", path: "/v1/pricing", body: `{"model_key": "a:b", "input_price_per_million": "1", "output_price_per_million": 1}`, status: 422, field: "input_price_per_million"},
		{name: "budget max_budget bool", method: "PATCH", path: "/v1/budgets/" + budget, body: `{"max_budget": true}`, status: 422, field: "max_budget"},
		{name: "model missing", method: "POST", path: chat, body: `{` + msgs + `}`, status: 422, field: "model"},
		{name: "model number", method: "POST", path: chat, body: `{"model": 5,` + msgs + `}`, status: 422, field: "model"},
		{name: "model null", method: "POST", path: chat, body: `{"model": null,` + msgs + `}`, status: 422, field: "model"},
		{name: "model array", method: "POST", path: chat, body: `{"model": ["mock:ok"],` + msgs + `}`, status: 422, field: "model"},
		{name: "model object", method: "POST", path: emb, body: `{"model": {"name": "mock:emb"}, "input": "x"}`, status: 422, field: "model"},
		{name: "model bool", method: "POST", path: chat, body: `{"model": true,` + msgs + `}`, status: 422, field: "model"},
		{name: "user number", method: "POST", path: chat, body: `{"model": "mock:ok", "user": 5,` + msgs + `}`, status: 422, field: "user"},
		{name: "user object", method: "POST", path: chat, body: `{"model": "mock:ok", "user": {"id": "alice"},` + msgs + `}`, status: 422, field: "user"},

		// Unknown fields on admin routes: 422 naming the field.
		{name: "user is_admin", method: "POST", path: "/v1/users", body: `{"user_id": "u1", "is_admin": true}`, status: 422, field: "is_admin"},
		{name: "user spend", method: "POST", path: "/v1/users", body: `{"user_id": "u1", "spend": -100}`, status: 422, field: "spend"},
		{name: "user deleted_at", method: "POST", path: "/v1/users", body: `{"user_id": "u1", "deleted_at": null}`, status: 422, field: "deleted_at"},
		{name: "key chosen secret", method: "POST", path: "/v1/keys", body: `{"key_name": "k", "key": "gw-` + strings.Repeat("A", 64) + `"}`, status: 422, field: "key"},
		{name: "key chosen hash", method: "POST", path: "/v1/keys", body: `{"key_name": "k", "key_hash": "00"}`, status: 422, field: "key_hash"},
		{name: "key chosen id", method: "POST", path: "/v1/keys", body: `{"id": "mine"}`, status: 422, field: "id"},
		{name: "key spend", method: "PATCH", path: "/v1/keys/" + kid, body: `{"spend": 0}`, status: 422, field: "spend"},
		{name: "key moved to another user", method: "PATCH", path: "/v1/keys/" + kid, body: `{"user_id": "mallory"}`, status: 422, field: "user_id"},
		{name: "budget chosen id", method: "POST", path: "/v1/budgets", body: `{"max_budget": 1, "budget_id": "mine"}`, status: 422, field: "budget_id"},
		{name: "budget created_at", method: "PATCH", path: "/v1/budgets/" + budget, body: `{"created_at": "2020-01-01T00:00:00Z"}`, status: 422, field: "created_at"},
		{name: "price currency", method: "POST", path: "/v1/pricing", body: `{"model_key": "a:b", "input_price_per_million": 1, "output_price_per_million": 1, "currency": "EUR"}`, status: 422, field: "currency"},
		{name: "user renamed", method: "PATCH", path: "/v1/users/alice", body: `{"user_id": "root"}`, status: 422, field: "user_id"},

		// Huge bodies.
		{name: "admin 1 MiB + 1", method: "POST", path: "/v1/keys", body: bigAdmin, status: 413},
		{name: "admin 1 MiB + 1 chunked", method: "POST", path: "/v1/keys", body: bigAdmin, chunked: true, status: 413},
		{name: "admin 1 MiB + 1 patch", method: "PATCH", path: "/v1/keys/" + kid, body: bigAdmin, status: 413},
		{name: "admin 1 MiB + 1 budgets", method: "POST", path: "/v1/budgets", body: `{"max_budget": 1` + strings.Repeat(" ", 1<<20) + `}`, status: 413},
		{name: "admin 1 MiB + 1 pricing", method: "POST", path: "/v1/pricing", body: pad(`{"model_key": "a:`, `", "input_price_per_million": 1, "output_price_per_million": 1}`, 1<<20+1), status: 413},
		{name: "inference 64 KiB + 1", method: "POST", path: chat, body: bigChat, status: 413},
		{name: "inference 64 KiB + 1 chunked", method: "POST", path: chat, body: bigChat, chunked: true, status: 413},
		{name: "inference 64 KiB + 1 embeddings", method: "POST", path: emb, body: bigChat, status: 413},
		{name: "inference 64 KiB + 1 responses", method: "POST", path: "/v1/responses", body: bigChat, status: 413},
		{name: "inference 64 KiB + 1 messages", method: "POST", path: "/v1/messages", body: bigChat, status: 413},
		{name: "inference 5 MiB", method: "POST", path: chat, body: pad(`{"model":"mock:ok","x":"`, `"}`, 5<<20), status: 413},

		// Deeply nested JSON.
		{name: "admin 100k arrays", method: "POST", path: "/v1/users", body: deepArrays, status: 422},
		{name: "admin 100k unclosed arrays", method: "POST", path: "/v1/keys", body: deepOpen, status: 422},
		{name: "admin 100k objects in metadata", method: "POST", path: "/v1/users", body: `{"user_id": "deep", "metadata": ` + deepObjects + `}`, status: 422},
		{name: "admin 100k arrays in a patch", method: "PATCH", path: "/v1/users/alice", body: `{"metadata": {"a": ` + deepArrays + `}}`, status: 422},
		{name: "inference 30k arrays", method: "POST", path: chat, body: deepArrays30k, status: 422},
		{name: "inference 60k unclosed arrays", method: "POST", path: chat, body: deepOpen60k, status: 422},
		{name: "inference 30k arrays in a field", method: "POST", path: chat, body: `{"model":"mock:ok",` + msgs + `,"tools":` + deepArrays30k + `}`, status: 422},
		{name: "inference 10k objects", method: "POST", path: emb, body: `{"model":"mock:emb","input":` + deepObjects10k + `}`, status: 422},
		{name: "inference 60k arrays before model", method: "POST", path: chat, body: `{"x":` + deepOpen60k, status: 422},

		// Invalid UTF-8.
		{name: "admin invalid UTF-8 id", method: "POST", path: "/v1/users", body: "{\"user_id\": \"\xff\xfe\"}", status: 422},
		{name: "admin invalid UTF-8 alias", method: "PATCH", path: "/v1/users/alice", body: "{\"alias\": \"\xc3\x28\"}", status: 422},
		{name: "admin UTF-8 surrogate", method: "POST", path: "/v1/keys", body: "{\"key_name\": \"\xed\xa0\x80\"}", status: 422},
		{name: "admin invalid UTF-8 in a key", method: "POST", path: "/v1/budgets", body: "{\"max_\xffbudget\": 1}", status: 422},
		{name: "inference invalid UTF-8 content", method: "POST", path: chat, body: "{\"model\":\"mock:ok\",\"messages\":[{\"role\":\"user\",\"content\":\"\xff\"}]}", status: 422},
		{name: "inference invalid UTF-8 model", method: "POST", path: chat, body: "{\"model\":\"mock:\xc0\xaf\"," + msgs + "}", status: 422},
		{name: "inference truncated UTF-8", method: "POST", path: emb, body: "{\"model\":\"mock:emb\",\"input\":\"\xe2\x82\"}", status: 422},

		// Hostile ids and names in bodies.
		{name: "user_id slash", method: "POST", path: "/v1/users", body: `{"user_id": "a/b"}`, status: 422, field: "user_id"},
		{name: "user_id dot dot", method: "POST", path: "/v1/users", body: `{"user_id": ".."}`, status: 422, field: "user_id"},
		{name: "user_id dot", method: "POST", path: "/v1/users", body: `{"user_id": "."}`, status: 422, field: "user_id"},
		{name: "user_id escaped slash", method: "POST", path: "/v1/users", body: `{"user_id": "..%2Fkeys"}`, status: 422, field: "user_id"},
		{name: "user_id percent 00", method: "POST", path: "/v1/users", body: `{"user_id": "alice%00"}`, status: 422, field: "user_id"},
		{name: "user_id NUL", method: "POST", path: "/v1/users", body: `{"user_id": "alice\u0000"}`, status: 422, field: "user_id"},
		{name: "user_id CRLF", method: "POST", path: "/v1/users", body: `{"user_id": "a\r\nb"}`, status: 422, field: "user_id"},
		{name: "user_id backslash", method: "POST", path: "/v1/users", body: `{"user_id": "..\\..\\x"}`, status: 422, field: "user_id"},
		{name: "user_id empty", method: "POST", path: "/v1/users", body: `{"user_id": ""}`, status: 422, field: "user_id"},
		{name: "user_id 10k", method: "POST", path: "/v1/users", body: `{"user_id": "` + long + `"}`, status: 422, field: "user_id"},
		{name: "user_id 70k", method: "POST", path: "/v1/users", body: `{"user_id": "` + longer + `"}`, status: 422, field: "user_id"},
		{name: "alias 10k", method: "POST", path: "/v1/users", body: `{"user_id": "u2", "alias": "` + long + `"}`, status: 422, field: "alias"},
		{name: "alias CRLF", method: "PATCH", path: "/v1/users/alice", body: `{"alias": "x\r\nSet-Cookie: a=b"}`, status: 422, field: "alias"},
		{name: "key user_id slash", method: "POST", path: "/v1/keys", body: `{"user_id": "a/b"}`, status: 422, field: "user_id"},
		{name: "key user_id dot dot", method: "POST", path: "/v1/keys", body: `{"user_id": ".."}`, status: 422, field: "user_id"},
		{name: "key user_id NUL", method: "POST", path: "/v1/keys", body: `{"user_id": "alice\u0000"}`, status: 422, field: "user_id"},
		{name: "key user_id 10k", method: "POST", path: "/v1/keys", body: `{"user_id": "` + long + `"}`, status: 422, field: "user_id"},
		{name: "key_name 10k", method: "POST", path: "/v1/keys", body: `{"key_name": "` + long + `"}`, status: 422, field: "key_name"},
		{name: "key_name 10k patch", method: "PATCH", path: "/v1/keys/" + kid, body: `{"key_name": "` + long + `"}`, status: 422, field: "key_name"},
		{name: "key_name NUL", method: "POST", path: "/v1/keys", body: `{"key_name": "a\u0000b"}`, status: 422, field: "key_name"},
		{name: "allowed_models 10k", method: "POST", path: "/v1/keys", body: `{"allowed_models": ["mock:` + long + `"]}`, status: 422, field: "allowed_models"},
		{name: "budget_id 10k", method: "PATCH", path: "/v1/users/alice", body: `{"budget_id": "` + long + `"}`, status: 404},
		{name: "model_key 10k", method: "POST", path: "/v1/pricing", body: `{"model_key": "openai:` + long + `", "input_price_per_million": 1, "output_price_per_million": 1}`, status: 422, field: "model_key"},
		{name: "model_key NUL", method: "POST", path: "/v1/pricing", body: `{"model_key": "openai:gpt\u0000", "input_price_per_million": 1, "output_price_per_million": 1}`, status: 422, field: "model_key"},
		{name: "inference model 10k", method: "POST", path: chat, body: `{"model": "` + long + `",` + msgs + `}`, status: 400},
		{name: "inference provider 10k", method: "POST", path: chat, body: `{"model": "` + long + `:ok",` + msgs + `}`, status: 400},
		// With a virtual key, a long or odd "user" is the caller's end-user
		// id: TestVirtualKeyUserIsTheCallersEndUser.
		{name: "master user NUL", method: "POST", path: chat, headers: mk, body: `{"model": "mock:ok", "user": "alice\u0000",` + msgs + `}`, status: 404},
		{name: "master user slash", method: "POST", path: chat, headers: mk, body: `{"model": "mock:ok", "user": "alice/../alice",` + msgs + `}`, status: 404},
		{name: "master user 10k", method: "POST", path: chat, headers: mk, body: `{"model": "mock:ok", "user": "` + long + `",` + msgs + `}`, status: 404},
		{name: "master user empty", method: "POST", path: chat, headers: mk, body: `{"model": "mock:ok", "user": "",` + msgs + `}`, status: 400},

		// Hostile ids in paths.
		{name: "path escaped slash", method: "GET", path: "/v1/users/alice%2Fusage", status: 404},
		{name: "path escaped slash delete", method: "DELETE", path: "/v1/users/..%2Fkeys%2F" + kid, status: 404},
		{name: "path dot dot", method: "DELETE", path: "/v1/users/..", status: 404},
		{name: "path dot dot keys", method: "DELETE", path: "/v1/users/../keys/" + kid, status: 404},
		{name: "path escaped dot dot", method: "PATCH", path: "/v1/users/%2e%2e", body: `{"blocked": true}`, status: 404},
		{name: "path percent 00", method: "GET", path: "/v1/users/alice%00", status: 404},
		{name: "path percent 00 delete", method: "DELETE", path: "/v1/users/alice%00", status: 404},
		{name: "path percent 00 key", method: "DELETE", path: "/v1/keys/" + kid + "%00", status: 404},
		{name: "path escaped newline", method: "PATCH", path: "/v1/users/alice%0d%0a", body: `{"blocked": true}`, status: 404},
		{name: "path escaped slash user", method: "PATCH", path: "/v1/users/alice%2F", body: `{"blocked": true}`, status: 404},
		{name: "path 10k user", method: "GET", path: "/v1/users/" + long, status: 404},
		{name: "path 10k user patch", method: "PATCH", path: "/v1/users/" + long, body: `{"blocked": true}`, status: 404},
		{name: "path 10k user delete", method: "DELETE", path: "/v1/users/" + long, status: 404},
		{name: "path 10k user usage", method: "GET", path: "/v1/users/" + long + "/usage", status: 404},
		{name: "path 70k user delete", method: "DELETE", path: "/v1/users/" + longer, status: 404},
		{name: "path 70k user patch", method: "PATCH", path: "/v1/users/" + longer, body: `{"alias": "x"}`, status: 404},
		{name: "path 10k key", method: "GET", path: "/v1/keys/" + long, status: 404},
		{name: "path 10k key patch", method: "PATCH", path: "/v1/keys/" + long, body: `{"is_active": false}`, status: 404},
		{name: "path 70k key delete", method: "DELETE", path: "/v1/keys/" + longer, status: 404},
		{name: "path 70k key rotate", method: "POST", path: "/v1/keys/" + longer + "/rotate", status: 404},
		{name: "path 10k budget", method: "GET", path: "/v1/budgets/" + long, status: 404},
		{name: "path 70k budget patch", method: "PATCH", path: "/v1/budgets/" + longer, body: `{"max_budget": 0}`, status: 404},
		{name: "path 70k budget delete", method: "DELETE", path: "/v1/budgets/" + longer, status: 404},
		{name: "path 10k price", method: "GET", path: "/v1/pricing/openai:" + long, status: 404},
		{name: "path 70k price delete", method: "DELETE", path: "/v1/pricing/openai:" + longer, status: 404},
		{name: "path dot dot price delete", method: "DELETE", path: "/v1/pricing/..%2F..%2Fopenai:gpt-4o-mini", status: 404},
		{name: "path 10k model", method: "GET", path: "/v1/models/mock:" + long, headers: vk, status: 404},

		// Header injection, sent raw: Go's client refuses CR and LF in values.
		{name: "CR in credential", path: "/v1/users", raw: rawRequest("GET", "/v1/users", "", "X-AnyLLM-Key: Bearer "+masterKey+"\rX-Injected: yes"), status: 400, protocolOK: true},
		{name: "NUL in credential", path: "/v1/users", raw: rawRequest("GET", "/v1/users", "", "X-AnyLLM-Key: Bearer "+masterKey+"\x00"), status: 400, protocolOK: true},
		{name: "folded credential", path: "/v1/users", raw: rawRequest("GET", "/v1/users", "", "X-AnyLLM-Key: Bearer "+masterKey, " X-Injected: yes"), status: 401, message: msgInvalidMaster},
		{name: "folded virtual key", path: chat, raw: rawRequest("POST", chat, okChat, "Authorization: Bearer "+ig.key, "\tX-Injected: yes"), status: 401},
		{name: "LF splits into a second credential", path: "/v1/users", raw: rawRequest("GET", "/v1/users", "", "X-AnyLLM-Key: Bearer "+ig.key+"\nX-AnyLLM-Key: Bearer "+masterKey), status: 401},
		{name: "LF splits into a second authorization", path: "/v1/users", raw: rawRequest("POST", "/v1/users", `{"user_id": "inj"}`, "Authorization: Bearer junk\nAuthorization: Bearer "+masterKey), status: 401},
		{name: "LF in virtual key", path: chat, raw: rawRequest("POST", chat, okChat, "Authorization: Bearer "+ig.key+"\nAuthorization: Bearer gw-"+strings.Repeat("Q", 64)), status: 401},
		{name: "non-ASCII in credential", path: chat, raw: rawRequest("POST", chat, okChat, "X-AnyLLM-Key: Bearer "+ig.key[:20]+"\xff\xfe"+ig.key[22:]), status: 401},

		// Duplicate credential headers.
		{name: "two x-anyllm-key, virtual then master", method: "GET", path: "/v1/users", headers: []string{"X-AnyLLM-Key", "Bearer " + ig.key, "X-AnyLLM-Key", "Bearer " + masterKey}, status: 401},
		{name: "two x-anyllm-key, junk then master", method: "POST", path: "/v1/budgets", body: `{}`, headers: []string{"X-AnyLLM-Key", "Bearer junk", "X-AnyLLM-Key", "Bearer " + masterKey}, status: 401},
		{name: "two authorization, master then junk", method: "DELETE", path: "/v1/keys/" + kid, headers: []string{"Authorization", "Bearer " + masterKey, "Authorization", "Bearer junk"}, status: 401},
		{name: "two x-api-key", method: "GET", path: "/v1/users", headers: []string{"x-api-key", "junk", "x-api-key", masterKey}, status: 401},
		{name: "two anyllm-key", method: "GET", path: "/v1/keys", headers: []string{"AnyLLM-Key", "Bearer " + ig.key, "AnyLLM-Key", "Bearer " + masterKey}, status: 401},
		{name: "two authorization on inference", method: "POST", path: chat, body: okChat, headers: []string{"Authorization", "Bearer " + ig.key, "Authorization", "Bearer gw-" + strings.Repeat("Z", 64)}, status: 401},

		// Bearer with extra spaces and other near misses.
		{name: "Bearer two spaces master", method: "GET", path: "/v1/users", headers: []string{"X-AnyLLM-Key", "Bearer  " + masterKey}, status: 401, message: msgInvalidMaster},
		{name: "Bearer two spaces virtual", method: "POST", path: chat, body: okChat, headers: []string{"Authorization", "Bearer  " + ig.key}, status: 401},
		{name: "Bearer tab", method: "GET", path: "/v1/users", headers: []string{"Authorization", "Bearer\t" + masterKey}, status: 401, message: msgBadHeader},
		{name: "Bearer alone", method: "POST", path: chat, body: okChat, headers: []string{"Authorization", "Bearer"}, status: 401, message: msgBadHeader},
		{name: "BEARER", method: "POST", path: chat, body: okChat, headers: []string{"Authorization", "BEARER " + ig.key}, status: 401, message: msgBadHeader},
		{name: "Bearer Bearer", method: "POST", path: chat, body: okChat, headers: []string{"Authorization", "Bearer Bearer " + ig.key}, status: 401},
		{name: "key then junk", method: "POST", path: chat, body: okChat, headers: []string{"Authorization", "Bearer " + ig.key + " junk"}, status: 401},
		{name: "x-api-key with Bearer", method: "POST", path: chat, body: okChat, headers: []string{"x-api-key", "Bearer " + ig.key}, status: 401},

		// A key that differs from a valid one in one character.
		{name: "key last char", method: "POST", path: chat, body: okChat, headers: bearer(oneOff(ig.key, len(ig.key)-1)), status: 401, message: msgInvalidKey},
		{name: "key first random char", method: "POST", path: chat, body: okChat, headers: bearer(oneOff(ig.key, 3)), status: 401, message: msgInvalidKey},
		{name: "key middle char", method: "GET", path: "/v1/pricing", headers: bearer(oneOff(ig.key, 35)), status: 401, message: msgInvalidKey},
		{name: "key one char longer", method: "POST", path: chat, body: okChat, headers: bearer(ig.key + "A"), status: 401, message: msgInvalidKey},
		{name: "key one char shorter", method: "POST", path: emb, body: `{"model":"mock:emb","input":"x"}`, headers: bearer(ig.key[:len(ig.key)-1]), status: 401, message: msgInvalidKey},
		{name: "key case swapped prefix", method: "POST", path: chat, body: okChat, headers: bearer("GW-" + ig.key[3:]), status: 401},
		{name: "master last char", method: "GET", path: "/v1/users", headers: bearer(oneOff(masterKey, len(masterKey)-1)), status: 401, message: msgInvalidMaster},

		// Not JSON by its content type.
		{name: "admin text/plain", method: "POST", path: "/v1/users", body: `{"user_id": "plain"}`, contentType: "text/plain", status: statusAny4xx},
		{name: "admin form", method: "POST", path: "/v1/budgets", body: `{"max_budget": 5}`, contentType: "application/x-www-form-urlencoded", status: statusAny4xx},
		{name: "inference text/plain", method: "POST", path: chat, body: okChat, contentType: "text/plain", status: statusAny4xx},
		{name: "inference form", method: "POST", path: chat, body: okChat, contentType: "application/x-www-form-urlencoded", status: statusAny4xx},
		{name: "inference multipart", method: "POST", path: emb, body: `{"model":"mock:emb","input":"x"}`, contentType: "multipart/form-data; boundary=x", status: statusAny4xx},
	}

	calls := len(ig.mock.Requests())
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := g.on(t)
			if c.headers == nil && c.raw == "" {
				c.headers = mk
				if strings.HasPrefix(c.path, chat) || c.path == emb || c.path == "/v1/responses" || c.path == "/v1/messages" {
					c.headers = vk
				}
			}
			before := storeSnapshot(t, g)
			r := c.send(t, g)
			switch {
			case c.protocolOK && (r.Status == http.StatusBadRequest || r.Status == http.StatusRequestHeaderFieldsTooLarge) &&
				!strings.HasPrefix(r.Header.Get("Content-Type"), "application/json"):
				// Refused by Go's HTTP server before the gateway saw it.
				if r.Header.Get("X-Injected") != "" {
					t.Fatalf("injected header echoed: %v", r.Header)
				}
			case c.path == "/v1/messages":
				// Anthropic clients get their own error shape there.
				if r.Status != c.status {
					t.Fatalf("status = %d, want %d: %.300s", r.Status, c.status, r.Body)
				}
				assertNoInternals(t, g, "error body", r.Body)
			default:
				expectGatewayError(t, g, c.path, r, c.status, c.message, c.field)
			}
			if r.Header.Get("X-Injected") != "" || r.Header.Get("Set-Cookie") != "" {
				t.Fatalf("injected header in the response: %v", r.Header)
			}
			if after := storeSnapshot(t, g); after != before {
				t.Fatalf("the store changed:\nbefore %.2000s\nafter  %.2000s", before, after)
			}
			expectAlive(t, g)
		})
	}
	if n := len(ig.mock.Requests()); n != calls {
		t.Errorf("%d hostile requests reached the provider", n-calls)
	}
	// The gateway still works for honest clients.
	expect(t, g.do("POST", chat, okChat, vk...), http.StatusOK)
	expectAlive(t, g)
	expectNoPanic(t, g)
}
