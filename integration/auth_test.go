package integration

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

const (
	msgMissing       = "Missing X-AnyLLM-Key or Authorization header"
	msgBadHeader     = "Invalid header format. Expected 'Bearer <token>'"
	msgInvalidMaster = "Invalid master key"
	msgInvalidKey    = "Invalid API key"
	msgInactive      = "API key is inactive"
	msgExpired       = "API key has expired"
	msgNoMaster      = "Master key not configured. Set GATEWAY_MASTER_KEY environment variable."
)

// TestAuthMatrix checks where credentials are read from and every way a
// credential is refused, over HTTP, on an admin route (master key only) and
// on GET /v1/pricing (any valid key).
func TestAuthMatrix(t *testing.T) {
	t.Parallel()
	g := startChecked(t, gatewayConfig{Block: "provider openai\n\t\tprice openai:gpt-4o-mini 0.15 0.60"})

	const admin, pricing = "/v1/users", "/v1/pricing"
	vk := g.newKey(map[string]any{"key_name": "matrix"})
	unauthorized := func(t *testing.T, r *response, msg string) {
		t.Helper()
		expectErrorType(t, r, http.StatusUnauthorized, msg, "authentication_error")
		checkHeaders(t, r, true)
		assertNoSecret(t, "401 body", r.Body, masterKey, vk.Key)
	}

	t.Run("headers", func(t *testing.T) {
		g := g.on(t)
		for _, tc := range []struct {
			name    string
			headers []string
			admin   string // message on the admin route; "" = 200
			pricing string // message on GET /v1/pricing; "" = 200
		}{
			{"missing", nil, msgMissing, msgMissing},
			{"basic auth", []string{"Authorization", "Basic dXNlcjpwYXNz"}, msgBadHeader, msgBadHeader},
			{"lowercase bearer", []string{"Authorization", "bearer " + masterKey}, msgBadHeader, msgBadHeader},
			{"x-anyllm-key without Bearer", []string{"X-AnyLLM-Key", masterKey}, msgBadHeader, msgBadHeader},
			{"malformed x-anyllm-key does not fall back",
				[]string{"X-AnyLLM-Key", "Token " + masterKey, "Authorization", "Bearer " + masterKey}, msgBadHeader, msgBadHeader},
			{"empty x-anyllm-key falls back to authorization",
				[]string{"X-AnyLLM-Key", "", "Authorization", "Bearer " + masterKey}, "", ""},
			{"empty x-anyllm-key falls back to x-api-key",
				[]string{"X-AnyLLM-Key", "", "x-api-key", masterKey}, "", ""},
			{"x-anyllm-key master", bearer(masterKey), "", ""},
			{"anyllm-key master", []string{"AnyLLM-Key", "Bearer " + masterKey}, "", ""},
			{"authorization master", []string{"Authorization", "Bearer " + masterKey}, "", ""},
			{"x-api-key master", []string{"x-api-key", masterKey}, "", ""},
			{"x-anyllm-key virtual", bearer(vk.Key), msgInvalidMaster, ""},
			{"anyllm-key virtual", []string{"AnyLLM-Key", "Bearer " + vk.Key}, msgInvalidMaster, ""},
			{"authorization virtual", []string{"Authorization", "Bearer " + vk.Key}, msgInvalidMaster, ""},
			{"x-api-key virtual", []string{"x-api-key", vk.Key}, msgInvalidMaster, ""},
			{"x-anyllm-key wins over authorization",
				[]string{"X-AnyLLM-Key", "Bearer " + vk.Key, "Authorization", "Bearer " + masterKey}, msgInvalidMaster, ""},
			{"authorization wins over x-api-key",
				[]string{"Authorization", "Bearer " + vk.Key, "x-api-key", masterKey}, msgInvalidMaster, ""},
			{"bearer invalid-key", []string{"Authorization", "Bearer invalid-key"}, msgInvalidMaster,
				"Invalid API key format: API key must start with 'gw-' prefix"},
			{"too short", bearer("gw-short"), msgInvalidMaster,
				"Invalid API key format: API key is too short. Expected at least 50 characters, got 8"},
			{"invalid characters", bearer("gw-" + strings.Repeat("a", 60) + "+"), msgInvalidMaster,
				"Invalid API key format: API key contains invalid characters. Must match pattern: gw-[A-Za-z0-9_-]+"},
			{"unknown well-formed key", bearer("gw-" + strings.Repeat("A1_-", 16)), msgInvalidMaster, msgInvalidKey},
			{"wrong master key", bearer(masterKey + "x"), msgInvalidMaster,
				"Invalid API key format: API key must start with 'gw-' prefix"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				g := g.on(t)
				for _, route := range []struct{ path, msg string }{{admin, tc.admin}, {pricing, tc.pricing}} {
					r := g.do("GET", route.path, nil, tc.headers...)
					if route.msg == "" {
						list(t, r)
						checkHeaders(t, r, true)
						continue
					}
					unauthorized(t, r, route.msg)
				}
			})
		}
	})

	t.Run("virtual key on admin routes", func(t *testing.T) {
		g := g.on(t)
		h := bearer(vk.Key)
		for _, req := range []struct {
			method, path string
			body         any
		}{
			{"GET", "/v1/users", nil},
			{"POST", "/v1/users", `{"user_id":"intruder"}`},
			{"GET", "/v1/users/" + vk.UserID, nil},
			{"PATCH", "/v1/users/" + vk.UserID, `{"blocked":false}`},
			{"DELETE", "/v1/users/" + vk.UserID, nil},
			{"GET", "/v1/users/" + vk.UserID + "/usage", nil},
			{"GET", "/v1/keys", nil},
			{"POST", "/v1/keys", `{"key_name":"escalate"}`},
			{"GET", "/v1/keys/" + vk.ID, nil},
			{"PATCH", "/v1/keys/" + vk.ID, `{"rpm_limit":100000}`},
			{"DELETE", "/v1/keys/" + vk.ID, nil},
			{"POST", "/v1/keys/" + vk.ID + "/rotate", nil},
			{"GET", "/v1/budgets", nil},
			{"POST", "/v1/budgets", `{"max_budget":1}`},
			{"POST", "/v1/pricing", `{"model_key":"openai:gpt-4o-mini","input_price_per_million":0,"output_price_per_million":0}`},
			{"DELETE", "/v1/pricing/openai:gpt-4o-mini", nil},
			{"GET", "/v1/usage", nil},
		} {
			unauthorized(t, g.do(req.method, req.path, req.body, h...), msgInvalidMaster)
		}
		// Nothing changed.
		p := expect(t, g.do("GET", "/v1/pricing/openai:gpt-4o-mini", nil, h...), http.StatusOK).Map(t)
		if p["input_price_per_million"] != 0.15 || p["output_price_per_million"] != 0.6 {
			t.Fatalf("a virtual key changed a price: %v", p)
		}
		expect(t, g.adminDo("GET", "/v1/users/intruder", nil), http.StatusNotFound)
		if k := expect(t, g.adminDo("GET", "/v1/keys/"+vk.ID, nil), http.StatusOK).Map(t); k["is_active"] != true || k["rpm_limit"] != nil {
			t.Fatalf("a virtual key changed itself: %v", k)
		}
		if n := len(list(t, g.adminDo("GET", "/v1/keys", nil))); n != 1 {
			t.Fatalf("%d keys after a virtual key tried to create one, want 1", n)
		}
		// Reads any valid key may do.
		list(t, g.do("GET", "/v1/pricing", nil, h...))
		expect(t, g.do("GET", "/v1/pricing/openai:gpt-4o-mini", nil, "x-api-key", vk.Key), http.StatusOK)
	})

	t.Run("inactive and expired keys", func(t *testing.T) {
		g := g.on(t)
		k := g.newKey(map[string]any{"key_name": "toggle"})
		expect(t, g.do("GET", pricing, nil, bearer(k.Key)...), http.StatusOK)
		expect(t, g.adminDo("PATCH", "/v1/keys/"+k.ID, `{"is_active": false}`), http.StatusOK)
		unauthorized(t, g.do("GET", pricing, nil, bearer(k.Key)...), msgInactive)
		unauthorized(t, g.do("GET", pricing, nil, "x-api-key", k.Key), msgInactive)
		expect(t, g.adminDo("PATCH", "/v1/keys/"+k.ID, `{"is_active": true}`), http.StatusOK)
		expect(t, g.do("GET", pricing, nil, bearer(k.Key)...), http.StatusOK)

		// Expired at creation.
		old := g.newKey(`{"key_name": "old", "expires_at": "2020-01-01T00:00:00Z"}`)
		unauthorized(t, g.do("GET", pricing, nil, bearer(old.Key)...), msgExpired)
		// Expiry moved into the future and back into the past.
		expect(t, g.adminDo("PATCH", "/v1/keys/"+old.ID, `{"expires_at": "2099-01-01T00:00:00Z"}`), http.StatusOK)
		expect(t, g.do("GET", pricing, nil, bearer(old.Key)...), http.StatusOK)
		expect(t, g.adminDo("PATCH", "/v1/keys/"+old.ID, `{"expires_at": "2021-06-01T00:00:00+02:00"}`), http.StatusOK)
		unauthorized(t, g.do("GET", pricing, nil, bearer(old.Key)...), msgExpired)
		// Inactive is checked before expired.
		expect(t, g.adminDo("PATCH", "/v1/keys/"+old.ID, `{"is_active": false}`), http.StatusOK)
		unauthorized(t, g.do("GET", pricing, nil, bearer(old.Key)...), msgInactive)
	})

	t.Run("rotated key", func(t *testing.T) {
		g := g.on(t)
		k := g.newKey(`{"key_name": "rotating", "metadata": {"env": "prod"}, "rpm_limit": 60}`)
		expect(t, g.do("GET", pricing, nil, bearer(k.Key)...), http.StatusOK) // cached now
		r := expect(t, g.adminDo("POST", "/v1/keys/"+k.ID+"/rotate", nil), http.StatusOK)
		var nk createdKey
		r.JSON(t, &nk)
		if !keyPattern.MatchString(nk.Key) || nk.Key == k.Key {
			t.Fatalf("rotate returned key %q (old %q)", nk.Key, k.Key)
		}
		if nk.ID != k.ID || nk.UserID != k.UserID || nk.KeyPrefix != nk.Key[:8] ||
			nk.KeyName == nil || *nk.KeyName != "rotating" || !jsonEqual(t, nk.Metadata, `{"env":"prod"}`) {
			t.Fatalf("rotated key = %s", r.Body)
		}
		if rk := r.Map(t); rk["rpm_limit"] != 60.0 {
			t.Fatalf("rotate lost the limits: %s", r.Body)
		}
		unauthorized(t, g.do("GET", pricing, nil, bearer(k.Key)...), msgInvalidKey)
		expect(t, g.do("GET", pricing, nil, bearer(nk.Key)...), http.StatusOK)
		got := expect(t, g.adminDo("GET", "/v1/keys/"+k.ID, nil), http.StatusOK)
		assertNoSecret(t, "key after rotate", got.Body, k.Key, nk.Key)
		if got.Map(t)["key_prefix"] != nk.Key[:8] {
			t.Fatalf("key_prefix after rotate = %s", got.Body)
		}
		expectErrorType(t, g.adminDo("POST", "/v1/keys/no-such-key/rotate", nil), http.StatusNotFound,
			"API key with id 'no-such-key' not found", "not_found_error")
	})

	t.Run("deleted user's keys", func(t *testing.T) {
		g := g.on(t)
		g.newUser(`{"user_id": "doomed"}`)
		k1 := g.newKey(`{"user_id": "doomed", "key_name": "one"}`)
		k2 := g.newKey(`{"user_id": "doomed", "key_name": "two"}`)
		expect(t, g.do("GET", pricing, nil, bearer(k1.Key)...), http.StatusOK) // cached now
		expectNoContent(t, g.adminDo("DELETE", "/v1/users/doomed", nil))
		for _, k := range []createdKey{k1, k2} {
			unauthorized(t, g.do("GET", pricing, nil, bearer(k.Key)...), msgInactive)
			if got := expect(t, g.adminDo("GET", "/v1/keys/"+k.ID, nil), http.StatusOK).Map(t); got["is_active"] != false {
				t.Fatalf("key of a deleted user: %v", got)
			}
		}
	})

	t.Run("deleted key", func(t *testing.T) {
		g := g.on(t)
		k := g.newKey(`{"key_name": "short-lived"}`)
		expect(t, g.do("GET", pricing, nil, bearer(k.Key)...), http.StatusOK) // cached now
		expectNoContent(t, g.adminDo("DELETE", "/v1/keys/"+k.ID, nil))
		unauthorized(t, g.do("GET", pricing, nil, bearer(k.Key)...), msgInvalidKey)
		expectErrorType(t, g.adminDo("DELETE", "/v1/keys/"+k.ID, nil), http.StatusNotFound,
			fmt.Sprintf("API key with id '%s' not found", k.ID), "not_found_error")
	})

	// Nothing the clients presented shows up in the log.
	if out := g.output.String(); strings.Contains(out, masterKey) || strings.Contains(out, vk.Key) {
		t.Fatal("the gateway's log contains a secret")
	}
}

// TestNoMasterKey: without a master key the admin routes answer 503 before
// looking at credentials, and the rest still authenticates virtual keys.
func TestNoMasterKey(t *testing.T) {
	t.Parallel()
	g := startChecked(t, gatewayConfig{NoMaster: true})
	for _, req := range []struct {
		method, path string
		body         any
	}{
		{"GET", "/v1/users", nil},
		{"POST", "/v1/users", `{"user_id":"u"}`},
		{"GET", "/v1/users/u", nil},
		{"GET", "/v1/users/u/usage", nil},
		{"GET", "/v1/keys", nil},
		{"POST", "/v1/keys", `{"key_name":"k"}`},
		{"DELETE", "/v1/keys/k", nil},
		{"GET", "/v1/budgets", nil},
		{"POST", "/v1/budgets", `{}`},
		{"POST", "/v1/pricing", `{"model_key":"openai:x","input_price_per_million":1,"output_price_per_million":1}`},
		{"DELETE", "/v1/pricing/openai:x", nil},
		{"GET", "/v1/usage", nil},
	} {
		for _, h := range [][]string{nil, bearer(masterKey), {"Authorization", "Basic Zm9vOmJhcg=="}} {
			r := g.do(req.method, req.path, req.body, h...)
			expectErrorType(t, r, http.StatusServiceUnavailable, msgNoMaster, "server_error")
			checkHeaders(t, r, true)
		}
	}
	// Reads open to any key still authenticate: without a master key the
	// configured secret is just an unknown token.
	expectErrorType(t, g.do("GET", "/v1/pricing", nil), http.StatusUnauthorized, msgMissing, "authentication_error")
	expectErrorType(t, g.do("GET", "/v1/pricing", nil, bearer(masterKey)...), http.StatusUnauthorized,
		"Invalid API key format: API key must start with 'gw-' prefix", "authentication_error")
	expectErrorType(t, g.do("GET", "/v1/pricing", nil, bearer("gw-"+strings.Repeat("x", 64))...),
		http.StatusUnauthorized, msgInvalidKey, "authentication_error")
	expect(t, g.do("GET", "/health", nil), http.StatusOK)
	if strings.Contains(g.output.String(), masterKey) {
		t.Fatal("the gateway's log contains the master key")
	}
}
