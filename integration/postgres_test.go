package integration

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/storage/postgres/pgtest"
)

// The PostgreSQL tests run several caddy processes on one database of the
// server named by GATEWAY_TEST_DATABASE_URL (.ci/run starts one); each test
// gets a database of its own (see pgtest).

// testDatabase creates a database for the test, dropped when it ends (after
// the gateways started later have stopped), and returns its URL, which
// carries a password, and that password, which must never be shown.
func testDatabase(t *testing.T) (dbURL, password string) {
	t.Helper()
	u, err := url.Parse(pgtest.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	password, ok := u.User.Password()
	if !ok {
		// The test server trusts local connections: a password it never
		// asks for still travels through every config and log line.
		password = "pw-" + strings.TrimPrefix(u.Path, "/") + "-never-shown"
		u.User = url.UserPassword(u.User.Username(), password)
	}
	return u.String(), password
}

// pgCluster is several caddy processes on one database.
type pgCluster struct {
	gws      []*gateway
	mock     *mockUpstream
	dbURL    string
	password string
	config   gatewayConfig
}

// startPostgresGateways starts n caddy processes on one fresh database,
// each with the budget test's mock provider and prices.
func startPostgresGateways(t *testing.T, n int) *pgCluster {
	t.Helper()
	c := postgresCluster(t, "")
	for range n {
		c.add(t)
	}
	return c
}

// postgresCluster prepares the config of caddy processes on one fresh
// database: the budget test's mock provider and prices, the extra lines of
// the llm_gateway block and the extra environment given.
func postgresCluster(t *testing.T, extra string, env ...string) *pgCluster {
	t.Helper()
	c := &pgCluster{mock: newMockUpstream(t)}
	c.dbURL, c.password = testDatabase(t)
	c.config = gatewayConfig{
		Env: append([]string{"GATEWAY_DATABASE_URL=" + c.dbURL}, env...),
		Block: fmt.Sprintf(`database_url {env.GATEWAY_DATABASE_URL}
		database_max_conns 8
		provider mock {
			base_url %s
		}
		price mock:ok %v %v`, c.mock.BaseURL(), budgetInPrice, budgetOutPrice) + extra,
	}
	return c
}

// add starts one more caddy process of the cluster.
func (c *pgCluster) add(t *testing.T) *gateway {
	t.Helper()
	g := startChecked(t, c.config)
	c.gws = append(c.gws, g)
	return g
}

func TestPostgresInstancesShareKeys(t *testing.T) {
	t.Parallel()
	c := startPostgresGateways(t, 2)
	a, b := c.gws[0], c.gws[1]

	k := a.newKey(map[string]any{"user_id": "pg-alice"})
	// A new key works on the other instance at once.
	expect(t, b.do("GET", "/v1/models", nil, bearer(k.Key)...), http.StatusOK)

	// A deactivated key is refused on the other instance within 1 s, though
	// that instance has it cached.
	expect(t, a.adminDo("PATCH", "/v1/keys/"+k.ID, `{"is_active": false}`), http.StatusOK)
	seenWithin(t, "a key deactivated on one instance refused on another", time.Second, func() bool {
		return expectOneOf(t, b.do("GET", "/v1/models", nil, bearer(k.Key)...), http.StatusUnauthorized, http.StatusOK)
	})
	// And back: reactivated on B, it works on A.
	expect(t, b.adminDo("PATCH", "/v1/keys/"+k.ID, `{"is_active": true}`), http.StatusOK)
	seenWithin(t, "a key reactivated on one instance working on another", time.Second, func() bool {
		return expectOneOf(t, a.do("GET", "/v1/models", nil, bearer(k.Key)...), http.StatusOK, http.StatusUnauthorized)
	})
}

// seenWithin polls probe until it reports true, failing when a probe that
// started more than limit after the call still reports false.
func seenWithin(t *testing.T, what string, limit time.Duration, probe func() bool) {
	t.Helper()
	since := time.Now()
	for {
		sent := time.Now()
		if probe() {
			return
		}
		if sent.Sub(since) > limit {
			t.Fatalf("not %s %v later", what, sent.Sub(since))
		}
	}
}

// expectOneOf fails unless r has status want or was; it reports whether it
// has want.
func expectOneOf(t *testing.T, r *response, want, was int) bool {
	t.Helper()
	if r.Status != want {
		expect(t, r, was)
	}
	return r.Status == want
}

func TestPostgresBudgetHoldsAcrossInstances(t *testing.T) {
	t.Parallel()
	c := startPostgresGateways(t, 3)
	gws := c.gws
	a := gws[0]
	maxBudget := float64(allowedRequests * actualCost)
	budget := a.newBudget(map[string]any{"max_budget": maxBudget})
	gws[1].newUser(map[string]any{"user_id": "pg-carol", "budget_id": budget})
	k := gws[2].newKey(map[string]any{"user_id": "pg-carol"})

	var mu sync.Mutex
	successes := 0
	var wg sync.WaitGroup
	for i := range 3 * allowedRequests {
		wg.Go(func() {
			r := gws[i%len(gws)].do("POST", "/v1/chat/completions", budgetRequest, bearer(k.Key)...)
			switch r.Status {
			case http.StatusOK:
				mu.Lock()
				successes++
				mu.Unlock()
			case http.StatusForbidden:
				msg, _ := r.Map(t)["detail"].(string)
				if !strings.HasPrefix(msg, "User 'pg-carol' has exceeded budget limit: $") &&
					!strings.HasPrefix(msg, "User 'pg-carol' has insufficient budget for this request: $") {
					t.Errorf("refusal message %q", msg)
				}
			default:
				t.Errorf("status %d: %s", r.Status, r.Body)
			}
		})
	}
	wg.Wait()
	ig := &inferenceGateway{gateway: gws[1], mock: c.mock}
	spend := ig.spend(t, "/v1/users/pg-carol")
	if successes == 0 || successes > allowedRequests || spend > maxBudget || spend != float64(successes*actualCost) {
		t.Fatalf("%d successes, spend %v; budget %v allows %d", successes, spend, maxBudget, allowedRequests)
	}
	assertSpendIsSumOfRecords(t, ig, "user_id=pg-carol", spend)
	if n := pgtest.Count(t, c.dbURL, "SELECT count(*) FROM usage_records"); n != int64(successes) {
		t.Fatalf("%d usage records in the database for %d successes", n, successes)
	}
	// Every hold was released with its record, not left to its lease.
	if n := pgtest.Count(t, c.dbURL, "SELECT count(*) FROM reservations"); n != 0 {
		t.Fatalf("%d reservations left after every request ended", n)
	}
}

func TestPostgresPasswordIsNeverShown(t *testing.T) {
	t.Parallel()
	c := startPostgresGateways(t, 1)
	g, password := c.gws[0], c.password
	g.newKey(map[string]any{"user_id": "pg-dora"})
	resp, err := http.Get("http://" + g.admin + "/config/")
	if err != nil {
		t.Fatal(err)
	}
	config, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /config/: %d, %v", resp.StatusCode, err)
	}
	if !strings.Contains(string(config), "{env.GATEWAY_DATABASE_URL}") {
		t.Fatalf("the served config does not name the placeholder: %s", config)
	}
	assertNoSecret(t, "the served config", config, password)
	out := g.output.String()
	if !logHas(out, "llm_gateway started", `"database":"postgres`, "xxxxx") {
		t.Fatalf("the start-up log does not name the database, redacted:\n%s", out)
	}
	g.stop()
	assertNoSecret(t, "the gateway's log", []byte(g.output.String()), password)
}

func TestPostgresURLOfAnotherSchemeIsAConfigError(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	cfg := ":8000 {\n\tllm_gateway {\n\t\tprovider openai\n\t\tprice openai:gpt-4o 2.5 10\n\t\tdatabase_url mysql://gw:s3cret-pw@db/gw\n\t}\n}\n"
	if err := os.WriteFile(filepath.Join(root, "Caddyfile"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"adapt", "validate"} {
		out, err := caddyCommand(t, root, cmd, "--config", "Caddyfile", "--adapter", "caddyfile")
		out = strings.ReplaceAll(out, `\"`, `"`) // the error is in a JSON log line
		want := `database_url has scheme "mysql": it must be a postgres:// or postgresql:// URL`
		if err == nil || !strings.Contains(out, want) || !strings.Contains(out, "Caddyfile:5") {
			t.Fatalf("caddy %s: %v, want an error naming Caddyfile:5 and %q:\n%s", cmd, err, want, out)
		}
		assertNoSecret(t, "caddy "+cmd+"'s output", []byte(out), "s3cret-pw")
	}
}

func TestPostgresOutageAnswers503AndServiceResumes(t *testing.T) {
	t.Parallel()
	s := newOutageScene(t, "pg-erin")
	g := s.g
	expect(t, s.chat(), http.StatusOK)
	expect(t, g.do("GET", "/health/readiness", nil), http.StatusOK)

	requestsBefore := len(s.c.mock.Requests())
	s.cut(t)
	waitFor(t, "inference answered 503 while the database is down", func() bool {
		return expectOneOf(t, s.chat(), http.StatusServiceUnavailable, http.StatusOK)
	})
	expectError(t, s.chat(), http.StatusServiceUnavailable, "Database unavailable")
	expectError(t, g.adminDo("GET", "/v1/users", nil), http.StatusServiceUnavailable, "Database unavailable")
	expect(t, g.do("GET", "/health/readiness", nil), http.StatusServiceUnavailable)
	before := len(s.c.mock.Requests())
	expect(t, s.chat(), http.StatusServiceUnavailable)
	if after := len(s.c.mock.Requests()); after != before {
		t.Fatalf("a request reached the provider while the database was down (%d → %d, %d before the outage)", before, after, requestsBefore)
	}

	// It comes back: service resumes by itself.
	s.restore()
	waitFor(t, "inference served again once the database is back", func() bool {
		return expectOneOf(t, s.chat(), http.StatusOK, http.StatusServiceUnavailable)
	})
	expect(t, g.do("GET", "/health/readiness", nil), http.StatusOK)
	assertNoSecret(t, "the gateway's log", []byte(g.output.String()), s.c.password)
}

func TestPostgresReloadSharesThePool(t *testing.T) {
	t.Parallel()
	c := startPostgresGateways(t, 1)
	g := c.gws[0]
	k := g.newKey(map[string]any{"user_id": "pg-fay"})
	expect(t, g.do("POST", "/v1/chat/completions", budgetRequest, bearer(k.Key)...), http.StatusOK)

	reloaded := c.config
	reloaded.Block += "\n\t\tprice mock:extra 1 1"
	if err := g.reload(reloaded); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the reloaded config to start", func() bool {
		return logHas(g.output.String(), "llm_gateway started", `"store_shared":true`, `"config_prices":2`)
	})
	expect(t, g.do("POST", "/v1/chat/completions", budgetRequest, bearer(k.Key)...), http.StatusOK)
	if n := strings.Count(g.output.String(), `"msg":"instance joined the database"`); n != 1 {
		t.Fatalf("the database was opened %d times across a reload, want once:\n%s", n, g.output.String())
	}
	if n := pgtest.Count(t, c.dbURL, "SELECT count(*) FROM usage_records WHERE user_id = 'pg-fay'"); n != 2 {
		t.Fatalf("%d usage records, want 2", n)
	}
}

func TestPostgresRateLimitCountsAcrossInstances(t *testing.T) {
	t.Parallel()
	c := startPostgresGateways(t, 2)
	const rpm = 3
	k := c.gws[0].newKey(map[string]any{"user_id": "pg-gus", "rpm_limit": rpm})
	ok, limited := 0, 0
	for i := range 2 * rpm {
		r := c.gws[i%2].do("POST", "/v1/chat/completions", budgetRequest, bearer(k.Key)...)
		switch r.Status {
		case http.StatusOK:
			ok++
		case http.StatusTooManyRequests:
			limited++
			expectError(t, r, http.StatusTooManyRequests, "Rate limit exceeded")
			if r.Header.Get("Retry-After") == "" {
				t.Fatal("a 429 without Retry-After")
			}
		default:
			t.Fatalf("status %d: %s", r.Status, r.Body)
		}
	}
	if ok != rpm || limited != rpm {
		t.Fatalf("%d served and %d limited of %d requests over 2 instances, want %d and %d", ok, limited, 2*rpm, rpm, rpm)
	}
}

// With auto_migrate off an instance never changes the schema: on an empty
// database it refuses to start, saying what is missing and how to migrate;
// once an operator ran `caddy llm-gateway migrate --schema-only`, it starts
// and serves.
func TestPostgresAutoMigrateOffLeavesTheSchemaToTheOperator(t *testing.T) {
	t.Parallel()
	c := postgresCluster(t, "\n\t\tauto_migrate off")
	g := newGateway(t, c.config)
	checkOutputWhenDone(t, g)
	g.launch()
	select {
	case <-g.exited:
	case <-time.After(60 * time.Second):
		t.Fatalf("caddy with auto_migrate off started on an empty database:\n%s", g.output.String())
	}
	out := g.output.String()
	if !strings.Contains(out, "database schema is behind") || !strings.Contains(out, "migrate --schema-only") {
		t.Fatalf("caddy with auto_migrate off on an empty database exited without saying the schema is behind:\n%s", out)
	}
	if n := pgtest.Count(t, c.dbURL, "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()"); n != 0 {
		t.Fatalf("caddy with auto_migrate off created %d tables", n)
	}

	if out, code := migrate(t, c.password, "--schema-only", "--from", g.Dir, "--to", c.dbURL); code != 2 {
		t.Fatalf("migrate --schema-only with --from: exit %d, want 2:\n%s", code, out)
	}
	if out, code := migrate(t, c.password, "--schema-only", "--to", c.dbURL); code != 0 || !strings.Contains(out, "is up to date") {
		t.Fatalf("migrate --schema-only: exit %d:\n%s", code, out)
	}
	g.start()
	k := g.newKey(map[string]any{"user_id": "am-off"})
	g.chat(k.Key)
}

// usage_retention with a database: an instance deletes the records older
// than it (here one written before it started), keeps the newer ones, and
// the spend they charged.
func TestPostgresUsageRetentionDeletesOldRecords(t *testing.T) {
	t.Parallel()
	c := postgresCluster(t, "")
	a := c.add(t)
	k := a.newKey(map[string]any{"user_id": "ret-ann"})
	a.chat(k.Key)
	spend := a.spend(t, "/v1/users/ret-ann")
	pgtest.Exec(t, c.dbURL, `INSERT INTO usage_records (id, request_id, user_id, ts, model, provider, endpoint,
		prompt_tokens, completion_tokens, total_tokens, cost, status, status_code, latency_ms, usage_source,
		exceeded_reservation) VALUES ('ret-old', 'r-old', 'ret-ann', now() - interval '48 hours', 'ok', 'mock',
		'/v1/chat/completions', 1, 1, 2, 0, 'success', 200, 1, 'provider', false)`)

	cfg := c.config
	cfg.Block += "\n\t\tusage_retention 24h"
	startChecked(t, cfg)
	waitFor(t, "the record older than the retention deleted", func() bool {
		return pgtest.Count(t, c.dbURL, "SELECT count(*) FROM usage_records WHERE id = 'ret-old'") == 0
	})
	if n := pgtest.Count(t, c.dbURL, "SELECT count(*) FROM usage_records WHERE user_id = 'ret-ann'"); n != 1 {
		t.Fatalf("%d records of ret-ann left, want the fresh one", n)
	}
	if got := a.spend(t, "/v1/users/ret-ann"); got != spend {
		t.Fatalf("spend after the deletion = %v, want %v", got, spend)
	}
}
