package integration

import (
	"strings"
	"testing"
)

// TestReservationCountsEveryChoiceAndStringNumbers: the reservation covers
// what the provider may generate. The legacy Completions API completes each
// prompt of a list n times (best_of generated and billed whole), and an
// OpenAI-compatible server obeys n beyond OpenAI's 128; a lenient provider
// (pydantic's lax mode, as in vLLM) obeys max_tokens and n written as
// strings. All of these were admitted reserved for a fraction of it (n and
// the prompt list ignored, a string read as the 4096 default), and a
// translated /v1/messages with max_tokens "20000" was sent as the number
// 20000 after reserving 4096.
func TestReservationCountsEveryChoiceAndStringNumbers(t *testing.T) {
	t.Parallel()
	// $0.0001 per completion token: the $1 budget holds 10,000 tokens.
	mg := startMoneyGateway(t, `price mock:p 0 100
		price claude:p 0 100`)
	key := mg.userOnBudget(t, "carol", 1, nil)
	msgs := `"messages":[{"role":"user","content":"hi"}]`
	prompts := `"` + strings.Repeat(`a","`, 199) + `a"`
	refused := []struct{ name, path, body string }{
		{"completions n", "/v1/completions", `{"model":"mock:p","prompt":"hi","max_tokens":100,"n":200}`},
		{"completions best_of", "/v1/completions", `{"model":"mock:p","prompt":"hi","max_tokens":100,"best_of":200}`},
		{"completions prompt list", "/v1/completions", `{"model":"mock:p","prompt":[` + prompts + `],"max_tokens":100}`},
		{"chat n beyond 128", "/v1/chat/completions", `{"model":"mock:p",` + msgs + `,"max_tokens":50,"n":400}`},
		{"chat max_tokens string", "/v1/chat/completions", `{"model":"mock:p",` + msgs + `,"max_tokens":"20000"}`},
		{"chat n string", "/v1/chat/completions", `{"model":"mock:p",` + msgs + `,"max_tokens":100,"n":"200"}`},
		{"messages max_tokens string", "/v1/messages", `{"model":"claude:p",` + msgs + `,"max_tokens":"20000"}`},
	}
	for _, tc := range refused {
		r := mg.do("POST", tc.path, tc.body, "Authorization", "Bearer "+key)
		if r.Status != 403 || !strings.Contains(string(r.Body), "insufficient budget for this request") {
			t.Errorf("%s: status %d, want 403 insufficient budget: %s", tc.name, r.Status, r.Body)
		}
	}
	// Translated to an OpenAI-compatible provider, a max_tokens that is not
	// a number is refused, not sent as one.
	r := mg.do("POST", "/v1/messages", `{"model":"mock:p",`+msgs+`,"max_tokens":"5000"}`, "Authorization", "Bearer "+key)
	expectAnthropicError(t, r, 400, "invalid_request_error")
	if !strings.Contains(string(r.Body), "max_tokens") {
		t.Errorf("400 does not name max_tokens: %s", r.Body)
	}
	if n := mg.mock.Requests(); n != 0 {
		t.Fatalf("%d requests reached the provider", n)
	}
	// What fits is served.
	expect(t, mg.do("POST", "/v1/chat/completions", `{"model":"mock:p",`+msgs+`,"max_tokens":100,"n":2}`, "Authorization", "Bearer "+key), 200)
}
