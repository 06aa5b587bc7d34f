package integration

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// cliRun is one run of `caddy llm-gateway …`.
type cliRun struct {
	stdout, stderr string
	code           int
}

// cli runs `caddy llm-gateway args…` against g with the master key in
// GATEWAY_MASTER_KEY set to key (unset when empty).
func cli(t *testing.T, g *gateway, key string, args ...string) cliRun {
	t.Helper()
	if g != nil {
		args = append(args, "--url", g.URL)
	}
	cmd := exec.Command(caddyBin, append([]string{"llm-gateway"}, args...)...)
	var env []string
	for _, kv := range caddyEnv(t.TempDir(), "PROVIDER_KEY") {
		if !strings.HasPrefix(kv, "GATEWAY_MASTER_KEY=") {
			env = append(env, kv)
		}
	}
	if key != "" {
		env = append(env, "GATEWAY_MASTER_KEY="+key)
	}
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	run := cliRun{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		run.code = exit.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	assertNoSecret(t, "the command's output", []byte(run.stdout+run.stderr), masterKey)
	return run
}

// ok runs a command that must succeed and returns its standard output.
func cliOK(t *testing.T, g *gateway, args ...string) string {
	t.Helper()
	r := cli(t, g, masterKey, args...)
	if r.code != 0 {
		t.Fatalf("llm-gateway %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// cliJSON runs a command with --json that must succeed and decodes its
// output into v.
func cliJSON(t *testing.T, g *gateway, v any, args ...string) {
	t.Helper()
	out := cliOK(t, g, append(args, "--json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("llm-gateway %s --json printed %q: %v", strings.Join(args, " "), out, err)
	}
}

// cliFails runs a command that must fail with code, its standard error
// naming the problem.
func cliFails(t *testing.T, g *gateway, key string, code int, message string, args ...string) {
	t.Helper()
	r := cli(t, g, key, args...)
	if r.code != code || !strings.Contains(r.stderr, message) || strings.Contains(r.stderr, "goroutine ") {
		t.Fatalf("llm-gateway %s: exit %d, want %d with %q\nstdout: %s\nstderr: %s",
			strings.Join(args, " "), r.code, code, message, r.stdout, r.stderr)
	}
}

func mustContain(t *testing.T, what, out string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(out, p) {
			t.Fatalf("%s lacks %q:\n%s", what, p, out)
		}
	}
}

// TestCLIManagesUsersKeysBudgetsAndPrices runs every subcommand of
// `caddy llm-gateway` against a running gateway, tables and --json, and
// checks each change through the admin API and inference.
func TestCLIManagesUsersKeysBudgetsAndPrices(t *testing.T) {
	t.Parallel()
	mock := newMockUpstream(t)
	g := startChecked(t, gatewayConfig{Block: mockProvider(mock)})

	// Budgets.
	var budget map[string]any
	cliJSON(t, g, &budget, "budgets", "create", "--max-budget", "12.5", "--duration-sec", "86400")
	budgetID, _ := budget["budget_id"].(string)
	if budgetID == "" || budget["max_budget"] != 12.5 {
		t.Fatalf("budgets create printed %v", budget)
	}
	mustContain(t, "budgets list", cliOK(t, g, "budgets", "list"), "BUDGET_ID", budgetID, "12.5", "86400")
	mustContain(t, "budgets get", cliOK(t, g, "budgets", "get", budgetID), "max_budget", "12.5")

	// Users.
	out := cliOK(t, g, "users", "create", "cli-alice", "--alias", "Alice", "--budget-id", budgetID)
	mustContain(t, "users create", out, "user_id", "cli-alice", "Alice", budgetID)
	cliOK(t, g, "users", "create", "cli-bob")
	mustContain(t, "users list", cliOK(t, g, "users", "list"), "USER_ID", "cli-alice", "cli-bob", "Alice")
	var users []map[string]any
	cliJSON(t, g, &users, "users", "list", "--limit", "1")
	if len(users) != 1 || users[0]["user_id"] != "cli-alice" {
		t.Fatalf("users list --limit 1 --json = %v", users)
	}
	cliOK(t, g, "users", "update", "cli-bob", "--alias", "Bob")
	var bob map[string]any
	expect(t, g.adminDo("GET", "/v1/users/cli-bob", nil), http.StatusOK).JSON(t, &bob)
	if bob["alias"] != "Bob" {
		t.Fatalf("after users update, cli-bob = %v", bob)
	}
	mustContain(t, "users get", cliOK(t, g, "users", "get", "cli-bob"), "alias", "Bob")

	// Keys: create shows the secret once; the key works.
	var key createdKey
	cliJSON(t, g, &key, "keys", "create", "--name", "cli-key", "--user", "cli-alice", "--max-budget", "3", "--rpm-limit", "100", "--allowed-models", "mock:*")
	if !keyPattern.MatchString(key.Key) || key.UserID != "cli-alice" {
		t.Fatalf("keys create --json printed %+v", key)
	}
	out = cliOK(t, g, "keys", "create", "--user", "cli-bob")
	mustContain(t, "keys create", out, "gw-", "shown this once")
	g.chat(key.Key)
	list := cliOK(t, g, "keys", "list")
	mustContain(t, "keys list", list, "KEY_PREFIX", key.ID, "cli-key", key.Key[:8])
	if strings.Contains(list, key.Key) {
		t.Fatal("keys list shows a secret")
	}
	mustContain(t, "keys get", cliOK(t, g, "keys", "get", key.ID), "rpm_limit", "100", "mock:*")

	// Deactivate, activate, rotate, delete.
	cliOK(t, g, "keys", "deactivate", key.ID)
	expectError(t, g.do("GET", "/v1/models", nil, bearer(key.Key)...), http.StatusUnauthorized, "API key is inactive")
	cliOK(t, g, "keys", "activate", key.ID)
	expect(t, g.do("GET", "/v1/models", nil, bearer(key.Key)...), http.StatusOK)
	var rotated createdKey
	cliJSON(t, g, &rotated, "keys", "rotate", key.ID)
	if rotated.ID != key.ID || rotated.Key == key.Key || !keyPattern.MatchString(rotated.Key) {
		t.Fatalf("keys rotate printed %+v", rotated)
	}
	expectError(t, g.do("GET", "/v1/models", nil, bearer(key.Key)...), http.StatusUnauthorized, "Invalid API key")
	expect(t, g.do("GET", "/v1/models", nil, bearer(rotated.Key)...), http.StatusOK)
	mustContain(t, "keys rotate", cliOK(t, g, "keys", "rotate", key.ID), "gw-", "shown this once")

	// Block and unblock.
	cliOK(t, g, "users", "block", "cli-alice")
	var alice map[string]any
	expect(t, g.adminDo("GET", "/v1/users/cli-alice", nil), http.StatusOK).JSON(t, &alice)
	if alice["blocked"] != true {
		t.Fatalf("after users block, cli-alice = %v", alice)
	}
	cliOK(t, g, "users", "unblock", "cli-alice")

	// Pricing, a model key with a '/' too.
	mustContain(t, "pricing set", cliOK(t, g, "pricing", "set", "mock:big/v2", "1.25", "10"), "mock:big/v2", "1.25", "10")
	mustContain(t, "pricing list", cliOK(t, g, "pricing", "list"), "MODEL_KEY", "mock:ok", "mock:big/v2")
	var price map[string]any
	cliJSON(t, g, &price, "pricing", "get", "mock:big/v2")
	if price["input_price_per_million"] != 1.25 {
		t.Fatalf("pricing get printed %v", price)
	}
	mustContain(t, "pricing delete", cliOK(t, g, "pricing", "delete", "mock:big/v2"), "Deleted")
	cliFails(t, g, masterKey, 3, "not found", "pricing", "get", "mock:big/v2")

	// Usage: the summary as a table and as the endpoint's JSON.
	out = cliOK(t, g, "usage", "--group-by", "model")
	mustContain(t, "usage", out, "BUCKET", "GROUP", "mock:ok", "total")
	var rows, want []summaryRow
	cliJSON(t, g, &rows, "usage", "--group-by", "user_id", "--interval", "month")
	expect(t, g.adminDo("GET", "/v1/usage/summary?group_by=user_id&interval=month", nil), http.StatusOK).JSON(t, &want)
	if len(rows) == 0 || !jsonEqual(t, rows, want) {
		t.Fatalf("usage --json = %+v, want %+v", rows, want)
	}
	mustContain(t, "usage of nobody", cliOK(t, g, "usage", "--user", "nobody"), "No usage")

	// Deletes.
	mustContain(t, "keys delete", cliOK(t, g, "keys", "delete", key.ID), "Deleted key "+key.ID)
	expectNotFoundJSON(t, g.adminDo("GET", "/v1/keys/"+key.ID, nil))
	cliOK(t, g, "users", "delete", "cli-bob")
	expectNotFoundJSON(t, g.adminDo("GET", "/v1/users/cli-bob", nil))
	cliOK(t, g, "budgets", "delete", budgetID)
	expectNotFoundJSON(t, g.adminDo("GET", "/v1/budgets/"+budgetID, nil))
}

// TestCLIErrorsNameTheProblem: every failure is one line naming it and an
// exit code a script can test, never a stack.
func TestCLIErrorsNameTheProblem(t *testing.T) {
	t.Parallel()
	mock := newMockUpstream(t)
	g := startChecked(t, gatewayConfig{Block: mockProvider(mock)})

	cliFails(t, g, "", 4, "set GATEWAY_MASTER_KEY", "users", "list")
	cliFails(t, g, "mk-wrong-key", 4, "refused the master key", "keys", "list")
	cliFails(t, g, masterKey, 3, "API key with id 'no-such-key' not found", "keys", "rotate", "no-such-key")
	cliFails(t, g, masterKey, 3, "User with id 'nobody' not found", "users", "get", "nobody")
	cliFails(t, g, masterKey, 3, "not found", "budgets", "delete", "no-such-budget")
	cliFails(t, g, masterKey, 2, "expected <id>", "keys", "delete")
	cliFails(t, g, masterKey, 2, "nothing to change", "users", "update", "x")
	cliFails(t, g, masterKey, 2, "is not a number", "budgets", "create", "--max-budget", "lots")
	cliFails(t, nil, masterKey, 2, "is not an http", "users", "list", "--url", "localhost:8000")
	cliFails(t, g, masterKey, 6, "interval", "usage", "--interval", "week")
	cliOK(t, g, "users", "create", "dup")
	cliFails(t, g, masterKey, 6, "already exists", "users", "create", "dup")
	cliFails(t, g, masterKey, 1, "unknown flag", "users", "list", "--master-key", "x")

	// A gateway that is not there.
	port := freePort(t)
	r := cli(t, nil, masterKey, "users", "list", "--url", "http://127.0.0.1:"+strconv.Itoa(port))
	if r.code != 5 || !strings.Contains(r.stderr, "does not answer") {
		t.Fatalf("unreachable gateway: exit %d\n%s", r.code, r.stderr)
	}
}
