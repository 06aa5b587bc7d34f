package integration

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// metrics scrapes Caddy's admin /metrics and returns the samples whose
// name starts with gateway_, keyed by the sample line without its value.
func (g *gateway) metrics(t *testing.T) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + g.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	out := make(map[string]float64)
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "gateway_") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad sample %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

func expectMetric(t *testing.T, m map[string]float64, sample string, want float64) {
	t.Helper()
	if got, ok := m[sample]; !ok || got != want {
		t.Errorf("%s = %v (present %v), want %v", sample, got, ok, want)
	}
}

func TestMetricsAfterKnownRequestsAndReload(t *testing.T) {
	t.Parallel()
	ig := startInferenceGateway(t, "")
	chat := func(model string) *response {
		return ig.do("POST", "/v1/chat/completions", `{"model":"`+model+`","messages":[{"role":"user","content":"hi"}]}`, "Authorization", "Bearer "+ig.key)
	}
	for range 3 {
		expect(t, chat("mock:ok"), 200)
	}
	expect(t, chat("mock:err-500"), 502)
	expect(t, ig.do("GET", "/v1/users", nil), 401)
	expect(t, ig.do("GET", "/v1/users", nil, "Authorization", "Basic x"), 401)
	expect(t, ig.do("GET", "/v1/users/alice", nil, "Authorization", "Bearer "+ig.key), 401)

	m := ig.metrics(t)
	expectMetric(t, m, `gateway_requests_total{endpoint="/v1/chat/completions",status="200"}`, 3)
	expectMetric(t, m, `gateway_requests_total{endpoint="/v1/chat/completions",status="502"}`, 1)
	expectMetric(t, m, `gateway_requests_total{endpoint="/v1/users/{id}",status="401"}`, 1)
	expectMetric(t, m, `gateway_tokens_total{model="ok",provider="mock",type="input"}`, 3*mockPromptTokens)
	expectMetric(t, m, `gateway_tokens_total{model="ok",provider="mock",type="output"}`, 3*mockCompletionTokens)
	expectMetric(t, m, `gateway_request_cost_dollars_count{model="ok",provider="mock"}`, 3)
	expectMetric(t, m, `gateway_auth_failures_total{reason="missing_credentials"}`, 1)
	expectMetric(t, m, `gateway_auth_failures_total{reason="invalid_format"}`, 1)
	expectMetric(t, m, `gateway_auth_failures_total{reason="invalid_master_key"}`, 1)
	expectMetric(t, m, `gateway_active_requests`, 0)
	if m[`gateway_upstream_duration_seconds_count{provider="mock"}`] != 4 {
		t.Errorf("upstream latency observations = %v, want 4", m[`gateway_upstream_duration_seconds_count{provider="mock"}`])
	}
	for sample := range m {
		if strings.Contains(sample, "alice") || strings.Contains(sample, ig.key) {
			t.Errorf("a label carries a user id or key: %s", sample)
		}
	}

	// A reload keeps the counters and they keep counting.
	if err := ig.reload(gatewayConfig{Block: `provider mock {
			api_key {env.PROVIDER_KEY}
			base_url ` + ig.mock.BaseURL() + `
		}
		price mock:ok 2 8`}); err != nil {
		t.Fatal(err)
	}
	expect(t, ig.doLikeSDK("POST", "/v1/chat/completions", `{"model":"mock:ok","messages":[{"role":"user","content":"hi"}]}`, "Authorization", "Bearer "+ig.key), 200)
	m = ig.metrics(t)
	expectMetric(t, m, `gateway_requests_total{endpoint="/v1/chat/completions",status="200"}`, 4)
	expectMetric(t, m, `gateway_tokens_total{model="ok",provider="mock",type="input"}`, 4*mockPromptTokens)
}
