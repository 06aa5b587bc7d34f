package integration

import (
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// routeGateway is a gateway with several providers for the route tests:
//
//	good, good2  healthy OpenAI-compatible mocks (good:ok and good2:ok priced 1/2)
//	bad          a mock whose model picks its failure (bad:err-500, bad:hang, …)
//	dead         a base URL where nothing listens (connection refused)
//	claude       an Anthropic-format mock (claude:claude-x priced 3/15)
//	flip         a mock the test takes down and brings back
type routeGateway struct {
	*gateway
	good, good2, bad, claude *mockUpstream
	flip                     *flipMock
	key                      string // a virtual key without a budget
}

func startRouteGateway(t *testing.T, routes string, c gatewayConfig) *routeGateway {
	t.Helper()
	rg := &routeGateway{
		good: newMockUpstream(t), good2: newMockUpstream(t), bad: newMockUpstream(t), claude: newMockUpstream(t),
		flip: newFlipMock(t),
	}
	c.Block = fmt.Sprintf(`provider good {
			api_key {env.PROVIDER_KEY}
			base_url %s
		}
		provider good2 {
			api_key {env.PROVIDER_KEY}
			base_url %s
		}
		provider bad {
			api_key {env.PROVIDER_KEY}
			base_url %s
		}
		provider dead {
			api_key {env.PROVIDER_KEY}
			base_url http://127.0.0.1:%d/v1
		}
		provider claude {
			api_key {env.PROVIDER_KEY}
			base_url %s
			api_format anthropic
		}
		provider flip {
			api_key {env.PROVIDER_KEY}
			base_url %s
		}
		price good:ok 1 2
		price good2:ok 1 2
		price dead:ok 1 2
		price flip:ok 1 2
		price claude:claude-x 3 15
		%s
		%s`, rg.good.BaseURL(), rg.good2.BaseURL(), rg.bad.BaseURL(), refusingPort(t), rg.claude.BaseURL(), rg.flip.BaseURL(), routes, c.Block)
	rg.gateway = startChecked(t, c)
	rg.key = rg.newKey(map[string]any{"key_name": "routes"}).Key
	return rg
}

const chatHi = `"messages":[{"role":"user","content":"hi"}]`

// chatTo sends a chat completion for model with key, as a stream or not.
func (rg *routeGateway) chatTo(key, model string, stream bool) *response {
	rg.t.Helper()
	return rg.do("POST", "/v1/chat/completions", fmt.Sprintf(`{"model":%q,"stream":%v,%s}`, model, stream, chatHi), bearer(key)...)
}

// attempts returns the usage records of a request, oldest first.
func (rg *routeGateway) attempts(t *testing.T, r *response) []usageRecord {
	t.Helper()
	id := r.Header.Get("X-Request-Id")
	var all, out []usageRecord
	expect(t, rg.adminDo("GET", "/v1/usage?limit=1000", nil), 200).JSON(t, &all)
	for _, rec := range all {
		if rec.RequestID == id {
			out = append(out, rec)
		}
	}
	slices.SortFunc(out, func(a, b usageRecord) int { return apiTimeOf(t, a.Timestamp).Compare(apiTimeOf(t, b.Timestamp)) })
	return out
}

// expectServedBy checks a 200 answered by target in the mock's words.
func expectServedBy(t *testing.T, r *response, target string, stream bool) {
	t.Helper()
	expect(t, r, http.StatusOK)
	if got := r.Header.Get("X-Gateway-Target"); got != target {
		t.Fatalf("X-Gateway-Target = %q, want %q; body %s", got, target, r.Body)
	}
	body := string(r.Body)
	if stream {
		if !strings.Contains(body, `"content":"Hello"`) || !strings.Contains(body, `"content":" world"`) || !strings.HasSuffix(body, "data: [DONE]\n\n") {
			t.Fatalf("stream body:\n%s", body)
		}
		return
	}
	if !strings.Contains(body, "Hello world, from the mock.") {
		t.Fatalf("body: %s", body)
	}
}

// expectAttempts checks the records of a request: one per attempt, with
// the targets and statuses given (provider:model status), and the cost of
// the one that served.
func expectAttempts(t *testing.T, recs []usageRecord, want ...string) {
	t.Helper()
	var got []string
	for _, r := range recs {
		got = append(got, r.Provider+":"+r.Model+" "+r.Status)
		if r.Status != "success" && r.Cost != 0 {
			t.Errorf("failed attempt %s:%s billed %v", r.Provider, r.Model, r.Cost)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("attempts %v, want %v", got, want)
	}
}

// TestRouteFailsOverOnEachProviderFailure: a connection refused, a
// timeout (attempt_timeout), a 5xx, 429, 401 and 403 each move the
// request to the fallback, stream and not; the client sees the fallback's
// answer and its target, each attempt has its own record, only the
// served one costs.
func TestRouteFailsOverOnEachProviderFailure(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, target, cause string }{
		{"connection refused", "dead:ok", "connection refused"},
		{"timeout", "bad:hang", "attempt_timeout"},
		{"500", "bad:err-500", "provider returned 500"},
		{"503", "bad:err-503", "provider returned 503"},
		{"429", "bad:err-429", "provider returned 429"},
		{"401", "bad:err-401", "rejected the gateway's API key (401)"},
		{"403", "bad:err-403", "rejected the gateway's API key (403)"},
	}
	var routes strings.Builder
	for i, tc := range cases {
		fmt.Fprintf(&routes, "route f%d {\n to %s\n fallback good:ok\n attempt_timeout 1s\n unhealthy_after 0\n}\n", i, tc.target)
	}
	rg := startRouteGateway(t, routes.String(), gatewayConfig{})
	for i, tc := range cases {
		for _, stream := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s stream=%v", tc.name, stream), func(t *testing.T) {
				r := rg.chatTo(rg.key, fmt.Sprintf("f%d", i), stream)
				expectServedBy(t, r, "good:ok", stream)
				recs := rg.attempts(t, r)
				provider, model, _ := strings.Cut(tc.target, ":")
				expectAttempts(t, recs, provider+":"+model+" error", "good:ok success")
				if msg := recs[0].ErrorMessage; msg == nil || !strings.Contains(*msg, tc.cause) || !strings.Contains(*msg, "the route tries its next target") {
					t.Errorf("failed attempt's error_message = %v, want %q", msg, tc.cause)
				}
				if math.Abs(recs[1].Cost-mockCost) > 1e-12 || recs[1].PromptTokens != mockPromptTokens || recs[1].CompletionTokens != mockCompletionTokens {
					t.Errorf("served attempt: %+v", recs[1])
				}
			})
		}
	}
	m := rg.metrics(t)
	for i, tc := range cases {
		provider, _, _ := strings.Cut(tc.target, ":")
		if got := m[fmt.Sprintf(`gateway_route_failovers_total{provider=%q,route="f%d"}`, provider, i)]; got != 2 {
			t.Errorf("failovers of f%d = %v, want 2", i, got)
		}
	}
	if got := m[`gateway_upstream_attempts_total{outcome="connection_error",provider="dead"}`]; got != 2 {
		t.Errorf("connection_error attempts of dead = %v, want 2", got)
	}
	if got := m[`gateway_upstream_attempts_total{outcome="rate_limited",provider="bad"}`]; got != 2 {
		t.Errorf("rate_limited attempts of bad = %v, want 2", got)
	}
}

// TestRouteAnswersOtherClientErrorsAsTheyAre: a 400 is the request's
// fault: answered as the provider sent it, never retried elsewhere.
func TestRouteAnswersOtherClientErrorsAsTheyAre(t *testing.T) {
	t.Parallel()
	rg := startRouteGateway(t, "route r {\n to bad:err-400\n fallback good:ok\n}", gatewayConfig{})
	for _, stream := range []bool{false, true} {
		r := expect(t, rg.chatTo(rg.key, "r", stream), http.StatusBadRequest)
		if !strings.Contains(string(r.Body), "mock error 400") || r.Header.Get("X-Gateway-Target") != "bad:err-400" {
			t.Fatalf("stream=%v: %v %s", stream, r.Header, r.Body)
		}
		expectAttempts(t, rg.attempts(t, r), "bad:err-400 error")
	}
	if n := len(rg.good.Requests()); n != 0 {
		t.Fatalf("the fallback received %d requests", n)
	}
}

// TestRouteWhenEveryTargetFails: the client gets the last failure: the
// contract's 502 (no target named), or the last target's own 429.
func TestRouteWhenEveryTargetFails(t *testing.T) {
	t.Parallel()
	rg := startRouteGateway(t, `route down {
			to dead:ok
			fallback bad:err-500
			unhealthy_after 0
		}
		route limited {
			to dead:ok
			fallback bad:err-429
			unhealthy_after 0
		}`, gatewayConfig{})
	for _, stream := range []bool{false, true} {
		r := rg.chatTo(rg.key, "down", stream)
		expectError(t, r, http.StatusBadGateway, "LLM provider error")
		if got := r.Header.Get("X-Gateway-Target"); got != "" {
			t.Fatalf("X-Gateway-Target = %q on a failure of every target", got)
		}
		expectAttempts(t, rg.attempts(t, r), "dead:ok error", "bad:err-500 error")

		r = expect(t, rg.chatTo(rg.key, "limited", stream), http.StatusTooManyRequests)
		if !strings.Contains(string(r.Body), "mock error 429") || r.Header.Get("X-Gateway-Target") != "bad:err-429" {
			t.Fatalf("limited: %v %s", r.Header, r.Body)
		}
		recs := rg.attempts(t, r)
		expectAttempts(t, recs, "dead:ok error", "bad:err-429 error")
		if msg := recs[1].ErrorMessage; msg == nil || strings.Contains(*msg, "next target") {
			t.Fatalf("the last attempt's error_message says it failed over: %v", msg)
		}
	}
}

// TestRouteAcrossFormats: an OpenAI chat client falling back to an
// Anthropic-format target, and an Anthropic client routed to an
// OpenAI-compatible one, each see their own format.
func TestRouteAcrossFormats(t *testing.T) {
	t.Parallel()
	rg := startRouteGateway(t, `route to-claude {
			to dead:ok
			fallback claude:claude-x
		}
		route to-openai {
			to dead:ok
			fallback good:ok
		}`, gatewayConfig{})

	r := expect(t, rg.chatTo(rg.key, "to-claude", false), http.StatusOK)
	var chat struct {
		Object  string `json:"object"`
		Model   string `json:"model"`
		Choices []struct {
			Message struct{ Content string } `json:"message"`
		} `json:"choices"`
	}
	r.JSON(t, &chat)
	if chat.Object != "chat.completion" || len(chat.Choices) != 1 || chat.Choices[0].Message.Content != "Hello from Claude" || r.Header.Get("X-Gateway-Target") != "claude:claude-x" {
		t.Fatalf("chat answer from Claude: %s", r.Body)
	}
	recs := rg.attempts(t, r)
	expectAttempts(t, recs, "dead:ok error", "claude:claude-x success")
	claudeCost := float64(mockClaudeInput+mockClaudeCacheRead)/1e6*3 + float64(mockClaudeOutput)/1e6*15
	if math.Abs(recs[1].Cost-claudeCost) > 1e-9 {
		t.Errorf("Claude attempt cost %v, want %v", recs[1].Cost, claudeCost)
	}
	if got := rg.claude.last(t).Path; got != "/v1/messages" {
		t.Fatalf("the Anthropic target was asked at %s", got)
	}

	r = expect(t, rg.chatTo(rg.key, "to-claude", true), http.StatusOK)
	if body := string(r.Body); !strings.Contains(body, `"object":"chat.completion.chunk"`) || !strings.Contains(body, "Hello") || !strings.HasSuffix(body, "data: [DONE]\n\n") || strings.Contains(body, "message_start") {
		t.Fatalf("chat stream from Claude:\n%s", body)
	}
	expectAttempts(t, rg.attempts(t, r), "dead:ok error", "claude:claude-x success")

	msg := `{"model":"to-openai","max_tokens":100,"stream":%v,"messages":[{"role":"user","content":"hi"}]}`
	r = expect(t, rg.do("POST", "/v1/messages", fmt.Sprintf(msg, false), bearer(rg.key)...), http.StatusOK)
	var m struct {
		Type    string                  `json:"type"`
		Content []struct{ Text string } `json:"content"`
	}
	r.JSON(t, &m)
	if m.Type != "message" || len(m.Content) == 0 || m.Content[0].Text != "Hello world, from the mock." || r.Header.Get("X-Gateway-Target") != "good:ok" {
		t.Fatalf("Messages answer from an OpenAI target: %s", r.Body)
	}
	expectAttempts(t, rg.attempts(t, r), "dead:ok error", "good:ok success")
	if got := rg.good.last(t).Path; got != "/v1/chat/completions" {
		t.Fatalf("the OpenAI target was asked at %s", got)
	}
	r = expect(t, rg.do("POST", "/v1/messages", fmt.Sprintf(msg, true), bearer(rg.key)...), http.StatusOK)
	if body := string(r.Body); !strings.Contains(body, "event: message_start") || !strings.Contains(body, "event: message_stop") {
		t.Fatalf("Messages stream from an OpenAI target:\n%s", body)
	}
	expectAttempts(t, rg.attempts(t, r), "dead:ok error", "good:ok success")
}

// TestRouteStreamNeverFailsOverAfterTheFirstByte: a stream that breaks
// after its first event ends with the stream error, billed as one
// attempt; the fallback is never asked.
func TestRouteStreamNeverFailsOverAfterTheFirstByte(t *testing.T) {
	t.Parallel()
	rg := startRouteGateway(t, "route r {\n to good:drop\n fallback good2:ok\n}", gatewayConfig{})
	r := expect(t, rg.chatTo(rg.key, "r", true), http.StatusOK)
	body := string(r.Body)
	if !strings.Contains(body, `"content":"Hello"`) || !strings.Contains(body, "An error occurred during streaming") || r.Header.Get("X-Gateway-Target") != "good:drop" {
		t.Fatalf("stream:\n%s", body)
	}
	expectAttempts(t, rg.attempts(t, r), "good:drop error")
	if n := len(rg.good2.Requests()); n != 0 {
		t.Fatalf("the fallback received %d requests after the stream had started", n)
	}
}

// TestRouteStreamFailsOverBeforeItsFirstEvent: a provider that sends its
// 200 and drops the connection before any event has sent the client
// nothing, so the route fails over; the attempt is recorded and costs
// nothing.
func TestRouteStreamFailsOverBeforeItsFirstEvent(t *testing.T) {
	t.Parallel()
	rg := startRouteGateway(t, "route r {\n to good:drop-early\n fallback good2:ok\n}", gatewayConfig{})
	r := expect(t, rg.chatTo(rg.key, "r", true), http.StatusOK)
	body := string(r.Body)
	if !strings.Contains(body, `"content":"Hello"`) || strings.Contains(body, "An error occurred during streaming") || !strings.Contains(body, "[DONE]") || r.Header.Get("X-Gateway-Target") != "good2:ok" {
		t.Fatalf("stream from %q:\n%s", r.Header.Get("X-Gateway-Target"), body)
	}
	expectAttempts(t, rg.attempts(t, r), "good:drop-early error", "good2:ok success")
	if n := len(rg.good2.Requests()); n != 1 {
		t.Fatalf("the fallback received %d requests, want 1", n)
	}
}

// TestRouteWeights: over 400 requests the `to` targets share the load as
// their weights say (3:1), within 5 standard deviations of the binomial
// (a chance below 1e-6 of a false failure).
func TestRouteWeights(t *testing.T) {
	t.Parallel()
	rg := startRouteGateway(t, "route w {\n to good:ok weight 3\n to good2:ok weight 1\n}", gatewayConfig{})
	const n = 400
	counts := map[string]int{}
	for range n {
		r := expect(t, rg.chatTo(rg.key, "w", false), http.StatusOK)
		counts[r.Header.Get("X-Gateway-Target")]++
	}
	p := 0.75
	mean, sd := n*p, math.Sqrt(n*p*(1-p))
	if got := float64(counts["good:ok"]); math.Abs(got-mean) > 5*sd || counts["good:ok"]+counts["good2:ok"] != n {
		t.Fatalf("targets %v, want good:ok %v ± %v of %d", counts, mean, 5*sd, n)
	}
	if len(rg.good.Requests()) != counts["good:ok"] || len(rg.good2.Requests()) != counts["good2:ok"] {
		t.Fatalf("the mocks saw %d and %d requests, the header said %v", len(rg.good.Requests()), len(rg.good2.Requests()), counts)
	}
}

// TestRouteMoney: the reservation covers the route's most expensive
// target; spend is what served; an unpriced target is skipped under a
// budget (and serves without one).
func TestRouteMoney(t *testing.T) {
	t.Parallel()
	rg := startRouteGateway(t, `route failing-over {
			to dead:ok
			fallback good:ok
		}
		route pricey {
			to good:ok
			fallback claude:pricey
		}
		route unpriced {
			to good2:unpriced
			fallback good:ok
		}
		route nothing-priced {
			to good2:unpriced
		}`, gatewayConfig{Block: "price claude:pricey 1000 1000"})

	t.Run("spend is what served", func(t *testing.T) {
		key := rg.userOnBudget(t, "spender", 10, nil)
		for _, stream := range []bool{false, true} {
			expectServedBy(t, rg.chatTo(key, "failing-over", stream), "good:ok", stream)
		}
		for _, path := range []string{"/v1/users/spender"} {
			if got := rg.spend(t, path); math.Abs(got-2*mockCost) > 1e-12 {
				t.Fatalf("%s spend %v, want %v", path, got, 2*mockCost)
			}
		}
	})
	t.Run("the reservation covers the most expensive target", func(t *testing.T) {
		key := rg.userOnBudget(t, "frugal", 0.01, nil)
		// good:ok alone fits 0.01 USD (4096 tokens at 2 USD/M); the
		// fallback's worst case (1000 USD/M) does not.
		expect(t, rg.chatTo(key, "good:ok", false), http.StatusOK)
		r := rg.chatTo(key, "pricey", false)
		expect(t, r, http.StatusForbidden)
		if !strings.Contains(string(r.Body), "insufficient budget for this request") {
			t.Fatalf("refusal: %s", r.Body)
		}
	})
	t.Run("an unpriced target is skipped under a budget", func(t *testing.T) {
		key := rg.userOnBudget(t, "budgeted", 10, nil)
		before := len(rg.good2.Requests())
		for _, stream := range []bool{false, true} {
			r := rg.chatTo(key, "unpriced", stream)
			expectServedBy(t, r, "good:ok", stream)
			expectAttempts(t, rg.attempts(t, r), "good:ok success")
		}
		if n := len(rg.good2.Requests()) - before; n != 0 {
			t.Fatalf("the unpriced target received %d requests under a budget", n)
		}
		r := expect(t, rg.chatTo(key, "nothing-priced", false), http.StatusForbidden)
		if !strings.Contains(string(r.Body), "No target of route 'nothing-priced' has a price") {
			t.Fatalf("refusal: %s", r.Body)
		}
		if got := rg.metrics(t)[`gateway_route_skipped_total{provider="good2",reason="unpriced",route="unpriced"}`]; got != 2 {
			t.Fatalf("unpriced skips = %v, want 2", got)
		}
		// Without a budget, the unpriced target serves (at no cost).
		r = expect(t, rg.chatTo(rg.key, "unpriced", false), http.StatusOK)
		if r.Header.Get("X-Gateway-Target") != "good2:unpriced" {
			t.Fatalf("without a budget: served by %q", r.Header.Get("X-Gateway-Target"))
		}
	})
}

// TestRouteUnderAllowedModels: a key allowed a route uses it whichever
// target serves, and not the targets directly; /v1/models lists routes
// beside provider:model models, for the keys that may use them.
func TestRouteUnderAllowedModels(t *testing.T) {
	t.Parallel()
	rg := startRouteGateway(t, "route smart {\n to dead:ok\n fallback good:ok\n}", gatewayConfig{})
	routeKey := rg.newKey(map[string]any{"allowed_models": []string{"smart"}}).Key
	modelKey := rg.newKey(map[string]any{"allowed_models": []string{"good:ok"}}).Key
	expectServedBy(t, rg.chatTo(routeKey, "smart", false), "good:ok", false)
	expectServedBy(t, rg.chatTo(routeKey, "smart", true), "good:ok", true)
	expectError(t, rg.chatTo(routeKey, "good:ok", false), http.StatusForbidden, "Model 'good:ok' is not allowed for this API key")
	expectError(t, rg.chatTo(modelKey, "smart", false), http.StatusForbidden, "Model 'smart' is not allowed for this API key")
	expectValidation(t, rg.adminDo("POST", "/v1/keys", map[string]any{"allowed_models": []string{"smrt"}}), "allowed_models")

	ids := func(key string) []string {
		var l struct {
			Data []struct{ ID string } `json:"data"`
		}
		expect(t, rg.do("GET", "/v1/models", nil, bearer(key)...), http.StatusOK).JSON(t, &l)
		var out []string
		for _, m := range l.Data {
			out = append(out, m.ID)
		}
		return out
	}
	if got := ids(routeKey); !slices.Equal(got, []string{"smart"}) {
		t.Fatalf("models of the route key: %v", got)
	}
	if got := ids(modelKey); !slices.Equal(got, []string{"good:ok"}) {
		t.Fatalf("models of the model key: %v", got)
	}
	if got := ids(rg.key); !slices.Contains(got, "smart") || !slices.Contains(got, "good:ok") {
		t.Fatalf("models of an unrestricted key: %v", got)
	}
	var one struct{ ID, Object string }
	expect(t, rg.do("GET", "/v1/models/smart", nil, bearer(routeKey)...), http.StatusOK).JSON(t, &one)
	if one.ID != "smart" || one.Object != "model" {
		t.Fatalf("GET /v1/models/smart: %+v", one)
	}
}

// TestRoutePassiveHealthSkipsAFailingTarget: after unhealthy_after
// failures in a row the target is skipped (its requests go straight to
// the fallback, it receives none) for the cool-down; its state is in the
// metrics.
func TestRoutePassiveHealthSkipsAFailingTarget(t *testing.T) {
	t.Parallel()
	rg := startRouteGateway(t, "route h {\n to bad:err-500\n fallback good:ok\n unhealthy_after 2\n cool_down 1h\n}", gatewayConfig{})
	expectMetric(t, rg.metrics(t), `gateway_route_target_healthy{model="err-500",provider="bad",route="h"}`, 1)
	for range 2 {
		r := rg.chatTo(rg.key, "h", false)
		expectServedBy(t, r, "good:ok", false)
		expectAttempts(t, rg.attempts(t, r), "bad:err-500 error", "good:ok success")
	}
	for i := range 10 {
		r := rg.chatTo(rg.key, "h", i%2 == 1)
		expectServedBy(t, r, "good:ok", i%2 == 1)
		expectAttempts(t, rg.attempts(t, r), "good:ok success")
	}
	if n := len(rg.bad.Requests()); n != 2 {
		t.Fatalf("the failing target received %d requests, want 2 (then skipped)", n)
	}
	m := rg.metrics(t)
	expectMetric(t, m, `gateway_route_target_healthy{model="err-500",provider="bad",route="h"}`, 0)
	expectMetric(t, m, `gateway_route_skipped_total{provider="bad",reason="unhealthy",route="h"}`, 10)
}

// TestRoutePassiveHealthProbesAfterTheCoolDown: a target out of service
// gets no request until its cool-down ends; then one request probes it,
// and its success puts it back in service. The test moves time by the
// configured cool-down (short) and polls, never sleeping for an outcome.
func TestRoutePassiveHealthProbesAfterTheCoolDown(t *testing.T) {
	t.Parallel()
	rg := startRouteGateway(t, "route p {\n to flip:ok\n fallback good:ok\n unhealthy_after 1\n cool_down 300ms\n}", gatewayConfig{})
	rg.flip.failing.Store(true)
	r := rg.chatTo(rg.key, "p", false)
	expectServedBy(t, r, "good:ok", false)
	expectAttempts(t, rg.attempts(t, r), "flip:ok error", "good:ok success")
	expectMetric(t, rg.metrics(t), `gateway_route_target_healthy{model="ok",provider="flip",route="p"}`, 0)
	rg.flip.failing.Store(false) // back up, but the gateway does not know yet

	served := 0
	waitFor(t, "the probe after the cool-down", func() bool {
		r := expect(t, rg.chatTo(rg.key, "p", false), http.StatusOK)
		served++
		return r.Header.Get("X-Gateway-Target") == "flip:ok"
	})
	// Every request before the probe went straight to the fallback: the
	// target saw its failure and then the one probe.
	if n := rg.flip.requests.Load(); n != 2 {
		t.Fatalf("the recovering target received %d requests, want 2 (the failure and the probe)", n)
	}
	expectMetric(t, rg.metrics(t), `gateway_route_target_healthy{model="ok",provider="flip",route="p"}`, 1)
	for _, stream := range []bool{false, true} {
		expectServedBy(t, rg.chatTo(rg.key, "p", stream), "flip:ok", stream)
	}
	t.Logf("%d requests until the probe", served)
}

// TestRouteRetryHonoursRetryAfter: with retries, a target that answered
// 429 with Retry-After is asked again no sooner than it asked.
func TestRouteRetryHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	ra := newRetryAfterMock(t)
	rg := startRouteGateway(t, "route r {\n to limited:ok\n retries 1\n retry_backoff 10ms\n}", gatewayConfig{
		Block: fmt.Sprintf("provider limited {\n api_key {env.PROVIDER_KEY}\n base_url %s\n }", ra.BaseURL()),
	})
	r := rg.chatTo(rg.key, "r", false)
	expectServedBy(t, r, "limited:ok", false)
	recs := rg.attempts(t, r)
	expectAttempts(t, recs, "limited:ok error", "limited:ok success")
	if gap := apiTimeOf(t, recs[1].Timestamp).Sub(apiTimeOf(t, recs[0].Timestamp)); gap < time.Second {
		t.Fatalf("retried %v after a 429 with Retry-After: 1", gap)
	}
	if n := ra.requests.Load(); n != 2 {
		t.Fatalf("the provider received %d requests, want 2", n)
	}
}

// TestRouteConfigErrorsFailAtLoad: `caddy adapt` and `caddy validate`
// refuse a route's mistakes, naming the Caddyfile line.
func TestRouteConfigErrorsFailAtLoad(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, routes, want, line string }{
		{"unknown subdirective", "route r {\n\t\tto openai:gpt-4o\n\t\tretry 2\n\t}", "unrecognized subdirective 'retry'", "Caddyfile:6"},
		{"unknown provider", "route r {\n\t\tto openai:gpt-4o\n\t\tfallback antropic:claude\n\t}", `provider "antropic" of target antropic:claude is not configured`, "Caddyfile:6"},
		{"name with a colon", "route openai:fast {\n\t\tto openai:gpt-4o\n\t}", `route "openai:fast": a route name must not contain ':'`, "Caddyfile:4"},
		{"name with a slash", "route team/fast {\n\t\tto openai:gpt-4o\n\t}", `route "team/fast": a route name must not contain ':', '/'`, "Caddyfile:4"},
		{"duplicate name", "route r {\n\t\tto openai:gpt-4o\n\t}\n\troute r {\n\t\tto openai:gpt-4o-mini\n\t}", `route "r" defined twice`, "Caddyfile:7"},
		{"bad weight", "route r {\n\t\tto openai:gpt-4o weight heavy\n\t}", "weight of openai:gpt-4o must be a positive integer", "Caddyfile:5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			cfg := ":8000 {\n\tllm_gateway {\n\tprovider openai\n\t" + tc.routes + "\n\t}\n}\n"
			if err := os.WriteFile(filepath.Join(root, "Caddyfile"), []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			for _, cmd := range []string{"adapt", "validate"} {
				out, err := caddyCommand(t, root, cmd, "--config", "Caddyfile", "--adapter", "caddyfile")
				out = strings.ReplaceAll(out, `\"`, `"`)
				if err == nil || !strings.Contains(out, tc.want) || !strings.Contains(out, tc.line) {
					t.Fatalf("caddy %s: %v, want an error naming %s and %q:\n%s", cmd, err, tc.line, tc.want, out)
				}
			}
		})
	}
}
