package integration

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"testing"
)

// TestPersistenceAndSecrets: users, keys, budgets and prices survive a
// restart; a config price is the truth for its model at every start, and a
// model the config no longer prices keeps its last price; and no plaintext
// key or master key is ever written to the store or shown again.
func TestPersistenceAndSecrets(t *testing.T) {
	t.Parallel()
	mock := newMockUpstream(t)
	cfg := gatewayConfig{Block: mockProvider(mock) + "\n\t\tprovider openai\n\t\tprice openai:gpt-4o-mini 0.15 0.60\n\t\tprice openai:gpt-4o 2.5 10"}
	g := startChecked(t, cfg)

	// Some of everything.
	budget := g.newBudget(`{"max_budget": 100, "budget_duration_sec": 86400}`)
	g.newUser(fmt.Sprintf(`{"user_id": "persist-user", "alias": "P", "budget_id": %q, "metadata": {"a": [1, 2]}}`, budget))
	g.newUser(`{"user_id": "gone-user"}`)
	active := g.newKey(`{"key_name": "active", "user_id": "persist-user", "expires_at": "2099-01-01T00:00:00Z",
		"metadata": {"k": "v"}, "allowed_models": ["openai:*", "mock:ok"], "max_budget": 3, "rpm_limit": 10}`)
	inactive := g.newKey(`{"key_name": "inactive"}`)
	expect(t, g.adminDo("PATCH", "/v1/keys/"+inactive.ID, `{"is_active": false}`), http.StatusOK)
	goneKey := g.newKey(`{"user_id": "gone-user"}`)
	g.chat(active.Key)
	g.chat(active.Key)
	g.chat(goneKey.Key)
	expectNoContent(t, g.adminDo("DELETE", "/v1/users/gone-user", nil))
	rotated := g.newKey(`{"key_name": "rotated"}`)
	var rot createdKey
	expect(t, g.adminDo("POST", "/v1/keys/"+rotated.ID+"/rotate", nil), http.StatusOK).JSON(t, &rot)
	deleted := g.newKey(`{"key_name": "deleted"}`)
	expectNoContent(t, g.adminDo("DELETE", "/v1/keys/"+deleted.ID, nil))
	expect(t, g.adminDo("POST", "/v1/pricing",
		`{"model_key": "openai:gpt-4.1", "input_price_per_million": 1, "output_price_per_million": 2}`), http.StatusOK)
	expect(t, g.adminDo("POST", "/v1/pricing",
		`{"model_key": "anthropic/claude-3-5-haiku", "input_price_per_million": 0.8, "output_price_per_million": 4}`), http.StatusOK)
	expect(t, g.do("GET", "/v1/pricing", nil, bearer(active.Key)...), http.StatusOK)

	secrets := []string{masterKey, active.Key, inactive.Key, goneKey.Key, rotated.Key, rot.Key, deleted.Key}

	// Every read of the admin API, none with a plaintext key.
	reads := []string{
		"/v1/users", "/v1/users/persist-user", "/v1/users/persist-user/usage", "/v1/users/gone-user/usage",
		"/v1/keys", "/v1/keys/" + active.ID, "/v1/keys/" + rotated.ID, "/v1/keys/" + goneKey.ID,
		"/v1/budgets", "/v1/budgets/" + budget, "/v1/pricing", "/v1/usage",
	}
	snapshot := func() map[string]any {
		t.Helper()
		out := map[string]any{}
		for _, p := range reads {
			r := expect(t, g.adminDo("GET", p, nil), http.StatusOK)
			assertNoSecret(t, "GET "+p, r.Body, secrets...)
			var v any
			r.JSON(t, &v)
			out[p] = dropLastUsed(v)
		}
		return out
	}
	before := snapshot()
	if u := before["/v1/users/persist-user"].(map[string]any); math.Abs(u["spend"].(float64)-2*mockCost) > 1e-12 {
		t.Fatalf("spend of persist-user = %v, want %v", u["spend"], 2*mockCost)
	}
	if k := before["/v1/keys/"+active.ID].(map[string]any); math.Abs(k["spend"].(float64)-2*mockCost) > 1e-12 {
		t.Fatalf("spend of the active key = %v, want %v", k["spend"], 2*mockCost)
	}
	if n := len(before["/v1/usage"].([]any)); n != 3 {
		t.Fatalf("%d usage records, want 3", n)
	}
	pu := before["/v1/users/persist-user/usage"].([]any)
	if len(pu) != 2 {
		t.Fatalf("%d usage records for persist-user, want 2", len(pu))
	}
	if t0, t1 := apiTimeOf(t, pu[0].(map[string]any)["timestamp"]), apiTimeOf(t, pu[1].(map[string]any)["timestamp"]); t0.Before(t1) {
		t.Fatalf("user usage not newest first: %s before %s", t0, t1)
	}
	if n := len(before["/v1/users/gone-user/usage"].([]any)); n != 1 {
		t.Fatalf("%d usage records for the deleted user, want 1", n)
	}
	r := expect(t, g.adminDo("PATCH", "/v1/keys/"+active.ID, `{"metadata": {"k": "v"}}`), http.StatusOK)
	assertNoSecret(t, "PATCH key", r.Body, secrets...)

	// While running, the store holds the data (the walk reads real files)
	// but no secret.
	if len(filesContaining(t, g.Dir, "persist-user")) == 0 {
		t.Fatal("no file under the storage path contains a stored user id: the walk sees nothing")
	}
	wantNoSecretFiles(t, g.Dir, secrets)

	// Restart with different config prices: one changed, one dropped, one
	// for a model priced through the API, one new.
	cfg.Block = mockProvider(mock) + "\n\t\tprovider openai\n\t\tprovider mistral" +
		"\n\t\tprice openai:gpt-4o-mini 0.3 1.2\n\t\tprice openai:gpt-4.1 5 20\n\t\tprice mistral:mistral-small 0.2 0.6"
	g.stop()
	wantNoSecretFiles(t, g.Dir, secrets)
	g.writeConfig(cfg)
	g.start()

	after := snapshot()
	for _, p := range reads {
		if p == "/v1/pricing" {
			continue
		}
		if !jsonEqual(t, after[p], before[p]) {
			a, _ := json.Marshal(after[p])
			b, _ := json.Marshal(before[p])
			t.Fatalf("GET %s changed across the restart:\nbefore %s\nafter  %s", p, b, a)
		}
	}
	type price struct {
		in, out float64
		source  string
	}
	prices := map[string]price{}
	for _, p := range after["/v1/pricing"].([]any) {
		m := p.(map[string]any)
		prices[m["model_key"].(string)] = price{m["input_price_per_million"].(float64), m["output_price_per_million"].(float64), m["source"].(string)}
	}
	want := map[string]price{
		"mock:ok":                    {1, 2, "config"},
		"openai:gpt-4o-mini":         {0.3, 1.2, "config"}, // changed in the config: the config wins
		"openai:gpt-4.1":             {5, 20, "config"},    // set through the API, then priced by the config: the config wins
		"openai:gpt-4o":              {2.5, 10, "api"},     // no longer in the config: keeps its last price
		"anthropic:claude-3-5-haiku": {0.8, 4, "api"},
		"mistral:mistral-small":      {0.2, 0.6, "config"}, // new in the config
	}
	if len(prices) != len(want) {
		t.Fatalf("prices after restart = %v, want %v", prices, want)
	}
	for k, v := range want {
		if prices[k] != v {
			t.Fatalf("price of %s after restart = %v, want %v (all: %v)", k, prices[k], v, prices)
		}
	}
	for _, model := range []string{"openai:gpt-4o-mini", "openai:gpt-4.1"} {
		if !logHas(g.output.String(), "config price replaces the stored price", model) {
			t.Fatalf("no log line says the config price of %s replaced the stored one:\n%s", model, g.output.String())
		}
	}

	// Authentication state survived too.
	expect(t, g.do("GET", "/v1/pricing", nil, bearer(active.Key)...), http.StatusOK)
	expect(t, g.do("GET", "/v1/pricing", nil, bearer(rot.Key)...), http.StatusOK)
	g.chat(active.Key) // spend goes on from where it was
	if u := expect(t, g.adminDo("GET", "/v1/users/persist-user", nil), http.StatusOK).Map(t); math.Abs(u["spend"].(float64)-3*mockCost) > 1e-12 {
		t.Fatalf("spend after restart and one more request = %v, want %v", u["spend"], 3*mockCost)
	}
	after = snapshot()
	for _, c := range []struct{ key, msg string }{
		{inactive.Key, msgInactive}, {goneKey.Key, msgInactive}, {rotated.Key, msgInvalidKey}, {deleted.Key, msgInvalidKey},
	} {
		expectErrorType(t, g.do("GET", "/v1/pricing", nil, bearer(c.key)...), http.StatusUnauthorized, c.msg, "authentication_error")
	}
	expectErrorType(t, g.adminDo("GET", "/v1/users/gone-user", nil), http.StatusNotFound,
		"User with id 'gone-user' not found", "not_found_error")
	expectErrorType(t, g.adminDo("GET", "/v1/keys/"+deleted.ID, nil), http.StatusNotFound,
		fmt.Sprintf("API key with id '%s' not found", deleted.ID), "not_found_error")
	if u := expect(t, g.adminDo("GET", "/v1/users/persist-user", nil), http.StatusOK).Map(t); u["budget_id"] != budget {
		t.Fatalf("user lost its budget: %v", u)
	}
	expectErrorType(t, g.adminDo("POST", "/v1/users", `{"user_id": "persist-user"}`), http.StatusConflict,
		"User with id 'persist-user' already exists", "invalid_request_error")

	// A second restart with the same config changes nothing either.
	g.restart()
	again := snapshot()
	for _, p := range reads {
		if !jsonEqual(t, again[p], after[p]) {
			t.Fatalf("GET %s changed across the second restart", p)
		}
	}
	g.stop()
	wantNoSecretFiles(t, g.Dir, secrets)
	assertNoSecret(t, "the gateway's log", []byte(g.output.String()), secrets...)
}

// wantNoSecretFiles fails if any file under dir contains one of the secrets.
func wantNoSecretFiles(t *testing.T, dir string, secrets []string) {
	t.Helper()
	for i, s := range secrets {
		if hits := filesContaining(t, dir, s); len(hits) > 0 {
			t.Fatalf("secret #%d (%.8s…) is stored in %v", i, s, hits)
		}
	}
}

// dropLastUsed removes last_used_at from every object in v: it is written
// in the background and may legitimately be newer after a restart.
func dropLastUsed(v any) any {
	switch x := v.(type) {
	case map[string]any:
		delete(x, "last_used_at")
		for k, e := range x {
			x[k] = dropLastUsed(e)
		}
	case []any:
		for i, e := range x {
			x[i] = dropLastUsed(e)
		}
	}
	return v
}
