package integration

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/tidwall/gjson"
)

// TestLegacyCompletionsAreMetered: POST /v1/completions is passed through
// and metered like chat, streams included (include_usage forced, and the
// usage chunk kept from a client that asked for include_usage false).
func TestLegacyCompletionsAreMetered(t *testing.T) {
	t.Parallel()
	ig := startClaudeGateway(t)
	client := ig.client(ig.key)
	ctx := context.Background()

	var httpResp *http.Response
	resp, err := client.Completions.New(ctx, openai.CompletionNewParams{
		Model:  "mock:ok",
		Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("Say hello")},
	}, option.WithResponseInto(&httpResp))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Choices[0].Text != "Hello world" || resp.Usage.TotalTokens != mockPromptTokens+mockCompletionTokens {
		t.Fatalf("completion = %+v", resp)
	}
	up := ig.mock.last(t)
	if up.Path != "/v1/completions" || gjson.GetBytes(up.Body, "model").String() != "ok" || gjson.GetBytes(up.Body, "prompt").String() != "Say hello" {
		t.Fatalf("upstream got %s %s", up.Path, up.Body)
	}
	rec := ig.recordFor(t, httpResp.Header.Get("X-Request-Id"))
	if rec.Endpoint != "/v1/completions" || rec.PromptTokens != mockPromptTokens || rec.CompletionTokens != mockCompletionTokens || rec.UsageSource != "provider" {
		t.Fatalf("record = %+v", rec)
	}
	assertCost(t, rec.Cost, wantCost(mockPromptTokens, mockCompletionTokens))

	// A stream whose client asked for no usage: forced upstream, metered,
	// and not shown to the client.
	r := expect(t, ig.do("POST", "/v1/completions", `{"model":"mock:ok","prompt":"Say hello","stream":true,"stream_options":{"include_usage":false}}`, bearer(ig.key)...), 200)
	if !bytes.Contains(r.Body, []byte(`"text":" world"`)) || bytes.Contains(r.Body, []byte(`"usage"`)) || !bytes.HasSuffix(bytes.TrimSpace(r.Body), []byte("data: [DONE]")) {
		t.Fatalf("stream = %s", r.Body)
	}
	if v := gjson.GetBytes(ig.mock.last(t).Body, "stream_options.include_usage"); v.Type != gjson.True {
		t.Fatalf("include_usage not forced: %s", ig.mock.last(t).Body)
	}
	rec = ig.recordFor(t, r.Header.Get("X-Request-Id"))
	if rec.PromptTokens != mockPromptTokens || rec.CompletionTokens != mockCompletionTokens || rec.UsageSource != "provider" {
		t.Fatalf("stream record = %+v", rec)
	}

	// A client that did not say sees it, as on chat.
	r = expect(t, ig.do("POST", "/v1/completions", `{"model":"mock:ok","prompt":"Say hello","stream":true}`, bearer(ig.key)...), 200)
	if !strings.Contains(string(r.Body), `"usage"`) {
		t.Fatalf("stream without the usage chunk asked for: %s", r.Body)
	}

	// Anthropic-format providers have no such API, nor embeddings: refused
	// before anything is sent.
	before := len(ig.mock.Requests())
	expectError(t, ig.do("POST", "/v1/completions", `{"model":"anthropic:claude-ok","prompt":"x"}`, bearer(ig.key)...), 400,
		"Provider 'anthropic' does not support the legacy Completions API")
	expectError(t, ig.do("POST", "/v1/embeddings", `{"model":"anthropic:claude-ok","input":"x"}`, bearer(ig.key)...), 400,
		"Provider 'anthropic' does not support embeddings")
	if n := len(ig.mock.Requests()) - before; n != 0 {
		t.Fatalf("refused pairings reached the provider %d times", n)
	}
}
