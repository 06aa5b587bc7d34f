package integration

import (
	"encoding/json"
	"errors"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/llmgateway/caddy-llm-gateway/storage/postgres/pgtest"
)

// migrate runs `caddy llm-gateway migrate` with args and returns its
// output and exit code; the output never shows the database password.
func migrate(t *testing.T, password string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(caddyBin, append([]string{"llm-gateway", "migrate"}, args...)...)
	cmd.Env = caddyEnv(t.TempDir(), "PROVIDER_KEY")
	out, err := cmd.CombinedOutput()
	assertNoSecret(t, "migrate's output", out, password)
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

func TestMigrateMovesABadgerGatewayIntoPostgres(t *testing.T) {
	t.Parallel()
	m := newMockUpstream(t)
	badger := startChecked(t, gatewayConfig{Block: mockProvider(m)})
	alice := badger.userOnBudget(t, "mig-alice", 100, map[string]any{"rpm_limit": 1000})
	bob := badger.newKey(map[string]any{"user_id": "mig-bob", "max_budget": 50})
	badger.chat(alice)
	badger.chat(alice)
	badger.chat(bob.Key)
	aliceSpend := badger.spend(t, "/v1/users/mig-alice")
	bobKeySpend := badger.spend(t, "/v1/keys/"+bob.ID)
	usage := list(t, expect(t, badger.adminDo("GET", "/v1/usage?limit=1000", nil), http.StatusOK))
	summaries := map[string]any{}
	for _, q := range []string{"group_by=model", "group_by=user_id&interval=hour", "group_by=api_key_id&user_id=mig-alice"} {
		summaries[q] = list(t, expect(t, badger.adminDo("GET", "/v1/usage/summary?"+q, nil), http.StatusOK))
	}
	dbURL, password := testDatabase(t)

	// The store is locked while its Caddy runs; a wrong path has no store.
	if out, code := migrate(t, password, "--from", badger.Dir, "--to", dbURL); code != 4 || !strings.Contains(out, "in use") {
		t.Fatalf("migrating a running gateway's store: exit %d:\n%s", code, out)
	}
	if out, code := migrate(t, password, "--from", filepath.Join(t.TempDir(), "none"), "--to", dbURL); code != 3 {
		t.Fatalf("migrating a missing store: exit %d:\n%s", code, out)
	}
	if n := pgtest.Count(t, dbURL, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'users'"); n != 0 {
		t.Fatalf("a migration refused for its source created the schema (%d tables)", n)
	}
	badger.stop()

	out, code := migrate(t, password, "--from", badger.Dir, "--to", dbURL, "--json")
	if code != 0 {
		t.Fatalf("migrate: exit %d:\n%s", code, out)
	}
	var summary struct{ Copied map[string]int64 }
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &summary); err != nil {
		t.Fatalf("migrate --json: %v:\n%s", err, out)
	}
	// Users: mig-alice and mig-bob; spend: each user's and each key's period.
	want := map[string]int64{"users": 2, "keys": 2, "budgets": 1, "prices": 1, "spend_periods": 4, "usage_records": 3}
	if !jsonEqual(t, summary.Copied, want) {
		t.Fatalf("copied %v, want %v", summary.Copied, want)
	}
	out, code = migrate(t, password, "--from", badger.Dir, "--to", dbURL)
	if code != 0 || !strings.Contains(out, "0 users, 0 keys, 0 budgets, 0 prices, 0 spend periods, 0 usage records") {
		t.Fatalf("second migrate copied again (exit %d):\n%s", code, out)
	}

	pg := startChecked(t, gatewayConfig{
		Env:   []string{"GATEWAY_DATABASE_URL=" + dbURL},
		Block: "database_url {env.GATEWAY_DATABASE_URL}\n" + mockProvider(m),
	})
	for _, key := range []string{alice, bob.Key} {
		expect(t, pg.do("GET", "/v1/models", nil, bearer(key)...), http.StatusOK)
	}
	if got := pg.spend(t, "/v1/users/mig-alice"); got != aliceSpend || got == 0 {
		t.Errorf("mig-alice's spend: %v after the move, %v before", got, aliceSpend)
	}
	if got := pg.spend(t, "/v1/keys/"+bob.ID); got != bobKeySpend || got == 0 {
		t.Errorf("bob's key's spend: %v after the move, %v before", got, bobKeySpend)
	}
	if got := list(t, expect(t, pg.adminDo("GET", "/v1/usage?limit=1000", nil), http.StatusOK)); len(got) != 3 || !jsonEqual(t, got, usage) {
		t.Errorf("usage after the move:\n%v\nbefore:\n%v", got, usage)
	}
	for q, before := range summaries {
		if got := list(t, expect(t, pg.adminDo("GET", "/v1/usage/summary?"+q, nil), http.StatusOK)); len(got) == 0 || !jsonEqual(t, got, before) {
			t.Errorf("usage summary ?%s after the move:\n%v\nbefore:\n%v", q, got, before)
		}
	}
	pg.chat(alice) // and the moved key goes on spending
	if got := pg.spend(t, "/v1/users/mig-alice"); got <= aliceSpend {
		t.Errorf("mig-alice's spend after one more request: %v, was %v", got, aliceSpend)
	}
}

func TestMigrateReportsAnUnreachableDatabaseWithoutItsPassword(t *testing.T) {
	t.Parallel()
	const password = "pw-of-a-database-nobody-runs"
	url := "postgres://gateway:" + password + "@127.0.0.1:" + strconv.Itoa(freePort(t)) + "/gateway?sslmode=disable"
	out, code := migrate(t, password, "--from-anyllm", url, "--to", url)
	if code != 5 || !strings.Contains(out, "xxxxx") {
		t.Fatalf("unreachable database: exit %d:\n%s", code, out)
	}
	if out, code := migrate(t, password, "--to", url); code != 2 {
		t.Fatalf("no source: exit %d:\n%s", code, out)
	}
}
