package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestReferenceAuthenticationFlow replays the curl commands of the any-llm
// gateway's authentication page verbatim (same headers, same bodies) and
// checks the answers against the contract.
func TestReferenceAuthenticationFlow(t *testing.T) {
	t.Parallel()
	g := startChecked(t, gatewayConfig{})

	// The page's headers: X-AnyLLM-Key: Bearer ${GATEWAY_MASTER_KEY} and,
	// with a body, Content-Type: application/json (g.do sets it).
	curl := func(method, path string, body any) *response {
		t.Helper()
		return g.do(method, path, body, "X-AnyLLM-Key", "Bearer "+masterKey)
	}
	var secrets []string // every plaintext key handed out
	noSecrets := func(what string, r *response) {
		t.Helper()
		assertNoSecret(t, what, r.Body, secrets...)
		assertNoSecret(t, what, r.Body, masterKey)
	}

	// Creating a User.
	r := expect(t, curl("POST", "/v1/users", `{"user_id": "user-123", "alias": "Alice"}`), http.StatusOK)
	checkHeaders(t, r, true)
	user := r.Map(t)
	wantUserFields(t, user)
	if user["user_id"] != "user-123" || user["alias"] != "Alice" || user["spend"] != 0.0 ||
		user["blocked"] != false || user["budget_id"] != nil || !jsonEqual(t, user["metadata"], `{}`) {
		t.Fatalf("created user = %v", user)
	}
	recent(t, "created_at", apiTimeOf(t, user["created_at"]))

	// With optional metadata: the same user exists, so this is a 409 ...
	metadataVariant := ` {
    "user_id": "user-123",
    "alias": "Alice",
    "metadata": {
      "department": "Engineering",
      "team": "ML",
      "email": "alice@example.com"
    }
  }`
	expectErrorType(t, curl("POST", "/v1/users", metadataVariant), http.StatusConflict,
		"User with id 'user-123' already exists", "invalid_request_error")
	// ... and after a (soft) delete it succeeds and revives the user.
	expectNoContent(t, curl("DELETE", "/v1/users/user-123", nil))
	user = expect(t, curl("POST", "/v1/users", metadataVariant), http.StatusOK).Map(t)
	wantUserFields(t, user)
	if user["user_id"] != "user-123" || user["alias"] != "Alice" || user["spend"] != 0.0 ||
		!jsonEqual(t, user["metadata"], `{"department":"Engineering","team":"ML","email":"alice@example.com"}`) {
		t.Fatalf("created user with metadata = %v", user)
	}
	got := expect(t, curl("GET", "/v1/users/user-123", nil), http.StatusOK).Map(t)
	if !jsonEqual(t, got["metadata"], user["metadata"]) || got["alias"] != "Alice" {
		t.Fatalf("GET user = %v, want %v", got, user)
	}

	// Creating a Virtual API Key.
	r = expect(t, curl("POST", "/v1/keys", `{"key_name": "mobile-app"}`), http.StatusOK)
	checkHeaders(t, r, true)
	var created map[string]any
	r.JSON(t, &created)
	for _, f := range []string{"id", "key", "key_name", "user_id", "created_at", "expires_at", "is_active", "metadata", "key_prefix"} {
		if _, ok := created[f]; !ok {
			t.Fatalf("created key lacks %q: %s", f, r.Body)
		}
	}
	var mobile createdKey
	r.JSON(t, &mobile)
	secrets = append(secrets, mobile.Key)
	if !keyPattern.MatchString(mobile.Key) || len(mobile.Key) != 67 {
		t.Fatalf("key %q is not gw- + 64 URL-safe characters (67 in all)", mobile.Key)
	}
	if mobile.ID == "" || mobile.KeyName == nil || *mobile.KeyName != "mobile-app" ||
		mobile.ExpiresAt != nil || !mobile.IsActive || !jsonEqual(t, mobile.Metadata, `{}`) {
		t.Fatalf("created key = %s", r.Body)
	}
	if mobile.KeyPrefix != mobile.Key[:8] {
		t.Fatalf("key_prefix = %q, want the first 8 characters %q", mobile.KeyPrefix, mobile.Key[:8])
	}
	recent(t, "created_at", apiTimeOf(t, created["created_at"]))
	if mobile.UserID != "apikey-"+mobile.ID {
		t.Fatalf("user_id = %q, want %q", mobile.UserID, "apikey-"+mobile.ID)
	}
	vu := expect(t, curl("GET", "/v1/users/"+mobile.UserID, nil), http.StatusOK).Map(t)
	if vu["alias"] != "Virtual user for API key: mobile-app" {
		t.Fatalf("virtual user alias = %v", vu["alias"])
	}

	// Key with Expiration: the page's date, now in the past.
	r = expect(t, curl("POST", "/v1/keys", `{
    "key_name": "trial-access",
    "expires_at": "2025-12-31T23:59:59Z"
  }`), http.StatusOK)
	var trial createdKey
	r.JSON(t, &trial)
	secrets = append(secrets, trial.Key)
	if trial.ExpiresAt == nil || *trial.ExpiresAt != "2025-12-31T23:59:59Z" || !trial.IsActive ||
		trial.KeyName == nil || *trial.KeyName != "trial-access" || !keyPattern.MatchString(trial.Key) {
		t.Fatalf("trial key = %s", r.Body)
	}
	if time.Now().After(time.Date(2025, 12, 31, 23, 59, 59, 0, time.UTC)) {
		expectErrorType(t, g.do("GET", "/v1/pricing", nil, bearer(trial.Key)...),
			http.StatusUnauthorized, "API key has expired", "authentication_error")
	}
	// The same with a date in the future works.
	future := g.newKey(`{"key_name": "trial-access", "expires_at": "2099-12-31T23:59:59Z"}`)
	secrets = append(secrets, future.Key)
	expect(t, g.do("GET", "/v1/pricing", nil, bearer(future.Key)...), http.StatusOK)

	// Using Virtual API Keys: any valid key may read prices, with either header.
	noSecrets("pricing", expect(t, g.do("GET", "/v1/pricing", nil, bearer(mobile.Key)...), http.StatusOK))
	expect(t, g.do("GET", "/v1/pricing", nil, "Authorization", "Bearer "+mobile.Key), http.StatusOK)

	// List All Keys (no Content-Type, no body).
	r = curl("GET", "/v1/keys", nil)
	keys := list(t, r)
	noSecrets("key list", r)
	if len(keys) != 3 {
		t.Fatalf("listed %d keys, want 3: %s", len(keys), r.Body)
	}
	for _, k := range keys {
		if _, ok := k["key"]; ok {
			t.Fatalf("key list carries the secret field 'key': %v", k)
		}
		for _, f := range []string{"id", "key_name", "user_id", "created_at", "last_used_at", "expires_at", "is_active", "metadata", "key_prefix"} {
			if _, ok := k[f]; !ok {
				t.Fatalf("listed key lacks %q: %v", f, k)
			}
		}
		if k["id"] == mobile.ID && (k["key_prefix"] != mobile.KeyPrefix || k["user_id"] != mobile.UserID) {
			t.Fatalf("listed key = %v", k)
		}
	}
	// OpenAI clients send the master key in Authorization.
	list(t, g.do("GET", "/v1/keys", nil, "Authorization", "Bearer "+masterKey))

	// Get one key: no secret either.
	r = expect(t, curl("GET", "/v1/keys/"+mobile.ID, nil), http.StatusOK)
	noSecrets("key get", r)
	one := r.Map(t)
	if _, ok := one["key"]; ok {
		t.Fatalf("GET key carries the secret field 'key': %s", r.Body)
	}
	if one["id"] != mobile.ID || one["key_prefix"] != mobile.KeyPrefix {
		t.Fatalf("GET key = %s", r.Body)
	}

	// Deactivate a key.
	r = expect(t, curl("PATCH", "/v1/keys/"+mobile.ID, `{"is_active": false}`), http.StatusOK)
	noSecrets("key patch", r)
	patched := r.Map(t)
	if patched["is_active"] != false || patched["key_name"] != "mobile-app" || patched["id"] != mobile.ID {
		t.Fatalf("PATCH is_active=false = %s", r.Body)
	}
	if _, ok := patched["key"]; ok {
		t.Fatalf("PATCH answer carries 'key': %s", r.Body)
	}
	expectErrorType(t, g.do("GET", "/v1/pricing", nil, bearer(mobile.Key)...),
		http.StatusUnauthorized, "API key is inactive", "authentication_error")

	// Delete a key.
	r = curl("DELETE", "/v1/keys/"+mobile.ID, nil)
	expectNoContent(t, r)
	checkHeaders(t, r, true)
	expectErrorType(t, curl("GET", "/v1/keys/"+mobile.ID, nil), http.StatusNotFound,
		fmt.Sprintf("API key with id '%s' not found", mobile.ID), "not_found_error")
	expectErrorType(t, g.do("GET", "/v1/pricing", nil, bearer(mobile.Key)...),
		http.StatusUnauthorized, "Invalid API key", "authentication_error")
	if n := len(list(t, curl("GET", "/v1/keys", nil))); n != 2 {
		t.Fatalf("%d keys listed after the delete, want 2", n)
	}

	// A key for user-123, and one for a user who does not exist yet.
	alice := g.newKey(`{"key_name": "alice-laptop", "user_id": "user-123"}`)
	secrets = append(secrets, alice.Key)
	if alice.UserID != "user-123" {
		t.Fatalf("key for user-123 has user_id %q", alice.UserID)
	}
	if u := expect(t, curl("GET", "/v1/users/user-123", nil), http.StatusOK).Map(t); u["alias"] != "Alice" {
		t.Fatalf("creating a key changed the user: %v", u)
	}
	bob := g.newKey(`{"key_name": "bob", "user_id": "user-456"}`)
	secrets = append(secrets, bob.Key)
	if u := expect(t, curl("GET", "/v1/users/user-456", nil), http.StatusOK).Map(t); u["alias"] != "User user-456" || u["spend"] != 0.0 {
		t.Fatalf("auto-created user = %v", u)
	}
	unnamed := g.newKey(`{}`)
	secrets = append(secrets, unnamed.Key)
	if unnamed.KeyName != nil || unnamed.UserID != "apikey-"+unnamed.ID {
		t.Fatalf("unnamed key = %+v", unnamed)
	}
	if u := expect(t, curl("GET", "/v1/users/"+unnamed.UserID, nil), http.StatusOK).Map(t); u["alias"] != "Virtual user for API key: unnamed" {
		t.Fatalf("unnamed key's user alias = %v", u["alias"])
	}

	// None of the read APIs ever shows a plaintext key.
	for _, p := range []string{"/v1/keys", "/v1/users", "/v1/users/user-123", "/v1/users/user-123/usage", "/v1/usage", "/v1/keys/" + alice.ID} {
		noSecrets(p, expect(t, curl("GET", p, nil), http.StatusOK))
	}
	if out := g.output.String(); strings.Contains(out, masterKey) {
		t.Fatal("the gateway's log contains the master key")
	}
	for _, s := range secrets {
		if strings.Contains(g.output.String(), s) {
			t.Fatal("the gateway's log contains a virtual key")
		}
	}
}

// wantUserFields checks that a user object has every field of the contract.
func wantUserFields(t *testing.T, u map[string]any) {
	t.Helper()
	for _, f := range []string{"user_id", "alias", "spend", "budget_id", "budget_started_at", "next_budget_reset_at", "blocked", "created_at", "updated_at", "metadata"} {
		if _, ok := u[f]; !ok {
			data, _ := json.Marshal(u)
			t.Fatalf("user lacks %q: %s", f, data)
		}
	}
}
