package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// startClaudeGateway adds a native Anthropic provider (the mock) to the
// inference gateway, priced like the other mock models.
func startClaudeGateway(t *testing.T) *inferenceGateway {
	t.Helper()
	mock := newMockUpstream(t)
	block := fmt.Sprintf(`provider mock {
			api_key {env.PROVIDER_KEY}
			base_url %[1]s
		}
		provider anthropic {
			api_key {env.PROVIDER_KEY}
			base_url %[1]s
		}
		price mock:ok %[2]v %[3]v
		price anthropic:claude-ok %[2]v %[3]v`, mock.BaseURL(), inputPrice, outputPrice)
	g := startGateway(t, gatewayConfig{Block: block})
	expect(t, g.adminDo("POST", "/v1/users", map[string]any{"user_id": "alice"}), 200)
	var k struct{ ID, Key string }
	expect(t, g.adminDo("POST", "/v1/keys", map[string]any{"user_id": "alice"}), 200).JSON(t, &k)
	return &inferenceGateway{gateway: g, mock: mock, key: k.Key, kid: k.ID}
}

func (ig *inferenceGateway) anthropicClient(key string) anthropic.Client {
	return anthropic.NewClient(
		aoption.WithBaseURL(ig.URL+"/"),
		aoption.WithAPIKey(key),
		aoption.WithMaxRetries(0),
	)
}

// claudeInputTotal is what the gateway meters as prompt tokens for the
// mock's Anthropic usage: input plus cache reads.
const claudeInputTotal = mockClaudeInput + mockClaudeCacheRead

func TestOpenAIClientUsesClaudeThroughTranslation(t *testing.T) {
	t.Parallel()
	ig := startClaudeGateway(t)
	client := ig.client(ig.key)
	ctx := context.Background()

	var httpResp *http.Response
	resp, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model: "anthropic:claude-ok",
		Messages: []openai.ChatCompletionMessageParamUnion{
			openai.SystemMessage("Be brief."),
			openai.UserMessage("Hi"),
		},
		MaxTokens: openai.Int(50),
	}, option.WithResponseInto(&httpResp))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Choices[0].Message.Content != "Hello from Claude" || resp.Choices[0].FinishReason != "stop" ||
		resp.Usage.PromptTokens != claudeInputTotal || resp.Usage.CompletionTokens != mockClaudeOutput {
		t.Fatalf("response = %+v", resp)
	}
	up := ig.mock.last(t)
	var sent struct {
		Model     string            `json:"model"`
		System    json.RawMessage   `json:"system"`
		MaxTokens int               `json:"max_tokens"`
		Messages  []json.RawMessage `json:"messages"`
	}
	if err := json.Unmarshal(up.Body, &sent); err != nil {
		t.Fatal(err)
	}
	if up.Path != "/v1/messages" || sent.Model != "claude-ok" || sent.MaxTokens != 50 || !strings.Contains(string(sent.System), "Be brief.") || len(sent.Messages) != 1 {
		t.Fatalf("upstream got %s %s", up.Path, up.Body)
	}
	if up.Header.Get("Authorization") != "" || strings.Contains(fmt.Sprint(up.Header), ig.key) {
		t.Fatalf("client credentials reached Anthropic: %v", up.Header)
	}
	rec := ig.recordFor(t, httpResp.Header.Get("X-Request-Id"))
	if rec.PromptTokens != claudeInputTotal || rec.CompletionTokens != mockClaudeOutput || rec.UsageSource != "provider" || rec.Provider != "anthropic" || rec.Model != "claude-ok" {
		t.Fatalf("record = %+v", rec)
	}
	assertCost(t, rec.Cost, wantCost(claudeInputTotal, mockClaudeOutput))

	// Stream.
	stream := client.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{
		Model:         "anthropic:claude-ok",
		Messages:      []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Hi")},
		StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
	}, option.WithResponseInto(&httpResp))
	text, usage := drainChat(stream)
	if err := stream.Err(); err != nil || text != "Hello from Claude" || usage.PromptTokens != claudeInputTotal || usage.CompletionTokens != mockClaudeOutput {
		t.Fatalf("stream: err %v, text %q, usage %+v", err, text, usage)
	}
	rec = ig.recordFor(t, httpResp.Header.Get("X-Request-Id"))
	if rec.PromptTokens != claudeInputTotal || rec.CompletionTokens != mockClaudeOutput || rec.UsageSource != "provider" {
		t.Fatalf("stream record = %+v", rec)
	}
}

func TestAnthropicClientOnBothKindsOfModels(t *testing.T) {
	t.Parallel()
	ig := startClaudeGateway(t)
	client := ig.anthropicClient(ig.key) // sends the key in x-api-key
	ctx := context.Background()
	for _, tt := range []struct {
		model            string
		text, streamText string
		prompt, complete int64
		upstreamPath     string
	}{
		{"anthropic:claude-ok", "Hello from Claude", "Hello from Claude", claudeInputTotal, mockClaudeOutput, "/v1/messages"},
		{"mock:ok", "Hello world, from the mock.", "Hello world", mockPromptTokens, mockCompletionTokens, "/v1/chat/completions"},
	} {
		t.Run(tt.model, func(t *testing.T) {
			var httpResp *http.Response
			msg, err := client.Messages.New(ctx, anthropic.MessageNewParams{
				Model:     anthropic.Model(tt.model),
				MaxTokens: 64,
				Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Hi"))},
			}, aoption.WithResponseInto(&httpResp))
			if err != nil {
				t.Fatal(err)
			}
			if len(msg.Content) == 0 || msg.Content[0].Text != tt.text || msg.Usage.OutputTokens != tt.complete {
				t.Fatalf("message = %+v", msg)
			}
			if got := ig.mock.last(t).Path; got != tt.upstreamPath {
				t.Fatalf("upstream path = %q", got)
			}
			rec := ig.recordFor(t, httpResp.Header.Get("X-Request-Id"))
			if rec.PromptTokens != tt.prompt || rec.CompletionTokens != tt.complete || rec.Endpoint != "/v1/messages" || rec.UsageSource != "provider" {
				t.Fatalf("record = %+v", rec)
			}
			assertCost(t, rec.Cost, wantCost(tt.prompt, tt.complete))

			stream := client.Messages.NewStreaming(ctx, anthropic.MessageNewParams{
				Model:     anthropic.Model(tt.model),
				MaxTokens: 64,
				Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Hi"))},
			}, aoption.WithResponseInto(&httpResp))
			var acc anthropic.Message
			for stream.Next() {
				if err := acc.Accumulate(stream.Current()); err != nil {
					t.Fatal(err)
				}
			}
			if err := stream.Err(); err != nil {
				t.Fatal(err)
			}
			if len(acc.Content) == 0 || acc.Content[0].Text != tt.streamText || acc.Usage.OutputTokens != tt.complete {
				t.Fatalf("streamed message = %+v", acc)
			}
			rec = ig.recordFor(t, httpResp.Header.Get("X-Request-Id"))
			if rec.PromptTokens != tt.prompt || rec.CompletionTokens != tt.complete || rec.UsageSource != "provider" {
				t.Fatalf("stream record = %+v", rec)
			}
		})
	}
}

func TestMessagesErrorsAndMasterKey(t *testing.T) {
	t.Parallel()
	ig := startClaudeGateway(t)
	body := `{"model":"anthropic:claude-ok","max_tokens":10,"messages":[{"role":"user","content":"Hi"}]%s}`
	r := ig.do("POST", "/v1/messages", fmt.Sprintf(body, ""), "x-api-key", masterKey)
	want := "When using master key, 'metadata.user_id' is required in request body"
	if msg := expectAnthropicError(t, r, 400, "invalid_request_error"); msg != want {
		t.Fatalf("error body = %s", r.Body)
	}
	expect(t, ig.do("POST", "/v1/messages", fmt.Sprintf(body, `,"metadata":{"user_id":"alice"}`), "x-api-key", masterKey), 200)

	// The Anthropic SDK sees its own error types.
	client := ig.anthropicClient("gw-" + strings.Repeat("x", 64))
	_, err := client.Messages.New(context.Background(), anthropic.MessageNewParams{
		Model: "anthropic:claude-ok", MaxTokens: 10,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Hi"))},
	})
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 401 || !strings.Contains(apiErr.RawJSON(), `"authentication_error"`) {
		t.Fatalf("error = %v", err)
	}
}
