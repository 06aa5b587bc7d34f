package integration

import (
	"bytes"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestAdminAPI covers users, budgets, pricing and keys through the admin API
// of one gateway whose config seeds a price.
func TestAdminAPI(t *testing.T) {
	t.Parallel()
	mock := newMockUpstream(t)
	g := startChecked(t, gatewayConfig{Block: "provider openai\n\t\tprice openai:gpt-4o-mini 0.15 0.60\n\t\t" + mockProvider(mock)})

	t.Run("users", func(t *testing.T) {
		g := g.on(t)
		hourly := g.newBudget(`{"max_budget": 50, "budget_duration_sec": 3600}`)
		forever := g.newBudget(`{"max_budget": 5}`)

		alice := g.newUser(`{"user_id": "alice", "alias": "Alice", "metadata": {"team": "ml"}}`)
		wantUserFields(t, alice)
		if alice["spend"] != 0.0 || alice["blocked"] != false || alice["budget_id"] != nil ||
			alice["budget_started_at"] != nil || alice["next_budget_reset_at"] != nil ||
			!jsonEqual(t, alice["metadata"], `{"team":"ml"}`) {
			t.Fatalf("created user = %v", alice)
		}
		created := apiTimeOf(t, alice["created_at"])
		recent(t, "created_at", created)
		apiTimeOf(t, alice["updated_at"])

		expectErrorType(t, g.adminDo("POST", "/v1/users", `{"user_id": "alice"}`), http.StatusConflict,
			"User with id 'alice' already exists", "invalid_request_error")
		expectErrorType(t, g.adminDo("POST", "/v1/users", `{"user_id": "bob", "budget_id": "no-such-budget"}`),
			http.StatusNotFound, "Budget with id 'no-such-budget' not found", "not_found_error")
		expectErrorType(t, g.adminDo("GET", "/v1/users/bob", nil), http.StatusNotFound,
			"User with id 'bob' not found", "not_found_error")
		expectValidation(t, g.adminDo("POST", "/v1/users", `{"alias": "nobody"}`), "user_id")
		expectValidation(t, g.adminDo("POST", "/v1/users", `{"user_id": ""}`), "user_id")
		expectValidation(t, g.adminDo("POST", "/v1/users", `{"user_id": null}`), "user_id")

		// Ids are taken literally and may need escaping in a path; metadata
		// is kept as sent, big integers included.
		odd := g.newUser(`{"user_id": "José Ünïcode+1 ~@", "metadata": {"n": 9007199254740993, "s": "<&>"}}`)
		r := expect(t, g.adminDo("GET", "/v1/users/"+url.PathEscape("José Ünïcode+1 ~@"), nil), http.StatusOK)
		if m := r.Map(t); m["user_id"] != "José Ünïcode+1 ~@" || !jsonEqual(t, m, odd) {
			t.Fatalf("GET odd user = %s", r.Body)
		}
		if !bytes.Contains(r.Body, []byte("9007199254740993")) {
			t.Fatalf("metadata lost integer precision: %s", r.Body)
		}
		expectNoContent(t, g.adminDo("DELETE", "/v1/users/"+url.PathEscape("José Ünïcode+1 ~@"), nil))

		// Created on a budget: its period starts now.
		carol := g.newUser(fmt.Sprintf(`{"user_id": "carol", "budget_id": %q, "blocked": true}`, hourly))
		if carol["budget_id"] != hourly || carol["blocked"] != true {
			t.Fatalf("user created on a budget = %v", carol)
		}
		wantPeriod(t, carol, 3600)

		// GET one is what POST answered.
		got := expect(t, g.adminDo("GET", "/v1/users/alice", nil), http.StatusOK).Map(t)
		if !jsonEqual(t, got, alice) {
			t.Fatalf("GET user = %v, POST answered %v", got, alice)
		}
		ids := userIDs(list(t, g.adminDo("GET", "/v1/users", nil)))
		if ids != "alice,carol" {
			t.Fatalf("listed users %s, want alice,carol", ids)
		}

		// PATCH changes only the given fields.
		p := expect(t, g.adminDo("PATCH", "/v1/users/alice", `{"blocked": true}`), http.StatusOK).Map(t)
		if p["blocked"] != true || p["alias"] != "Alice" || !jsonEqual(t, p["metadata"], `{"team":"ml"}`) ||
			p["budget_id"] != nil || p["created_at"] != alice["created_at"] {
			t.Fatalf("PATCH blocked = %v", p)
		}
		if apiTimeOf(t, p["updated_at"]).Before(apiTimeOf(t, alice["updated_at"])) {
			t.Fatalf("updated_at went back: %v -> %v", alice["updated_at"], p["updated_at"])
		}
		p = expect(t, g.adminDo("PATCH", "/v1/users/alice", `{"alias": "Alice B."}`), http.StatusOK).Map(t)
		if p["alias"] != "Alice B." || p["blocked"] != true || !jsonEqual(t, p["metadata"], `{"team":"ml"}`) {
			t.Fatalf("PATCH alias = %v", p)
		}
		p = expect(t, g.adminDo("PATCH", "/v1/users/alice", `{"metadata": {"team": "infra", "n": 2}}`), http.StatusOK).Map(t)
		if p["alias"] != "Alice B." || p["blocked"] != true || !jsonEqual(t, p["metadata"], `{"team":"infra","n":2}`) {
			t.Fatalf("PATCH metadata = %v", p)
		}
		before := p
		p = expect(t, g.adminDo("PATCH", "/v1/users/alice", `{}`), http.StatusOK).Map(t)
		for _, f := range []string{"alias", "blocked", "metadata", "budget_id", "spend", "created_at"} {
			if !reflect.DeepEqual(p[f], before[f]) {
				t.Fatalf("empty PATCH changed %s: %v -> %v", f, before[f], p[f])
			}
		}
		p = expect(t, g.adminDo("PATCH", "/v1/users/alice", `{"blocked": false}`), http.StatusOK).Map(t)
		if p["blocked"] != false {
			t.Fatalf("PATCH blocked=false = %v", p)
		}

		// Assigning a budget starts its period now.
		p = expect(t, g.adminDo("PATCH", "/v1/users/alice", fmt.Sprintf(`{"budget_id": %q}`, hourly)), http.StatusOK).Map(t)
		if p["budget_id"] != hourly || p["alias"] != "Alice B." {
			t.Fatalf("PATCH budget_id = %v", p)
		}
		wantPeriod(t, p, 3600)
		p = expect(t, g.adminDo("PATCH", "/v1/users/alice", fmt.Sprintf(`{"budget_id": %q}`, forever)), http.StatusOK).Map(t)
		if p["budget_id"] != forever || p["next_budget_reset_at"] != nil {
			t.Fatalf("PATCH to a budget without duration = %v", p)
		}
		recent(t, "budget_started_at", apiTimeOf(t, p["budget_started_at"]))
		expectErrorType(t, g.adminDo("PATCH", "/v1/users/alice", `{"budget_id": "no-such-budget"}`),
			http.StatusNotFound, "Budget with id 'no-such-budget' not found", "not_found_error")
		if u := expect(t, g.adminDo("GET", "/v1/users/alice", nil), http.StatusOK).Map(t); u["budget_id"] != forever {
			t.Fatalf("a refused PATCH changed the user: %v", u)
		}
		expectErrorType(t, g.adminDo("PATCH", "/v1/users/ghost", `{"alias": "x"}`), http.StatusNotFound,
			"User with id 'ghost' not found", "not_found_error")
		expectErrorType(t, g.adminDo("DELETE", "/v1/users/ghost", nil), http.StatusNotFound,
			"User with id 'ghost' not found", "not_found_error")

		// Usage: [] for an existing user, 404 for one that never existed.
		if u := list(t, g.adminDo("GET", "/v1/users/alice/usage", nil)); len(u) != 0 {
			t.Fatalf("usage of a new user = %v", u)
		}
		expectErrorType(t, g.adminDo("GET", "/v1/users/ghost/usage", nil), http.StatusNotFound,
			"User with id 'ghost' not found", "not_found_error")

		// Soft delete: gone from reads, keys deactivated, usage still readable.
		k := g.newKey(`{"user_id": "alice", "key_name": "alice-key"}`)
		g.chat(k.Key)
		spent := expect(t, g.adminDo("GET", "/v1/users/alice", nil), http.StatusOK).Map(t)
		if s, _ := spent["spend"].(float64); math.Abs(s-mockCost) > 1e-12 {
			t.Fatalf("spend after one request = %v, want %v", spent["spend"], mockCost)
		}
		usage := list(t, g.adminDo("GET", "/v1/users/alice/usage", nil))
		if len(usage) != 1 || usage[0]["user_id"] != "alice" || usage[0]["api_key_id"] != k.ID {
			t.Fatalf("usage of alice = %v", usage)
		}
		expectNoContent(t, g.adminDo("DELETE", "/v1/users/alice", nil))
		expectErrorType(t, g.adminDo("GET", "/v1/users/alice", nil), http.StatusNotFound,
			"User with id 'alice' not found", "not_found_error")
		expectErrorType(t, g.adminDo("DELETE", "/v1/users/alice", nil), http.StatusNotFound,
			"User with id 'alice' not found", "not_found_error")
		expectErrorType(t, g.adminDo("PATCH", "/v1/users/alice", `{"alias": "zombie"}`), http.StatusNotFound,
			"User with id 'alice' not found", "not_found_error")
		if ids := userIDs(list(t, g.adminDo("GET", "/v1/users", nil))); ids != "carol" {
			t.Fatalf("listed users after delete: %s", ids)
		}
		if kk := expect(t, g.adminDo("GET", "/v1/keys/"+k.ID, nil), http.StatusOK).Map(t); kk["is_active"] != false {
			t.Fatalf("key of a deleted user = %v", kk)
		}
		expectErrorType(t, g.do("GET", "/v1/pricing", nil, bearer(k.Key)...), http.StatusUnauthorized,
			msgInactive, "authentication_error")
		if u := list(t, g.adminDo("GET", "/v1/users/alice/usage", nil)); !jsonEqual(t, u, usage) {
			t.Fatalf("usage of a deleted user = %v, want %v", u, usage)
		}
		expectErrorType(t, g.adminDo("POST", "/v1/keys", `{"user_id": "alice"}`), http.StatusNotFound,
			"User 'alice' has been deleted. Recreate via POST /v1/users first.", "not_found_error")

		// Re-creating revives the user with fresh fields and spend 0.
		re := g.newUser(`{"user_id": "alice", "alias": "Alice again"}`)
		if re["alias"] != "Alice again" || re["spend"] != 0.0 || re["blocked"] != false || re["budget_id"] != nil ||
			re["budget_started_at"] != nil || re["next_budget_reset_at"] != nil || !jsonEqual(t, re["metadata"], `{}`) {
			t.Fatalf("revived user = %v", re)
		}
		if u := expect(t, g.adminDo("GET", "/v1/users/alice", nil), http.StatusOK).Map(t); u["spend"] != 0.0 {
			t.Fatalf("revived user = %v, want spend 0", u)
		}
		if u := list(t, g.adminDo("GET", "/v1/users/alice/usage", nil)); !jsonEqual(t, u, usage) {
			t.Fatalf("usage of a revived user = %v, want the history %v", u, usage)
		}
		if ids := userIDs(list(t, g.adminDo("GET", "/v1/users", nil))); ids != "alice,carol" {
			t.Fatalf("listed users after revival: %s", ids)
		}
	})

	t.Run("budgets", func(t *testing.T) {
		g := g.on(t)
		b := expect(t, g.adminDo("POST", "/v1/budgets", `{}`), http.StatusOK).Map(t)
		for _, f := range []string{"budget_id", "max_budget", "budget_duration_sec", "created_at", "updated_at"} {
			if _, ok := b[f]; !ok {
				t.Fatalf("budget lacks %q: %v", f, b)
			}
		}
		id, _ := b["budget_id"].(string)
		if id == "" || b["max_budget"] != nil || b["budget_duration_sec"] != nil {
			t.Fatalf("unlimited budget = %v", b)
		}
		recent(t, "created_at", apiTimeOf(t, b["created_at"]))
		budgetsBefore := len(list(t, g.adminDo("GET", "/v1/budgets", nil)))
		zero := expect(t, g.adminDo("POST", "/v1/budgets", `{"max_budget": 0}`), http.StatusOK).Map(t)
		if zero["max_budget"] != 0.0 {
			t.Fatalf("zero budget = %v", zero)
		}

		for _, tc := range []struct{ body, field string }{
			{`{"max_budget": -1}`, "max_budget"},
			{`{"max_budget": -0.01, "budget_duration_sec": 60}`, "max_budget"},
			{`{"budget_duration_sec": 0}`, "budget_duration_sec"},
			{`{"budget_duration_sec": -60}`, "budget_duration_sec"},
			{`{"budget_duration_sec": 1.5}`, "budget_duration_sec"},
			{`{"max_budget": "10"}`, "max_budget"},
			{`{"max_budget": 1e40}`, "max_budget"}, // beyond what Money holds
			{`{"max_budget": 10, "currency": "EUR"}`, "currency"},
		} {
			expectValidation(t, g.adminDo("POST", "/v1/budgets", tc.body), tc.field)
		}
		if n := len(list(t, g.adminDo("GET", "/v1/budgets", nil))); n != budgetsBefore+1 {
			t.Fatalf("%d budgets after refused creates, want %d", n, budgetsBefore+1)
		}

		got := expect(t, g.adminDo("GET", "/v1/budgets/"+id, nil), http.StatusOK).Map(t)
		if !jsonEqual(t, got, b) {
			t.Fatalf("GET budget = %v, POST answered %v", got, b)
		}
		p := expect(t, g.adminDo("PATCH", "/v1/budgets/"+id, `{"max_budget": 25}`), http.StatusOK).Map(t)
		if p["max_budget"] != 25.0 || p["budget_duration_sec"] != nil || p["created_at"] != b["created_at"] {
			t.Fatalf("PATCH max_budget = %v", p)
		}
		p = expect(t, g.adminDo("PATCH", "/v1/budgets/"+id, `{"budget_duration_sec": 60}`), http.StatusOK).Map(t)
		if p["max_budget"] != 25.0 || p["budget_duration_sec"] != 60.0 {
			t.Fatalf("PATCH budget_duration_sec = %v", p)
		}
		expectValidation(t, g.adminDo("PATCH", "/v1/budgets/"+id, `{"budget_duration_sec": 0}`), "budget_duration_sec")
		expectValidation(t, g.adminDo("PATCH", "/v1/budgets/"+id, `{"max_budget": -5}`), "max_budget")
		if got := expect(t, g.adminDo("GET", "/v1/budgets/"+id, nil), http.StatusOK).Map(t); got["max_budget"] != 25.0 || got["budget_duration_sec"] != 60.0 {
			t.Fatalf("refused PATCHes changed the budget: %v", got)
		}
		for _, m := range []string{"GET", "PATCH", "DELETE"} {
			var body any
			if m == "PATCH" {
				body = `{"max_budget": 1}`
			}
			expectErrorType(t, g.adminDo(m, "/v1/budgets/no-such-budget", body), http.StatusNotFound,
				"Budget with id 'no-such-budget' not found", "not_found_error")
		}

		// Deleting a budget takes it off its users.
		g.newUser(fmt.Sprintf(`{"user_id": "dave", "budget_id": %q}`, id))
		g.newUser(fmt.Sprintf(`{"user_id": "erin", "budget_id": %q}`, id))
		expectNoContent(t, g.adminDo("DELETE", "/v1/budgets/"+id, nil))
		expectErrorType(t, g.adminDo("GET", "/v1/budgets/"+id, nil), http.StatusNotFound,
			fmt.Sprintf("Budget with id '%s' not found", id), "not_found_error")
		for _, u := range []string{"dave", "erin"} {
			got := expect(t, g.adminDo("GET", "/v1/users/"+u, nil), http.StatusOK).Map(t)
			if got["budget_id"] != nil || got["budget_started_at"] != nil || got["next_budget_reset_at"] != nil {
				t.Fatalf("user %s still on a deleted budget: %v", u, got)
			}
		}
		expectErrorType(t, g.adminDo("DELETE", "/v1/budgets/"+id, nil), http.StatusNotFound,
			fmt.Sprintf("Budget with id '%s' not found", id), "not_found_error")
	})

	t.Run("pricing", func(t *testing.T) {
		g := g.on(t)
		seeded := expect(t, g.adminDo("GET", "/v1/pricing/openai:gpt-4o-mini", nil), http.StatusOK).Map(t)
		if seeded["model_key"] != "openai:gpt-4o-mini" || seeded["input_price_per_million"] != 0.15 || seeded["output_price_per_million"] != 0.6 || seeded["source"] != "config" {
			t.Fatalf("seeded price = %v", seeded)
		}
		// A config price is read-only through the API: the next reload
		// would undo the change.
		for _, req := range []struct{ method, path, body string }{
			{"POST", "/v1/pricing", `{"model_key": "openai:gpt-4o-mini", "input_price_per_million": 9, "output_price_per_million": 9}`},
			{"POST", "/v1/pricing", `{"model_key": "openai/gpt-4o-mini", "input_price_per_million": 9, "output_price_per_million": 9}`},
			{"DELETE", "/v1/pricing/openai:gpt-4o-mini", ""},
			{"DELETE", "/v1/pricing/openai/gpt-4o-mini", ""},
		} {
			var body any
			if req.body != "" {
				body = req.body
			}
			expectErrorType(t, g.adminDo(req.method, req.path, body), http.StatusConflict,
				"Pricing for model 'openai:gpt-4o-mini' is set in the gateway config: change the price line there and reload", "invalid_request_error")
		}
		if again := expect(t, g.adminDo("GET", "/v1/pricing/openai:gpt-4o-mini", nil), http.StatusOK).Map(t); !jsonEqual(t, again, seeded) {
			t.Fatalf("config price after refused writes = %v, want %v", again, seeded)
		}
		for _, f := range []string{"created_at", "updated_at"} {
			apiTimeOf(t, seeded[f])
		}

		p := expect(t, g.adminDo("POST", "/v1/pricing",
			`{"model_key": "openai/gpt-4o", "input_price_per_million": 2.5, "output_price_per_million": 10}`), http.StatusOK).Map(t)
		if p["model_key"] != "openai:gpt-4o" || p["input_price_per_million"] != 2.5 || p["output_price_per_million"] != 10.0 || p["source"] != "api" {
			t.Fatalf("upserted price = %v", p)
		}
		got := expect(t, g.adminDo("GET", "/v1/pricing/openai:gpt-4o", nil), http.StatusOK).Map(t)
		if !jsonEqual(t, got, p) {
			t.Fatalf("GET price = %v, POST answered %v", got, p)
		}
		// Upsert replaces the prices and keeps created_at.
		p2 := expect(t, g.adminDo("POST", "/v1/pricing",
			`{"model_key": "openai:gpt-4o", "input_price_per_million": 5, "output_price_per_million": 20}`), http.StatusOK).Map(t)
		if p2["input_price_per_million"] != 5.0 || p2["output_price_per_million"] != 20.0 || p2["created_at"] != p["created_at"] {
			t.Fatalf("second upsert = %v (first %v)", p2, p)
		}
		if apiTimeOf(t, p2["updated_at"]).Before(apiTimeOf(t, p["updated_at"])) {
			t.Fatalf("updated_at went back")
		}
		// A model name may itself contain '/'.
		or := expect(t, g.adminDo("POST", "/v1/pricing",
			`{"model_key": "openrouter:openai/gpt-4o", "input_price_per_million": 3, "output_price_per_million": 12}`), http.StatusOK).Map(t)
		if or["model_key"] != "openrouter:openai/gpt-4o" {
			t.Fatalf("openrouter price = %v", or)
		}
		expect(t, g.adminDo("GET", "/v1/pricing/openrouter:openai/gpt-4o", nil), http.StatusOK)

		prices := list(t, g.adminDo("GET", "/v1/pricing", nil))
		keys := map[string]int{}
		for _, pr := range prices {
			keys[pr["model_key"].(string)]++
		}
		if len(prices) != 4 || keys["mock:ok"] != 1 || keys["openai:gpt-4o"] != 1 || keys["openai:gpt-4o-mini"] != 1 || keys["openrouter:openai/gpt-4o"] != 1 {
			t.Fatalf("price list = %v", prices)
		}

		for _, tc := range []struct{ body, field string }{
			{`{"input_price_per_million": 1, "output_price_per_million": 1}`, "model_key"},
			{`{"model_key": "openai:x", "output_price_per_million": 1}`, "input_price_per_million"},
			{`{"model_key": "openai:x", "input_price_per_million": 1}`, "output_price_per_million"},
			{`{"model_key": "openai:x", "input_price_per_million": -1, "output_price_per_million": 1}`, "input_price_per_million"},
			{`{"model_key": "openai:x", "input_price_per_million": 1, "output_price_per_million": -0.5}`, "output_price_per_million"},
			{`{"model_key": "openai:x", "input_price_per_million": "1", "output_price_per_million": 1}`, "input_price_per_million"},
			{`{"model_key": "gpt-4o", "input_price_per_million": 1, "output_price_per_million": 1}`, "model_key"},
			{`{"model_key": 7, "input_price_per_million": 1, "output_price_per_million": 1}`, "model_key"},
		} {
			expectValidation(t, g.adminDo("POST", "/v1/pricing", tc.body), tc.field)
		}
		expectErrorType(t, g.adminDo("GET", "/v1/pricing/openai:x", nil), http.StatusNotFound,
			"Pricing for model 'openai:x' not found", "not_found_error")

		expectNoContent(t, g.adminDo("DELETE", "/v1/pricing/openai:gpt-4o", nil))
		expectErrorType(t, g.adminDo("GET", "/v1/pricing/openai:gpt-4o", nil), http.StatusNotFound,
			"Pricing for model 'openai:gpt-4o' not found", "not_found_error")
		expectErrorType(t, g.adminDo("DELETE", "/v1/pricing/openai:gpt-4o", nil), http.StatusNotFound,
			"Pricing for model 'openai:gpt-4o' not found", "not_found_error")
		expectErrorType(t, g.adminDo("GET", "/v1/pricing/anthropic:nothing", nil), http.StatusNotFound,
			"Pricing for model 'anthropic:nothing' not found", "not_found_error")
		if n := len(list(t, g.adminDo("GET", "/v1/pricing", nil))); n != 3 {
			t.Fatalf("%d prices after the delete, want 3", n)
		}
	})

	t.Run("keys", func(t *testing.T) {
		g := g.on(t)
		k := g.newKey(`{"key_name": "full", "user_id": "kate", "expires_at": "2030-01-01T12:00:00+02:00",
			"metadata": {"env": "prod"}, "allowed_models": ["openai:gpt-4o-mini", "anthropic:*"],
			"max_budget": 12.5, "budget_duration_sec": 86400, "rpm_limit": 60, "tpm_limit": 100000}`)
		if k.UserID != "kate" || k.ExpiresAt == nil || *k.ExpiresAt != "2030-01-01T10:00:00Z" || !jsonEqual(t, k.Metadata, `{"env":"prod"}`) {
			t.Fatalf("created key = %+v", k)
		}
		if u := expect(t, g.adminDo("GET", "/v1/users/kate", nil), http.StatusOK).Map(t); u["alias"] != "User kate" {
			t.Fatalf("auto-created user = %v", u)
		}
		r := expect(t, g.adminDo("GET", "/v1/keys/"+k.ID, nil), http.StatusOK)
		assertNoSecret(t, "GET key", r.Body, k.Key)
		got := r.Map(t)
		if _, ok := got["key"]; ok {
			t.Fatalf("GET key carries 'key': %s", r.Body)
		}
		for _, f := range []string{"id", "key_name", "user_id", "created_at", "last_used_at", "expires_at", "is_active",
			"metadata", "key_prefix", "spend", "allowed_models", "max_budget", "budget_duration_sec", "rpm_limit", "tpm_limit"} {
			if _, ok := got[f]; !ok {
				t.Fatalf("key lacks %q: %s", f, r.Body)
			}
		}
		if got["key_prefix"] != k.Key[:8] || got["spend"] != 0.0 || got["last_used_at"] != nil || got["max_budget"] != 12.5 ||
			got["rpm_limit"] != 60.0 || got["tpm_limit"] != 100000.0 || got["budget_duration_sec"] != 86400.0 ||
			!jsonEqual(t, got["allowed_models"], `["openai:gpt-4o-mini","anthropic:*"]`) {
			t.Fatalf("GET key = %s", r.Body)
		}

		// A second key for the same user leaves the user alone.
		g.newKey(`{"user_id": "kate", "key_name": "second"}`)
		if u := expect(t, g.adminDo("GET", "/v1/users/kate", nil), http.StatusOK).Map(t); u["alias"] != "User kate" {
			t.Fatalf("user after a second key = %v", u)
		}

		// last_used_at is set once the key is used.
		expect(t, g.do("GET", "/v1/pricing", nil, bearer(k.Key)...), http.StatusOK)
		got = expect(t, g.adminDo("GET", "/v1/keys/"+k.ID, nil), http.StatusOK).Map(t)
		if got["last_used_at"] == nil {
			t.Fatalf("last_used_at not set after use: %v", got)
		}
		recent(t, "last_used_at", apiTimeOf(t, got["last_used_at"]))

		// PATCH changes only the given fields.
		p := expect(t, g.adminDo("PATCH", "/v1/keys/"+k.ID, `{"key_name": "renamed"}`), http.StatusOK)
		assertNoSecret(t, "PATCH key", p.Body, k.Key)
		pm := p.Map(t)
		if pm["key_name"] != "renamed" || pm["is_active"] != true || pm["expires_at"] != "2030-01-01T10:00:00Z" ||
			!jsonEqual(t, pm["metadata"], `{"env":"prod"}`) || pm["rpm_limit"] != 60.0 || pm["user_id"] != "kate" {
			t.Fatalf("PATCH key_name = %v", pm)
		}
		pm = expect(t, g.adminDo("PATCH", "/v1/keys/"+k.ID, `{"metadata": {"env": "dev"}, "rpm_limit": 5}`), http.StatusOK).Map(t)
		if pm["key_name"] != "renamed" || !jsonEqual(t, pm["metadata"], `{"env":"dev"}`) || pm["rpm_limit"] != 5.0 || pm["tpm_limit"] != 100000.0 {
			t.Fatalf("PATCH metadata = %v", pm)
		}

		keysBefore := len(list(t, g.adminDo("GET", "/v1/keys", nil)))
		for _, tc := range []struct{ body, field string }{
			{`{"expires_at": "next tuesday"}`, "expires_at"},
			{`{"expires_at": 1735689599}`, "expires_at"},
			{`{"key_name": 5}`, "key_name"},
			{`{"metadata": ["a"]}`, "metadata"},
			{`{"metadata": "x"}`, "metadata"},
			{`{"allowed_models": ["gpt-4o"]}`, "allowed_models"},
			{`{"allowed_models": "openai:*"}`, "allowed_models"},
			{`{"max_budget": -1}`, "max_budget"},
			{`{"budget_duration_sec": 0}`, "budget_duration_sec"},
			{`{"rpm_limit": 0}`, "rpm_limit"},
			{`{"tpm_limit": -1}`, "tpm_limit"},
			{`{"rpm_limit": "10"}`, "rpm_limit"},
			{`{"is_active": false}`, "is_active"}, // not a create field
			{`{"user_id": ""}`, "user_id"},
		} {
			expectValidation(t, g.adminDo("POST", "/v1/keys", tc.body), tc.field)
		}
		for _, tc := range []struct{ body, field string }{
			{`{"is_active": "false"}`, "is_active"},
			{`{"expires_at": "soon"}`, "expires_at"},
			{`{"user_id": "someone-else"}`, "user_id"},
			{`{"rpm_limit": -5}`, "rpm_limit"},
		} {
			expectValidation(t, g.adminDo("PATCH", "/v1/keys/"+k.ID, tc.body), tc.field)
		}
		if n := len(list(t, g.adminDo("GET", "/v1/keys", nil))); n != keysBefore {
			t.Fatalf("%d keys after refused creates, want %d", n, keysBefore)
		}
		for _, m := range []string{"GET", "PATCH", "DELETE"} {
			var body any
			if m == "PATCH" {
				body = `{"is_active": false}`
			}
			expectErrorType(t, g.adminDo(m, "/v1/keys/no-such-key", body), http.StatusNotFound,
				"API key with id 'no-such-key' not found", "not_found_error")
		}
		if !uuidPattern.MatchString(k.ID) {
			t.Fatalf("key id %q is not a UUID", k.ID)
		}
	})
}

// TestAdminConventions checks the contract's conventions: pagination, status
// codes, headers, body limits, strict JSON, routing and health.
func TestAdminConventions(t *testing.T) {
	t.Parallel()
	g := startChecked(t, gatewayConfig{Block: "cors_allow_origins https://app.example"})
	for i := 1; i <= 5; i++ {
		g.newUser(fmt.Sprintf(`{"user_id": "u%02d"}`, i))
		g.newKey(fmt.Sprintf(`{"user_id": "u%02d"}`, i))
		g.newBudget(`{}`)
	}

	t.Run("pagination", func(t *testing.T) {
		g := g.on(t)
		lists := []string{"/v1/users", "/v1/keys", "/v1/budgets", "/v1/pricing", "/v1/usage", "/v1/users/u01/usage"}
		for _, path := range lists {
			for _, q := range []struct{ query, field string }{
				{"limit=0", "limit"}, {"limit=1001", "limit"}, {"limit=-1", "limit"}, {"limit=abc", "limit"},
				{"limit=1.5", "limit"}, {"skip=-1", "skip"}, {"skip=abc", "skip"}, {"skip=1&limit=0", "limit"},
			} {
				r := g.adminDo("GET", path+"?"+q.query, nil)
				expectValidation(t, r, q.field)
				checkHeaders(t, r, true)
			}
			for _, q := range []string{"limit=1", "limit=1000", "skip=0", "skip=100000", "skip=0&limit=100"} {
				list(t, g.adminDo("GET", path+"?"+q, nil))
			}
			if r := g.adminDo("GET", path+"?skip=100000", nil); string(bytes.TrimSpace(r.Body)) != "[]" {
				t.Fatalf("%s past the end = %s, want []", path, r.Body)
			}
		}
		for _, q := range []struct{ query, field string }{
			{"start_date=yesterday", "start_date"}, {"end_date=2025-13-01", "end_date"},
			{"start_date=2026-01-02T00:00:00Z&end_date=2026-01-01T00:00:00Z", "end_date"},
		} {
			expectValidation(t, g.adminDo("GET", "/v1/usage?"+q.query, nil), q.field)
		}
		for _, q := range []string{"start_date=2026-01-01T00:00:00Z", "start_date=2026-01-01T02:00:00%2B02:00", "end_date=1767225600",
			"user_id=u01", "api_key_id=x", "model=gpt-4o-mini"} {
			list(t, g.adminDo("GET", "/v1/usage?"+q, nil))
		}
		for _, path := range []string{"/v1/users", "/v1/keys", "/v1/budgets"} {
			all := list(t, g.adminDo("GET", path, nil))
			if len(all) != 5 {
				t.Fatalf("%s lists %d items", path, len(all))
			}
			one := list(t, g.adminDo("GET", path+"?limit=1", nil))
			if len(one) != 1 || !jsonEqual(t, one[0], all[0]) {
				t.Fatalf("%s?limit=1 = %v, want the first of %v", path, one, all)
			}
			page := list(t, g.adminDo("GET", path+"?skip=1&limit=2", nil))
			if len(page) != 2 || !jsonEqual(t, page, all[1:3]) {
				t.Fatalf("%s?skip=1&limit=2 = %v, want items 1..2 of %v", path, page, all)
			}
			tail := list(t, g.adminDo("GET", fmt.Sprintf("%s?skip=%d", path, len(all)-1), nil))
			if len(tail) != 1 || !jsonEqual(t, tail[0], all[len(all)-1]) {
				t.Fatalf("%s last page = %v", path, tail)
			}
		}
	})

	t.Run("status codes", func(t *testing.T) {
		g := g.on(t)
		for _, c := range []struct{ path, body string }{
			{"/v1/users", `{"user_id": "status"}`},
			{"/v1/keys", `{"key_name": "status"}`},
			{"/v1/budgets", `{"max_budget": 1}`},
			{"/v1/pricing", `{"model_key": "openai:status", "input_price_per_million": 1, "output_price_per_million": 1}`},
		} {
			r := g.adminDo("POST", c.path, c.body)
			if r.Status != http.StatusOK {
				t.Fatalf("POST %s = %d, want 200 (never 201): %s", c.path, r.Status, r.Body)
			}
			if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Fatalf("POST %s Content-Type = %q", c.path, ct)
			}
			checkHeaders(t, r, true)
		}
		k := g.newKey(`{}`)
		r := expect(t, g.adminDo("POST", "/v1/keys/"+k.ID+"/rotate", nil), http.StatusOK)
		checkHeaders(t, r, true)
		b := g.newBudget(`{}`)
		for _, path := range []string{"/v1/users/status", "/v1/keys/" + k.ID, "/v1/budgets/" + b, "/v1/pricing/openai:status"} {
			r := g.adminDo("DELETE", path, nil)
			expectNoContent(t, r)
			checkHeaders(t, r, true)
		}
		r = g.adminDo("PUT", "/v1/users", `{}`)
		expect(t, r, http.StatusMethodNotAllowed)
		checkHeaders(t, r, true)
		if r.Header.Get("Allow") == "" {
			t.Fatalf("405 without Allow")
		}
	})

	t.Run("headers", func(t *testing.T) {
		g := g.on(t)
		ids := map[string]bool{}
		for _, r := range []*response{
			g.adminDo("GET", "/v1/users", nil),
			g.do("GET", "/v1/users", nil),
			g.adminDo("GET", "/v1/users/nobody", nil),
			g.adminDo("POST", "/v1/users", `{"user_id": 1}`),
			g.adminDo("GET", "/v1/no-such-thing", nil),
			g.adminDo("DELETE", "/v1/budgets/nope", nil),
			g.do("GET", "/v1/pricing", nil, "Authorization", "Bearer "+masterKey),
		} {
			checkHeaders(t, r, true)
			id := r.Header.Get("X-Request-Id")
			if ids[id] {
				t.Fatalf("X-Request-Id %q repeated", id)
			}
			ids[id] = true
		}
		for _, path := range []string{"/health", "/health/liveness", "/health/readiness", "/health/nope"} {
			checkHeaders(t, g.do("GET", path, nil), false)
		}
		// Vary is merged with the CORS one, not overwritten.
		r := g.do("GET", "/v1/pricing", nil, "Authorization", "Bearer "+masterKey, "Origin", "https://app.example")
		expect(t, r, http.StatusOK)
		checkHeaders(t, r, true)
		if v := varyTokens(r.Header); !containsFold(v, "Origin") || !containsFold(v, "Authorization") {
			t.Fatalf("Vary = %q, want Origin and Authorization", r.Header.Values("Vary"))
		}
		if r.Header.Get("Access-Control-Allow-Origin") != "https://app.example" {
			t.Fatalf("CORS origin not allowed: %v", r.Header)
		}
	})

	t.Run("body limit", func(t *testing.T) {
		g := g.on(t)
		big := `{"user_id": "big", "metadata": {"pad": "` + strings.Repeat("x", 1<<20) + `"}}`
		r := g.adminDo("POST", "/v1/users", big)
		expect(t, r, http.StatusRequestEntityTooLarge)
		expectErrorType(t, r, http.StatusRequestEntityTooLarge, errorMessage(t, r), "invalid_request_error")
		checkHeaders(t, r, true)
		r = g.doReader("POST", "/v1/users", strings.NewReader(big), bearer(masterKey)...)
		expect(t, r, http.StatusRequestEntityTooLarge)
		checkHeaders(t, r, true)
		r = g.adminDo("PATCH", "/v1/users/u01", big)
		expect(t, r, http.StatusRequestEntityTooLarge)
		expectErrorType(t, g.adminDo("GET", "/v1/users/big", nil), http.StatusNotFound,
			"User with id 'big' not found", "not_found_error")
		// Exactly 1 MiB is allowed.
		head := `{"user_id": "big", "metadata": {"pad": "`
		tail := `"}}`
		exact := head + strings.Repeat("y", 1<<20-len(head)-len(tail)) + tail
		expect(t, g.adminDo("POST", "/v1/users", exact), http.StatusOK)
		head = `{"metadata": {"pad": "`
		patch := head + strings.Repeat("z", 1<<20-len(head)-len(tail)) + tail
		expect(t, g.doReader("PATCH", "/v1/users/big", strings.NewReader(patch), bearer(masterKey)...), http.StatusOK)
		expect(t, g.doReader("PATCH", "/v1/users/big", strings.NewReader(patch+" "), bearer(masterKey)...), http.StatusRequestEntityTooLarge)
	})

	t.Run("strict json", func(t *testing.T) {
		g := g.on(t)
		for _, tc := range []struct{ body, field string }{
			{`{"user_id":`, ""},
			{`{"user_id": "x"`, ""},
			{`{"user_id": "x"}}`, ""},
			{`{"user_id": "x"} {"user_id": "y"}`, ""},
			{`not json`, ""},
			{`[]`, ""},
			{`"x"`, ""},
			{`null`, ""},
			{"{\"user_id\": \"x\xff\"}", ""},
			{`{"user_id": 123}`, "user_id"},
			{`{"user_id": ["x"]}`, "user_id"},
			{`{"user_id": "x", "blocked": "yes"}`, "blocked"},
			{`{"user_id": "x", "alias": 5}`, "alias"},
			{`{"user_id": "x", "metadata": [1]}`, "metadata"},
			{`{"user_id": "x", "metadata": "m"}`, "metadata"},
			{`{"user_id": "x", "budget_id": 3}`, "budget_id"},
			{`{"user_id": "x", "bogus": 1}`, "bogus"},
			{`{"user_id": "x", "spend": 100}`, "spend"},
			{`{"USER_ID": "x"}`, "USER_ID"},
			{`{"user_id": "x", "Blocked": true}`, "Blocked"},
			{`{"user_id": "a/b"}`, "user_id"},
		} {
			r := g.adminDo("POST", "/v1/users", tc.body)
			if r.Status != http.StatusUnprocessableEntity {
				t.Fatalf("POST /v1/users %q = %d, want 422: %s", tc.body, r.Status, r.Body)
			}
			expectValidation(t, r, tc.field)
		}
		expectErrorType(t, g.adminDo("GET", "/v1/users/x", nil), http.StatusNotFound,
			"User with id 'x' not found", "not_found_error")
		for _, tc := range []struct{ path, body, field string }{
			{"/v1/users/u01", `{"blocked": 1}`, "blocked"},
			{"/v1/users/u01", `{"user_id": "renamed"}`, "user_id"},
			{"/v1/users/u01", `{"alias":`, ""},
			{"/v1/budgets", `{"max_budget": "ten"}`, "max_budget"},
			{"/v1/pricing", `{"model_key": "a:b", "input_price_per_million": "1", "output_price_per_million": 1}`, "input_price_per_million"},
			{"/v1/keys", `{"expires_at": "tomorrow"}`, "expires_at"},
			{"/v1/keys", `{"allowed_models": [1]}`, "allowed_models"},
		} {
			m := "POST"
			if strings.Count(tc.path, "/") > 2 {
				m = "PATCH"
			}
			expectValidation(t, g.adminDo(m, tc.path, tc.body), tc.field)
		}
	})

	t.Run("routing", func(t *testing.T) {
		g := g.on(t)
		for _, path := range []string{"/v1/no-such-thing", "/v1", "/v1/", "/v1/users/u01/bogus", "/v1/users/u01/usage/x", "/v1/keys/a/b", "/v1/budgets/a/b"} {
			r := g.adminDo("GET", path, nil)
			expectNotFoundJSON(t, r)
			checkHeaders(t, r, true)
		}
		for _, path := range []string{"/v1/no-such-thing", "/v1/chat/nope"} { // 404 needs no credentials
			expectNotFoundJSON(t, g.do("GET", path, nil))
			expectNotFoundJSON(t, g.do("POST", path, `{}`))
		}
		for _, path := range []string{"/", "/other", "/v1x", "/v10/users", "/healthz", "/static/v1/users"} {
			r := g.do("GET", path, nil)
			if r.Status != http.StatusOK || string(r.Body) != "fallthrough" {
				t.Fatalf("GET %s = %d %q, want the next handler's 200 \"fallthrough\"", path, r.Status, r.Body)
			}
			if r.Header.Get("X-Request-Id") != "" {
				t.Fatalf("GET %s got the gateway's X-Request-Id", path)
			}
		}
	})

	t.Run("health", func(t *testing.T) {
		g := g.on(t)
		for _, h := range [][]string{nil, {"Authorization", "Basic bad"}, bearer("gw-nope")} {
			r := expect(t, g.do("GET", "/health", nil, h...), http.StatusOK)
			if !jsonEqual(t, r.Body, `{"status":"healthy"}`) {
				t.Fatalf("/health = %s", r.Body)
			}
			r = expect(t, g.do("GET", "/health/liveness", nil, h...), http.StatusOK)
			if string(r.Body) != `"I'm alive!"` {
				t.Fatalf("/health/liveness = %q, want the JSON string \"I'm alive!\" exactly", r.Body)
			}
			if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Fatalf("/health/liveness Content-Type = %q", ct)
			}
			m := expect(t, g.do("GET", "/health/readiness", nil, h...), http.StatusOK).Map(t)
			if m["status"] != "healthy" || m["database"] != "connected" {
				t.Fatalf("/health/readiness = %v", m)
			}
			if v, ok := m["version"].(string); !ok || v == "" {
				t.Fatalf("/health/readiness version = %v", m["version"])
			}
		}
	})
}

// wantPeriod checks a user's budget period started now and resets after d seconds.
func wantPeriod(t *testing.T, u map[string]any, d int) {
	t.Helper()
	started := apiTimeOf(t, u["budget_started_at"])
	recent(t, "budget_started_at", started)
	next := apiTimeOf(t, u["next_budget_reset_at"])
	if !next.Equal(started.Add(time.Duration(d) * time.Second)) {
		t.Fatalf("next_budget_reset_at = %s, want budget_started_at %s + %ds", next, started, d)
	}
}

// userIDs joins the sorted user_id of the listed users.
func userIDs(users []map[string]any) string {
	ids := make([]string, len(users))
	for i, u := range users {
		ids[i], _ = u["user_id"].(string)
	}
	slices.Sort(ids)
	return strings.Join(ids, ",")
}

// errorMessage returns the detail of an error response.
func errorMessage(t *testing.T, r *response) string {
	t.Helper()
	var body errorBody
	r.JSON(t, &body)
	return body.Detail
}
