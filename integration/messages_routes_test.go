package integration

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// expectAnthropicError checks Anthropic's error shape (with the contract's
// detail beside it) and returns the message.
func expectAnthropicError(t *testing.T, r *response, status int, typ string) string {
	t.Helper()
	expect(t, r, status)
	var e struct {
		Type  string `json:"type"`
		Error struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
		Detail string `json:"detail"`
	}
	r.JSON(t, &e)
	if e.Type != "error" || e.Error.Type != typ || e.Error.Message == "" || e.Detail != e.Error.Message {
		t.Fatalf("not Anthropic's error shape with type %q: %s", typ, r.Body)
	}
	return e.Error.Message
}

func TestCountTokens(t *testing.T) {
	t.Parallel()
	ig := startClaudeGateway(t)
	before := len(ig.usage(t, "limit=1000"))
	body := `{"model":%q,"system":"Be brief.","messages":[{"role":"user","content":"How many tokens is this?"}],"tools":[{"name":"f","input_schema":{"type":"object"}}]}`

	// An Anthropic-format provider counts them itself; the query is passed on.
	r := expect(t, ig.do("POST", "/v1/messages/count_tokens?beta=true", fmt.Sprintf(body, "anthropic:claude-ok"), "x-api-key", ig.key), 200)
	if got := gjson.GetBytes(r.Body, "input_tokens").Int(); got != mockCountTokens {
		t.Fatalf("input_tokens = %d, want the provider's %d: %s", got, mockCountTokens, r.Body)
	}
	up := ig.mock.last(t)
	if up.Path != "/v1/messages/count_tokens" || up.Query != "beta=true" || gjson.GetBytes(up.Body, "model").String() != "claude-ok" {
		t.Fatalf("upstream got %s?%s %s", up.Path, up.Query, up.Body)
	}
	if strings.Contains(fmt.Sprint(up.Header), ig.key) {
		t.Fatal("the virtual key reached the provider")
	}

	// Others get the gateway's estimate, without a provider call.
	n := len(ig.mock.Requests())
	r = expect(t, ig.do("POST", "/v1/messages/count_tokens?beta=true", fmt.Sprintf(body, "mock:ok"), "Authorization", "Bearer "+ig.key), 200)
	if got := gjson.GetBytes(r.Body, "input_tokens"); got.Type != gjson.Number || got.Int() <= 0 {
		t.Fatalf("estimate = %s", r.Body)
	}
	if len(ig.mock.Requests()) != n {
		t.Fatal("an estimate called the provider")
	}

	// Not billed, nothing recorded.
	if after := len(ig.usage(t, "limit=1000")); after != before {
		t.Fatalf("count_tokens wrote %d usage records", after-before)
	}

	// Authenticated like inference, answered in Anthropic's shape.
	expectAnthropicError(t, ig.do("POST", "/v1/messages/count_tokens", fmt.Sprintf(body, "mock:ok")), 401, "authentication_error")
	expectAnthropicError(t, ig.do("POST", "/v1/messages/count_tokens", fmt.Sprintf(body, "mock:ok"), "x-api-key", "gw-"+strings.Repeat("x", 64)), 401, "authentication_error")
	_, limited := ig.newKey(t, map[string]any{"user_id": "alice", "allowed_models": []string{"anthropic:claude-ok"}})
	expectAnthropicError(t, ig.do("POST", "/v1/messages/count_tokens", fmt.Sprintf(body, "mock:ok"), "x-api-key", limited), 403, "permission_error")
	expect(t, ig.do("POST", "/v1/messages/count_tokens", fmt.Sprintf(body, "anthropic:claude-ok"), "x-api-key", limited), 200)
	expectAnthropicError(t, ig.do("POST", "/v1/messages/count_tokens", `{"model":5}`, "x-api-key", ig.key), 422, "invalid_request_error")
	expectAnthropicError(t, ig.do("GET", "/v1/messages/count_tokens", nil, "x-api-key", ig.key), 405, "invalid_request_error")
	// The master key needs no user here: nothing is billed.
	expect(t, ig.do("POST", "/v1/messages/count_tokens", fmt.Sprintf(body, "mock:ok"), "x-api-key", masterKey), 200)
}

// TestMessagesRoutesAnswerInAnthropicShape: every answer under
// /v1/messages, whatever the sub-path or status, has Anthropic's shape.
func TestMessagesRoutesAnswerInAnthropicShape(t *testing.T) {
	t.Parallel()
	ig := startClaudeGateway(t)
	msg := `{"model":"anthropic:claude-ok","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`
	expectAnthropicError(t, ig.do("POST", "/v1/messages/", msg), 401, "authentication_error")
	expect(t, ig.do("POST", "/v1/messages/", msg, "x-api-key", ig.key), 200)
	expectAnthropicError(t, ig.do("POST", "/v1/messages/nope", msg, "x-api-key", ig.key), 404, "not_found_error")
	expectAnthropicError(t, ig.do("POST", "/v1/messages/count_tokens/extra", msg, "x-api-key", ig.key), 404, "not_found_error")
	expectAnthropicError(t, ig.do("POST", "/v1/messages//count_tokens", msg, "x-api-key", ig.key), 404, "not_found_error")
	expectAnthropicError(t, ig.do("POST", "/v1/messages/%00", msg, "x-api-key", ig.key), 404, "not_found_error")
	expectAnthropicError(t, ig.do("GET", "/v1/messages", nil, "x-api-key", ig.key), 405, "invalid_request_error")
	// Elsewhere the OpenAI shape stays.
	expectNotFoundJSON(t, ig.do("POST", "/v1/nope", msg, "x-api-key", ig.key))
}

// TestMessagesQueryPassedToAnthropic: the client's query string (Claude
// Code's ?beta=true) reaches Anthropic-format providers, and only them.
func TestMessagesQueryPassedToAnthropic(t *testing.T) {
	t.Parallel()
	ig := startClaudeGateway(t)
	for _, tt := range []struct{ model, path, query string }{
		{"anthropic:claude-ok", "/v1/messages", "beta=true"},
		{"mock:ok", "/v1/chat/completions", ""},
	} {
		body := `{"model":"` + tt.model + `","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`
		expect(t, ig.do("POST", "/v1/messages?beta=true", body, "x-api-key", ig.key), 200)
		if up := ig.mock.last(t); up.Path != tt.path || up.Query != tt.query {
			t.Fatalf("%s: upstream got %s?%s, want %s?%s", tt.model, up.Path, up.Query, tt.path, tt.query)
		}
	}
}

// TestClaudeCodeRequestTranslated: what Claude Code sends for a model it
// does not know (a role "system" message inside messages, thinking, effort,
// context management, cache_control) reaches an OpenAI-compatible provider
// as a chat request.
func TestClaudeCodeRequestTranslated(t *testing.T) {
	t.Parallel()
	ig := startClaudeGateway(t)
	body := `{"model":"mock:ok","max_tokens":32000,
		"system":[{"type":"text","text":"You are Claude Code.","cache_control":{"type":"ephemeral"}}],
		"messages":[{"role":"user","content":[{"type":"text","text":"hi","cache_control":{"type":"ephemeral"}}]},
			{"role":"system","content":[{"type":"text","text":"# Environment"}]}],
		"tools":[{"name":"Bash","input_schema":{"type":"object"},"defer_loading":true}],
		"thinking":{"type":"adaptive"},"context_management":{"edits":[]},"output_config":{"effort":"high"},
		"metadata":{"user_id":"{\"session_id\":\"s\"}"}}`
	r := expect(t, ig.do("POST", "/v1/messages?beta=true", body, "x-api-key", ig.key,
		"anthropic-beta", "claude-code-20250219,context-management-2025-06-27", "anthropic-version", "2023-06-01"), 200)
	if gjson.GetBytes(r.Body, "type").String() != "message" {
		t.Fatalf("answer = %s", r.Body)
	}
	up := ig.mock.last(t)
	want := `[{"role":"system","content":"You are Claude Code."},{"role":"user","content":"hi"},{"role":"system","content":"# Environment"}]`
	if got := gjson.GetBytes(up.Body, "messages").Raw; !jsonEqual(t, got, want) {
		t.Fatalf("messages = %s, want %s", got, want)
	}
	if gjson.GetBytes(up.Body, "reasoning_effort").String() != "high" || gjson.GetBytes(up.Body, "thinking").Exists() ||
		gjson.GetBytes(up.Body, "context_management").Exists() || up.Header.Get("Anthropic-Beta") != "" {
		t.Fatalf("upstream got %s %v", up.Body, up.Header)
	}
}

// TestTranslatedStreamStatesThePromptUpFront: a translated Anthropic stream
// gives the prompt's estimate in message_start (where LangChain reads it)
// and the provider's counts in the final message_delta.
func TestTranslatedStreamStatesThePromptUpFront(t *testing.T) {
	t.Parallel()
	ig := startClaudeGateway(t)
	body := `{"model":"mock:ok","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"` + strings.Repeat("word ", 100) + `"}]}`
	r := expect(t, ig.do("POST", "/v1/messages", body, "x-api-key", ig.key), 200)
	var start, delta gjson.Result
	sc := bufio.NewScanner(bytes.NewReader(r.Body))
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		ev := gjson.Parse(data)
		switch ev.Get("type").String() {
		case "message_start":
			start = ev.Get("message.usage")
		case "message_delta":
			delta = ev.Get("usage")
		}
	}
	if in := start.Get("input_tokens").Int(); in < 100 {
		t.Fatalf("message_start usage = %s, want the prompt's estimate (about 125 tokens)", start.Raw)
	}
	if delta.Get("input_tokens").Int() != mockPromptTokens || delta.Get("output_tokens").Int() != mockCompletionTokens {
		t.Fatalf("message_delta usage = %s, want the provider's %d/%d", delta.Raw, mockPromptTokens, mockCompletionTokens)
	}
	rec := ig.recordFor(t, r.Header.Get("X-Request-Id"))
	if rec.PromptTokens != mockPromptTokens || rec.CompletionTokens != mockCompletionTokens {
		t.Fatalf("record = %+v", rec)
	}
}
