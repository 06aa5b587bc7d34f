package integration

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/storage/postgres/pgtest"
)

// Requests of the fleet tests: a non-stream request the mock answers when
// the test lets it (mock:slow), and a stream held open until the mock is
// released (mock:gated); both bounded by max_tokens, so that what each holds
// while in flight is len(body)×$1 + 10×$10.
const (
	slowRequest  = `{"model":"mock:slow","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`
	gatedRequest = `{"model":"mock:gated","stream":true,"max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`
)

// fleetPrices prices the fleet tests' models as mock:ok.
var fleetPrices = fmt.Sprintf("\n\t\tprice mock:slow %v %v\n\t\tprice mock:gated %v %v",
	budgetInPrice, budgetOutPrice, budgetInPrice, budgetOutPrice)

// testLeaseEnv names the test knob of the gateway's lease length.
const testLeaseEnv = "LLM_GATEWAY_TEST_LEASE_LENGTH"

// heldFor is what a request with body holds while in flight.
func heldFor(body string) float64 { return float64(len(body)*1 + 10*10) }

// pollUntil probes every 100 ms until probe reports true, failing when it
// still reports false limit after since.
func pollUntil(t *testing.T, what string, since time.Time, limit time.Duration, probe func() bool) {
	t.Helper()
	for !probe() {
		if time.Since(since) > limit {
			t.Fatalf("not %s %v later", what, time.Since(since))
		}
		time.Sleep(100 * time.Millisecond) // the pace of polling, not synchronisation
	}
}

func TestPostgresKilledInstanceLosesNoRecordAndFreesItsHolds(t *testing.T) {
	t.Parallel()
	c := postgresCluster(t, fleetPrices)
	a, b := c.add(t), c.add(t)
	budget := a.newBudget(map[string]any{"max_budget": 1e6})
	a.newUser(map[string]any{"user_id": "pg-hal", "budget_id": budget})
	k := a.newKey(map[string]any{"user_id": "pg-hal"})

	// A burst of slow requests at B: all of them in flight at the provider,
	// some answered, then B dies with the rest in flight.
	const inFlight, answered = 8, 3
	type result struct {
		status int
		id     string
	}
	results := make(chan result, inFlight)
	before := len(c.mock.Requests())
	for range inFlight {
		go func() {
			r, err := b.tryDo("POST", "/v1/chat/completions", slowRequest, bearer(k.Key)...)
			if err != nil {
				results <- result{}
				return
			}
			results <- result{r.Status, r.Header.Get("X-Request-Id")}
		}()
	}
	waitFor(t, "the burst in flight at the provider", func() bool {
		return len(c.mock.Requests())-before == inFlight
	})
	var ok []string
	for range answered {
		c.mock.slow <- struct{}{}
	}
	for range answered {
		r := <-results
		if r.status != http.StatusOK || r.id == "" {
			t.Fatalf("an answered request got status %d, request id %q", r.status, r.id)
		}
		ok = append(ok, r.id)
	}
	if err := b.cmd.Process.Signal(os.Kill); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	<-b.exited
	for range inFlight - answered {
		if r := <-results; r.status == http.StatusOK {
			ok = append(ok, r.id)
		}
	}

	// No record of a 200 is lost.
	for _, id := range ok {
		if n := pgtest.Count(t, c.dbURL, "SELECT count(*) FROM usage_records WHERE request_id = '"+id+"'"); n != 1 {
			t.Fatalf("request %s was answered 200 by the killed instance; %d usage records", id, n)
		}
	}
	if n := pgtest.Count(t, c.dbURL, "SELECT count(*) FROM usage_records"); n != int64(len(ok)) {
		t.Fatalf("%d usage records for %d answered requests", n, len(ok))
	}

	// The budget now fits one more request, but not while any hold of the
	// dead instance counts: A refuses until B's leases run out, then admits
	// within 60 s of the kill.
	spent := float64(len(ok) * actualCost)
	max := spent + heldFor(budgetRequest) + heldFor(slowRequest)/2
	expect(t, a.adminDo("PATCH", "/v1/budgets/"+budget, map[string]any{"max_budget": max}), http.StatusOK)
	probe := func() bool {
		r := a.do("POST", "/v1/chat/completions", budgetRequest, bearer(k.Key)...)
		if r.Status == http.StatusForbidden {
			msg, _ := r.Map(t)["detail"].(string)
			if !strings.Contains(msg, "insufficient budget for this request") {
				t.Fatalf("refusal %q", msg)
			}
		}
		return expectOneOf(t, r, http.StatusOK, http.StatusForbidden)
	}
	if probe() {
		t.Fatal("a request that only fits without the dead instance's holds was admitted at once")
	}
	pollUntil(t, "admitted once the dead instance's holds expired", killed, 60*time.Second, probe)
	t.Logf("the dead instance's holds stopped counting %v after the kill", time.Since(killed).Round(time.Second))
}

func TestPostgresLongStreamKeepsItsReservation(t *testing.T) {
	t.Parallel()
	const lease = 3 * time.Second
	c := postgresCluster(t, fleetPrices, testLeaseEnv+"="+lease.String())
	a, b := c.add(t), c.add(t)
	// The budget fits the stream's hold and no request beside it, and one
	// request once the stream has settled.
	max := float64(actualCost) + heldFor(budgetRequest) + 10
	key := a.userOnBudget(t, "pg-ida", max, nil)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp := a.postStream(ctx, t, "/v1/chat/completions", gatedRequest, key)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stream status %d", resp.StatusCode)
	}
	body := bufio.NewReader(resp.Body)
	if line, err := body.ReadString('\n'); err != nil || !strings.HasPrefix(line, "data: ") {
		t.Fatalf("first stream line %q, %v", line, err)
	}

	// For four lease lengths, the other instance (whose lease loop reclaims
	// expired holds) refuses a request the stream's hold leaves no room for.
	started := time.Now()
	for time.Since(started) < 4*lease {
		r := b.do("POST", "/v1/chat/completions", budgetRequest, bearer(key)...)
		if r.Status != http.StatusForbidden {
			t.Fatalf("%v into the stream (lease %v) a request beside it got %d: %s", time.Since(started), lease, r.Status, r.Body)
		}
		// One hold, and on the short lease (the default would end 30 s out).
		if n := pgtest.Count(t, c.dbURL, "SELECT count(DISTINCT id) FROM reservations WHERE lease_expires_at < now() + interval '5 seconds'"); n != 1 {
			t.Fatalf("%v into the stream: %d reservations on the %v lease, want the stream's", time.Since(started), n, lease)
		}
		time.Sleep(250 * time.Millisecond) // the pace of probing, not synchronisation
	}

	// The stream ends: its hold goes with its record, and the budget is free.
	c.mock.release()
	rest, err := readAll(body)
	if err != nil || !strings.Contains(rest, "data: [DONE]") {
		t.Fatalf("stream end %q, %v", rest, err)
	}
	waitFor(t, "the stream's record", func() bool {
		return pgtest.Count(t, c.dbURL, "SELECT count(*) FROM usage_records WHERE user_id = 'pg-ida'") == 1
	})
	waitFor(t, "a request admitted once the stream ended", func() bool {
		return expectOneOf(t, b.do("POST", "/v1/chat/completions", budgetRequest, bearer(key)...), http.StatusOK, http.StatusForbidden)
	})
}

func readAll(r *bufio.Reader) (string, error) {
	var sb strings.Builder
	_, err := r.WriteTo(&sb)
	return sb.String(), err
}

func TestPostgresInstancesStartingAtOnceOnAnEmptyDatabase(t *testing.T) {
	t.Parallel()
	c := postgresCluster(t, "")
	gs := []*gateway{newGateway(t, c.config), newGateway(t, c.config)}
	for _, g := range gs {
		checkOutputWhenDone(t, g)
		g.launch()
	}
	for _, g := range gs {
		g.waitReady()
	}
	k := gs[0].newKey(map[string]any{"user_id": "pg-jo"})
	for _, g := range gs {
		expect(t, g.do("GET", "/health/readiness", nil), http.StatusOK)
		expect(t, g.do("POST", "/v1/chat/completions", budgetRequest, bearer(k.Key)...), http.StatusOK)
	}
}

func TestPostgresRotateDeleteAndBlockAreInForceEverywhereWithin1s(t *testing.T) {
	t.Parallel()
	c := startPostgresGateways(t, 3)
	a, others := c.gws[0], c.gws[1:]
	chat := func(g *gateway, key string) *response {
		return g.do("POST", "/v1/chat/completions", budgetRequest, bearer(key)...)
	}
	rotated := a.newKey(map[string]any{"user_id": "pg-kim"})
	deleted := a.newKey(map[string]any{"user_id": "pg-kim"})
	blocked := a.newKey(map[string]any{"user_id": "pg-lou"})
	// Every key is cached on the other instances.
	for _, g := range others {
		for _, k := range []createdKey{rotated, deleted, blocked} {
			expect(t, chat(g, k.Key), http.StatusOK)
		}
	}

	// refusedEverywhere probes the other instances with key, reporting
	// whether all of them answer want (else the status before the change).
	refusedEverywhere := func(key string, want int) func() bool {
		return func() bool {
			all := true
			for _, g := range others {
				all = expectOneOf(t, chat(g, key), want, http.StatusOK) && all
			}
			return all
		}
	}

	var fresh createdKey
	expect(t, a.adminDo("POST", "/v1/keys/"+rotated.ID+"/rotate", nil), http.StatusOK).JSON(t, &fresh)
	seenWithin(t, "a rotated-out secret refused on the other instances", time.Second, refusedEverywhere(rotated.Key, http.StatusUnauthorized))
	for _, g := range others {
		expect(t, chat(g, fresh.Key), http.StatusOK)
	}

	expectNoContent(t, a.adminDo("DELETE", "/v1/keys/"+deleted.ID, nil))
	seenWithin(t, "a deleted key refused on the other instances", time.Second, refusedEverywhere(deleted.Key, http.StatusUnauthorized))

	expect(t, a.adminDo("PATCH", "/v1/users/pg-lou", map[string]any{"blocked": true}), http.StatusOK)
	seenWithin(t, "a blocked user's key refused on the other instances", time.Second, refusedEverywhere(blocked.Key, http.StatusForbidden))
}
