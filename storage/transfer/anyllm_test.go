package transfer

import (
	"context"
	"testing"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/storage"
	"github.com/llmgateway/caddy-llm-gateway/storage/postgres/pgtest"
)

// anyLLMSchema is any-llm-gateway's schema (its Alembic head, PostgreSQL),
// with the columns FromAnyLLM reads.
const anyLLMSchema = `
CREATE TABLE budgets (budget_id varchar PRIMARY KEY, max_budget double precision, budget_duration_sec integer,
	created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL);
CREATE TABLE users (user_id varchar PRIMARY KEY, alias varchar, spend double precision DEFAULT 0,
	budget_id varchar REFERENCES budgets, budget_started_at timestamptz, next_budget_reset_at timestamptz,
	blocked boolean DEFAULT false, deleted_at timestamptz, created_at timestamptz, updated_at timestamptz, metadata json);
CREATE TABLE api_keys (id varchar PRIMARY KEY, key_hash varchar UNIQUE NOT NULL, key_name varchar,
	user_id varchar REFERENCES users ON DELETE CASCADE, created_at timestamptz, last_used_at timestamptz,
	expires_at timestamptz, is_active boolean DEFAULT true, metadata json DEFAULT '{}');
CREATE TABLE model_pricing (model_key varchar PRIMARY KEY, input_price_per_million double precision NOT NULL,
	output_price_per_million double precision NOT NULL, created_at timestamptz, updated_at timestamptz);
CREATE TABLE usage_logs (id varchar PRIMARY KEY, api_key_id varchar REFERENCES api_keys ON DELETE SET NULL,
	user_id varchar REFERENCES users ON DELETE SET NULL, "timestamp" timestamptz NOT NULL, model varchar NOT NULL,
	provider varchar, endpoint varchar NOT NULL, prompt_tokens integer, completion_tokens integer,
	total_tokens integer, cost double precision, status varchar NOT NULL, error_message varchar);
CREATE TABLE budget_reset_logs (id serial PRIMARY KEY, user_id varchar REFERENCES users ON DELETE SET NULL,
	budget_id varchar NOT NULL REFERENCES budgets, previous_spend double precision, reset_at timestamptz NOT NULL,
	next_reset_at timestamptz);

INSERT INTO budgets VALUES ('tier', 10.5, 604800, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z');
INSERT INTO users VALUES ('bob', 'Bob', 1.25, 'tier', '2026-01-08T00:00:00Z', '2026-01-15T00:00:00Z', false, NULL,
	'2026-01-01T00:00:00Z', '2026-01-08T00:00:00Z', '{"team": "a"}');
INSERT INTO api_keys VALUES ('key-bob', encode(sha256('gw-the-known-secret-of-bob'::bytea), 'hex'), 'laptop', 'bob',
	'2026-01-01T00:00:00Z', NULL, NULL, true, '{}');
INSERT INTO api_keys VALUES ('key-anon', encode(sha256('gw-anon'::bytea), 'hex'), NULL, NULL,
	'2026-01-02T00:00:00Z', NULL, NULL, false, '{}');
INSERT INTO model_pricing VALUES ('openai:gpt-4o', 2.5, 10, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z');
INSERT INTO usage_logs VALUES ('log-1', 'key-bob', 'bob', '2026-01-09T00:00:00Z', 'gpt-4o', 'openai',
	'/v1/chat/completions', 100, 50, 150, 0.00075, 'success', NULL);
INSERT INTO usage_logs VALUES ('log-2', 'key-anon', NULL, '2026-01-09T01:00:00Z', 'gpt-4o', 'openai',
	'/v1/chat/completions', NULL, NULL, NULL, NULL, 'error', 'upstream failed');
INSERT INTO budget_reset_logs (user_id, budget_id, previous_spend, reset_at, next_reset_at)
	VALUES ('bob', 'tier', 3.5, '2026-01-08T00:00:00Z', '2026-01-15T00:00:00Z');
`

func TestFromAnyLLMImportsOnceAndKeysKeepWorking(t *testing.T) {
	src := pgtest.Database(t)
	pgtest.Exec(t, src, anyLLMSchema)
	dst := openDest(t)

	counts, err := FromAnyLLM(context.Background(), src, dst)
	if err != nil {
		t.Fatal(err)
	}
	// Users: bob and key-anon's virtual user; spend: bob's current and
	// past period.
	want := Counts{Budgets: 1, Users: 2, Keys: 2, Prices: 1, Spend: 2, Usage: 2}
	if counts != want {
		t.Fatalf("import: %+v, want %+v", counts, want)
	}
	if again, err := FromAnyLLM(context.Background(), src, dst); err != nil || again != (Counts{}) {
		t.Fatalf("second import: %+v, %v; want nothing", again, err)
	}

	k, err := dst.GetKeyByHash(hashOf("gw-the-known-secret-of-bob"))
	if err != nil || k.ID != "key-bob" || k.UserID != "bob" || !k.IsActive {
		t.Fatalf("bob's key by the hash of its secret: %+v, %v", k, err)
	}
	anon, err := dst.GetKey("key-anon")
	if err != nil || anon.UserID != "apikey-key-anon" || anon.IsActive {
		t.Fatalf("key without a user: %+v, %v", anon, err)
	}
	b, err := dst.GetBudget("tier")
	if err != nil || b.MaxBudget == nil || *b.MaxBudget != storage.Dollars(10.5) {
		t.Fatalf("budget: %+v, %v", b, err)
	}
	periods, err := dst.ListSpendPeriods(storage.SpendOfUser, "bob", 10)
	if err != nil {
		t.Fatal(err)
	}
	week := time.Date(2026, 1, 8, 0, 0, 0, 0, time.UTC)
	wantPeriods := []storage.SpendPeriod{
		{Start: week, Spend: storage.Dollars(1.25)},
		{Start: week.AddDate(0, 0, -7), Spend: storage.Dollars(3.5)},
	}
	if len(periods) != 2 || periods[0] != wantPeriods[0] || !periods[1].Start.Equal(wantPeriods[1].Start) || periods[1].Spend != wantPeriods[1].Spend {
		t.Errorf("bob's periods: %+v, want %+v", periods, wantPeriods)
	}
	usage, err := dst.ListUsage(storage.UsageFilter{}, 0, 10)
	if err != nil || len(usage) != 2 {
		t.Fatalf("usage: %+v, %v", usage, err)
	}
	if u := usage[1]; u.ID != "log-1" || u.Cost != storage.Dollars(0.00075) || u.TotalTokens != 150 || u.StatusCode != 200 {
		t.Errorf("log-1: %+v", u)
	}
	if u := usage[0]; u.ID != "log-2" || u.UserID != "apikey-key-anon" || u.Status != "error" || u.ErrorMessage != "upstream failed" {
		t.Errorf("log-2: %+v", u)
	}
}
