package integration

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/storage/postgres/pgtest"
)

// anyLLMSchema is any-llm-gateway's PostgreSQL schema at its Alembic head
// (../shared/docs/research/anyllm-gateway.md, section 1): the six tables,
// their foreign keys and the indexes its migrations create.
const anyLLMSchema = `
CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY);
INSERT INTO alembic_version VALUES ('967575f779b7');
CREATE TABLE budgets (
	budget_id varchar PRIMARY KEY,
	max_budget double precision,
	budget_duration_sec integer,
	created_at timestamptz NOT NULL,
	updated_at timestamptz NOT NULL);
CREATE TABLE users (
	user_id varchar PRIMARY KEY,
	alias varchar,
	spend double precision DEFAULT 0.0,
	budget_id varchar REFERENCES budgets (budget_id),
	budget_started_at timestamptz,
	next_budget_reset_at timestamptz,
	blocked boolean DEFAULT false,
	created_at timestamptz NOT NULL,
	updated_at timestamptz NOT NULL,
	deleted_at timestamptz,
	metadata json);
CREATE INDEX ix_users_deleted_at ON users (deleted_at);
CREATE TABLE api_keys (
	id varchar PRIMARY KEY,
	key_hash varchar NOT NULL,
	key_name varchar,
	user_id varchar REFERENCES users (user_id) ON DELETE CASCADE,
	created_at timestamptz NOT NULL,
	last_used_at timestamptz,
	expires_at timestamptz,
	is_active boolean DEFAULT true,
	metadata json DEFAULT '{}');
CREATE UNIQUE INDEX ix_api_keys_key_hash ON api_keys (key_hash);
CREATE TABLE model_pricing (
	model_key varchar PRIMARY KEY,
	input_price_per_million double precision NOT NULL,
	output_price_per_million double precision NOT NULL,
	created_at timestamptz NOT NULL,
	updated_at timestamptz NOT NULL);
CREATE TABLE usage_logs (
	id varchar PRIMARY KEY,
	api_key_id varchar REFERENCES api_keys (id) ON DELETE SET NULL,
	user_id varchar REFERENCES users (user_id) ON DELETE SET NULL,
	"timestamp" timestamptz NOT NULL,
	model varchar NOT NULL,
	provider varchar,
	endpoint varchar NOT NULL,
	prompt_tokens integer,
	completion_tokens integer,
	total_tokens integer,
	cost double precision,
	status varchar NOT NULL,
	error_message varchar);
CREATE INDEX ix_usage_logs_timestamp ON usage_logs ("timestamp");
CREATE INDEX ix_usage_logs_user_id_timestamp ON usage_logs (user_id, "timestamp");
CREATE TABLE budget_reset_logs (
	id serial PRIMARY KEY,
	user_id varchar REFERENCES users (user_id) ON DELETE SET NULL,
	budget_id varchar NOT NULL REFERENCES budgets (budget_id),
	previous_spend double precision,
	reset_at timestamptz NOT NULL,
	next_reset_at timestamptz);
`

// anyLLMSecret is a key as any-llm-gateway makes one: "gw-" and
// secrets.token_urlsafe(48).
func anyLLMSecret(t *testing.T) string {
	t.Helper()
	b := make([]byte, 48)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "gw-" + base64.RawURLEncoding.EncodeToString(b)
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// TestMigrateImportsAnAnyLLMGateway fills an any-llm-gateway database as
// that gateway leaves it, imports it with the built binary, then serves
// the imported state: its keys authenticate (or are refused as they were
// there), its users, budgets, prices, spend and usage are listed, and its
// budgets and prices bill the next request.
func TestMigrateImportsAnAnyLLMGateway(t *testing.T) {
	t.Parallel()
	m := newMockUpstream(t)
	src, srcPassword := testDatabase(t)
	dst, password := testDatabase(t)

	now := time.Now().UTC().Truncate(time.Microsecond)
	ts := func(d time.Duration) string { return "'" + now.Add(d).Format(time.RFC3339Nano) + "'" }
	day := 24 * time.Hour
	secrets := map[string]string{}
	for _, name := range []string{"alice", "alice-old", "alice-off", "bob", "carol", "ci"} {
		secrets[name] = anyLLMSecret(t)
	}
	const (
		tierID  = "3f1c2a9e-7b4d-4e8a-9c1f-2d6b8e0a4c11" // server uuid4 budget ids
		tinyID  = "9a0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d"
		ciKeyID = "5b6c7d8e-9f01-4234-8567-89abcdef0123"
		ciUser  = "apikey-" + ciKeyID // any-llm's virtual user of a key made without one
	)
	fill := fmt.Sprintf(`
INSERT INTO budgets VALUES ('%[1]s', 10.5, 604800, %[3]s, %[3]s), ('%[2]s', 0.01, NULL, %[3]s, %[3]s);
INSERT INTO users VALUES
	('alice@example.com', 'Alice', 1.25, '%[1]s', %[4]s, %[5]s, false, %[3]s, %[4]s, NULL, '{"team": "research"}'),
	('bob', 'Bob', 0, NULL, NULL, NULL, true, %[3]s, %[3]s, NULL, NULL),
	('carol', NULL, 0.02, '%[2]s', %[3]s, NULL, false, %[3]s, %[3]s, NULL, '{}'),
	('dave', 'Dave', 0, NULL, NULL, NULL, false, %[3]s, %[3]s, %[4]s, NULL),
	('%[6]s', 'Virtual user for API key: ci', 0, NULL, NULL, NULL, false, %[3]s, %[3]s, NULL, NULL);
INSERT INTO api_keys VALUES
	('0d9f3a10-1111-4c2b-9a8e-000000000001', '%[7]s', 'laptop', 'alice@example.com', %[3]s, %[4]s, NULL, true, '{}'),
	('0d9f3a10-1111-4c2b-9a8e-000000000002', '%[8]s', 'old', 'alice@example.com', %[3]s, NULL, %[4]s, true, '{}'),
	('0d9f3a10-1111-4c2b-9a8e-000000000003', '%[9]s', 'revoked', 'alice@example.com', %[3]s, NULL, NULL, false, '{}'),
	('0d9f3a10-1111-4c2b-9a8e-000000000004', '%[10]s', NULL, 'bob', %[3]s, NULL, NULL, true, '{}'),
	('0d9f3a10-1111-4c2b-9a8e-000000000005', '%[11]s', NULL, 'carol', %[3]s, NULL, NULL, true, '{}'),
	('%[12]s', '%[13]s', 'ci', '%[6]s', %[3]s, NULL, NULL, true, '{"bootstrap": true}');
INSERT INTO model_pricing VALUES ('mock:ok', 1.5, 3, %[3]s, %[3]s), ('openai:gpt-4o', 2.5, 10, %[3]s, %[4]s);
INSERT INTO usage_logs VALUES
	('7c9e6679-7425-40de-944b-e07fc1f90ae7', '0d9f3a10-1111-4c2b-9a8e-000000000001', 'alice@example.com', %[14]s,
		'gpt-4o', 'openai', '/v1/chat/completions', 1000, 200, 1200, 0.0045, 'success', NULL),
	('16fd2706-8baf-433b-82eb-8c7fada847da', '0d9f3a10-1111-4c2b-9a8e-000000000001', 'alice@example.com', %[15]s,
		'gpt-4o', 'openai', '/v1/chat/completions', NULL, NULL, NULL, NULL, 'error', 'Provider error'),
	('886313e1-3b8a-5372-9b90-0c9aee199e5d', '%[12]s', '%[6]s', %[15]s,
		'ok', 'mock', '/v1/embeddings', 8, NULL, 8, NULL, 'success', NULL);
INSERT INTO budget_reset_logs (user_id, budget_id, previous_spend, reset_at, next_reset_at)
	VALUES ('alice@example.com', '%[1]s', 3.5, %[4]s, %[5]s);
`, tierID, tinyID, ts(-30*day), ts(-day), ts(6*day), ciUser,
		sha256Hex(secrets["alice"]), sha256Hex(secrets["alice-old"]), sha256Hex(secrets["alice-off"]),
		sha256Hex(secrets["bob"]), sha256Hex(secrets["carol"]), ciKeyID, sha256Hex(secrets["ci"]),
		ts(-2*day), ts(-time.Hour))
	pgtest.Exec(t, src, anyLLMSchema+fill)

	out, code := migrate(t, srcPassword, "--from-anyllm", src, "--to", dst, "--json")
	assertNoSecret(t, "migrate's output", []byte(out), password)
	if code != 0 {
		t.Fatalf("migrate --from-anyllm: exit %d:\n%s", code, out)
	}
	var summary struct{ Copied map[string]int64 }
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &summary); err != nil {
		t.Fatalf("migrate --json: %v:\n%s", err, out)
	}
	// Spend: alice's current period and the one her reset closed, carol's.
	want := map[string]int64{"users": 5, "keys": 6, "budgets": 2, "prices": 2, "spend_periods": 3, "usage_records": 3}
	if !jsonEqual(t, summary.Copied, want) {
		t.Fatalf("copied %v, want %v", summary.Copied, want)
	}
	if out, code := migrate(t, srcPassword, "--from-anyllm", src, "--to", dst); code != 0 ||
		!strings.Contains(out, "0 users, 0 keys, 0 budgets, 0 prices, 0 spend periods, 0 usage records") {
		t.Fatalf("second import copied again (exit %d):\n%s", code, out)
	}

	// No price in the Caddyfile: the imported prices bill.
	g := startChecked(t, gatewayConfig{
		Env: []string{"GATEWAY_DATABASE_URL=" + dst},
		Block: fmt.Sprintf(`database_url {env.GATEWAY_DATABASE_URL}
		provider mock {
			api_key {env.PROVIDER_KEY}
			base_url %s
		}`, m.BaseURL()),
	})
	chat := func(secret string) *response {
		return g.do("POST", "/v1/chat/completions", `{"model": "mock:ok", "messages": [{"role": "user", "content": "hi"}]}`, bearer(secret)...)
	}

	// The keys, as any-llm-gateway answered them.
	for _, name := range []string{"alice", "ci"} {
		expect(t, g.do("GET", "/v1/models", nil, bearer(secrets[name])...), http.StatusOK)
	}
	expect(t, g.do("GET", "/v1/models", nil, bearer(anyLLMSecret(t))...), http.StatusUnauthorized)
	expectError(t, chat(secrets["alice-old"]), http.StatusUnauthorized, "API key has expired")
	expectError(t, chat(secrets["alice-off"]), http.StatusUnauthorized, "API key is inactive")
	if r := chat(secrets["bob"]); r.Status != http.StatusForbidden || !strings.Contains(strings.ToLower(string(r.Body)), "blocked") {
		t.Errorf("blocked bob's key: %d %s, want 403 blocked", r.Status, r.Body)
	}
	if r := chat(secrets["carol"]); r.Status != http.StatusForbidden || !strings.Contains(strings.ToLower(string(r.Body)), "budget") {
		t.Errorf("carol, over her budget: %d %s, want 403 budget", r.Status, r.Body)
	}

	// Users, budgets, prices, spend and usage.
	alicePath := "/v1/users/" + url.PathEscape("alice@example.com")
	alice := expect(t, g.adminDo("GET", alicePath, nil), http.StatusOK).Map(t)
	if alice["budget_id"] != tierID || alice["alias"] != "Alice" || alice["spend"] != 1.25 || alice["blocked"] != false {
		t.Errorf("alice: %v", alice)
	}
	expect(t, g.adminDo("GET", "/v1/users/dave", nil), http.StatusNotFound) // deleted there, deleted here
	tier := expect(t, g.adminDo("GET", "/v1/budgets/"+tierID, nil), http.StatusOK).Map(t)
	if tier["max_budget"] != 10.5 || tier["budget_duration_sec"] != float64(604800) {
		t.Errorf("budget %s: %v", tierID, tier)
	}
	price := expect(t, g.do("GET", "/v1/pricing/openai:gpt-4o", nil, bearer(secrets["alice"])...), http.StatusOK).Map(t)
	if price["input_price_per_million"] != 2.5 || price["output_price_per_million"] != float64(10) {
		t.Errorf("price openai:gpt-4o: %v", price)
	}
	history := list(t, g.adminDo("GET", alicePath+"/budget-history", nil))
	if len(history) != 2 || history[0]["spend"] != 1.25 || history[1]["spend"] != 3.5 ||
		!apiTimeOf(t, history[0]["period_start"]).Equal(now.Add(-day)) {
		t.Errorf("alice's budget history: %v", history)
	}
	usage := list(t, g.adminDo("GET", "/v1/usage?user_id="+url.QueryEscape("alice@example.com"), nil))
	if len(usage) != 2 || usage[0]["id"] != "16fd2706-8baf-433b-82eb-8c7fada847da" || usage[0]["status"] != "error" ||
		usage[1]["id"] != "7c9e6679-7425-40de-944b-e07fc1f90ae7" || usage[1]["cost"] != 0.0045 || usage[1]["total_tokens"] != float64(1200) {
		t.Errorf("alice's usage: %v", usage)
	}
	ci := list(t, g.adminDo("GET", "/v1/usage?user_id="+ciUser, nil))
	if len(ci) != 1 || ci[0]["api_key_id"] != ciKeyID || ci[0]["endpoint"] != "/v1/embeddings" {
		t.Errorf("the ci key's usage: %v", ci)
	}

	// The imported key goes on spending, at the imported price, in the
	// imported period.
	r := expect(t, chat(secrets["alice"]), http.StatusOK)
	cost := float64(mockPromptTokens)/1e6*1.5 + float64(mockCompletionTokens)/1e6*3
	id := r.Header.Get("X-Request-Id")
	waitFor(t, "the usage record of "+id, func() bool {
		return strings.Contains(string(g.adminDo("GET", "/v1/usage?limit=1000", nil).Body), id)
	})
	if got := g.spend(t, alicePath); math.Abs(got-(1.25+cost)) > 1e-9 {
		t.Errorf("alice's spend after one request: %v, want %v", got, 1.25+cost)
	}
}
