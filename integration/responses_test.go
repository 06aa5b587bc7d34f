package integration

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
)

func TestResponsesAPIPassThrough(t *testing.T) {
	t.Parallel()
	ig := startInferenceGateway(t, `provider plain {
			base_url http://127.0.0.1:1/v1
		}
		price mock:resp 2 8`)
	client := ig.client(ig.key)

	// Non-stream, through the SDK.
	var httpResp *http.Response
	resp, err := client.Responses.New(context.Background(), responses.ResponseNewParams{
		Model: "mock:resp",
		Input: responses.ResponseNewParamsInputUnion{OfString: openaiString("Write a haiku")},
	}, option.WithResponseInto(&httpResp))
	if err != nil {
		t.Fatal(err)
	}
	if resp.OutputText() != "Hello world" || resp.Usage.InputTokens != mockResponsesInput {
		t.Fatalf("response = %q, usage %+v", resp.OutputText(), resp.Usage)
	}
	up := ig.mock.last(t)
	if up.Path != "/v1/responses" || !strings.Contains(string(up.Body), `"model":"resp"`) {
		t.Fatalf("upstream got %s %s", up.Path, up.Body)
	}
	rec := ig.recordFor(t, httpResp.Header.Get("X-Request-Id"))
	if rec.PromptTokens != mockResponsesInput || rec.CompletionTokens != mockResponsesOutput || rec.Endpoint != "/v1/responses" || rec.UsageSource != "provider" {
		t.Fatalf("record = %+v", rec)
	}
	assertCost(t, rec.Cost, wantCost(mockResponsesInput, mockResponsesOutput))

	// Stream, through the SDK.
	stream := client.Responses.NewStreaming(context.Background(), responses.ResponseNewParams{
		Model: "mock:resp",
		Input: responses.ResponseNewParamsInputUnion{OfString: openaiString("Write a haiku")},
	}, option.WithResponseInto(&httpResp))
	var text strings.Builder
	completed := false
	for stream.Next() {
		ev := stream.Current()
		switch ev.Type {
		case "response.output_text.delta":
			text.WriteString(ev.Delta)
		case "response.completed":
			completed = true
		}
	}
	if err := stream.Err(); err != nil || !completed || text.String() != "Hello world" {
		t.Fatalf("stream: err %v, completed %v, text %q", err, completed, text.String())
	}
	rec = ig.recordFor(t, httpResp.Header.Get("X-Request-Id"))
	if rec.PromptTokens != mockResponsesInput || rec.CompletionTokens != mockResponsesOutput || rec.UsageSource != "provider" {
		t.Fatalf("stream record = %+v", rec)
	}

	// Unknown fields are kept; providers without the API are refused.
	raw := `{"model":"mock:resp","input":"hi","future_field":{"x":[1,2]},"max_output_tokens":5}`
	expect(t, ig.do("POST", "/v1/responses", raw, "Authorization", "Bearer "+ig.key), 200)
	var sent map[string]json.RawMessage
	if err := json.Unmarshal(ig.mock.last(t).Body, &sent); err != nil || string(sent["future_field"]) != `{"x":[1,2]}` {
		t.Fatalf("upstream body %s", ig.mock.last(t).Body)
	}
	expectError(t, ig.do("POST", "/v1/responses", `{"model":"plain:x","input":"hi"}`, "Authorization", "Bearer "+ig.key),
		400, "Provider 'plain' does not support the Responses API")
}
