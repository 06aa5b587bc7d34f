package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/packages/ssestream"
)

// Prices of the mock models (USD per 1M tokens), chosen so costs are exact
// enough to compare with a small tolerance.
const (
	inputPrice  = 2.0
	outputPrice = 8.0
)

// usageRecord mirrors the contract's usage record.
type usageRecord struct {
	ID               string  `json:"id"`
	RequestID        string  `json:"request_id"`
	UserID           string  `json:"user_id"`
	APIKeyID         *string `json:"api_key_id"`
	EndUser          *string `json:"end_user"`
	Timestamp        string  `json:"timestamp"`
	Model            string  `json:"model"`
	Provider         string  `json:"provider"`
	Endpoint         string  `json:"endpoint"`
	PromptTokens     int64   `json:"prompt_tokens"`
	CompletionTokens int64   `json:"completion_tokens"`
	TotalTokens      int64   `json:"total_tokens"`
	Cost             float64 `json:"cost"`
	Status           string  `json:"status"`
	StatusCode       int     `json:"status_code"`
	LatencyMS        int64   `json:"latency_ms"`
	ErrorMessage     *string `json:"error_message"`
	UsageSource      string  `json:"usage_source"`
}

// inferenceGateway is a gateway in front of a mock provider named "mock",
// with priced models, a user "alice" and a virtual key for her.
type inferenceGateway struct {
	*gateway
	mock *mockUpstream
	key  string
	kid  string
}

func startInferenceGateway(t *testing.T, extraProvider string) *inferenceGateway {
	t.Helper()
	mock := newMockUpstream(t)
	block := fmt.Sprintf(`provider mock {
			api_key {env.PROVIDER_KEY}
			base_url %s
			models listed-only
			responses_api
		}
		%s
		price mock:ok %v %v
		price mock:no-usage %v %v
		price mock:gated %v %v
		price mock:drop %v %v
		price mock:emb %v %v
		%s`, mock.BaseURL(), stuckProvider(mock),
		inputPrice, outputPrice, inputPrice, outputPrice, inputPrice, outputPrice, inputPrice, outputPrice, inputPrice, outputPrice,
		extraProvider)
	g := startGateway(t, gatewayConfig{Block: block})
	expect(t, g.adminDo("POST", "/v1/users", map[string]any{"user_id": "alice"}), 200)
	var k struct{ ID, Key string }
	expect(t, g.adminDo("POST", "/v1/keys", map[string]any{"user_id": "alice", "key_name": "app"}), 200).JSON(t, &k)
	return &inferenceGateway{gateway: g, mock: mock, key: k.Key, kid: k.ID}
}

func (ig *inferenceGateway) client(key string, opts ...option.RequestOption) openai.Client {
	return openai.NewClient(append([]option.RequestOption{
		option.WithBaseURL(ig.URL + "/v1/"),
		option.WithAPIKey(key),
		option.WithMaxRetries(0),
	}, opts...)...)
}

// usage lists usage records through the admin API.
func (ig *inferenceGateway) usage(t *testing.T, query string) []usageRecord {
	t.Helper()
	var recs []usageRecord
	expect(t, ig.adminDo("GET", "/v1/usage?"+query, nil), 200).JSON(t, &recs)
	return recs
}

func (ig *inferenceGateway) recordFor(t *testing.T, requestID string) usageRecord {
	t.Helper()
	for skip := 0; ; skip += 1000 {
		page := ig.usage(t, fmt.Sprintf("user_id=alice&limit=1000&skip=%d", skip))
		for _, r := range page {
			if r.RequestID == requestID {
				return r
			}
		}
		if len(page) < 1000 {
			break
		}
	}
	t.Fatalf("no usage record with request_id %q", requestID)
	return usageRecord{}
}

func wantCost(prompt, completion int64) float64 {
	return float64(prompt)/1e6*inputPrice + float64(completion)/1e6*outputPrice
}

func assertCost(t *testing.T, got, want float64) {
	t.Helper()
	if math.Abs(got-want) > 1e-12 {
		t.Fatalf("cost = %v, want %v", got, want)
	}
}

func TestChatCompletionWithOpenAISDK(t *testing.T) {
	t.Parallel()
	ig := startInferenceGateway(t, "")
	ctx := context.Background()

	var httpResp *http.Response
	client := ig.client(ig.key)
	resp, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model:    "mock:ok",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Write a haiku on Jupiter")},
	}, option.WithResponseInto(&httpResp))
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Choices[0].Message.Content; got != "Hello world, from the mock." {
		t.Fatalf("content = %q", got)
	}
	if resp.Usage.PromptTokens != mockPromptTokens || resp.Usage.CompletionTokens != mockCompletionTokens {
		t.Fatalf("usage = %+v", resp.Usage)
	}

	up := ig.mock.last(t)
	if up.Path != "/v1/chat/completions" {
		t.Fatalf("upstream path = %q", up.Path)
	}
	if got := up.Header.Get("Authorization"); got != "Bearer "+providerKey {
		t.Fatalf("upstream Authorization = %q, want the provider key", got)
	}
	for name, vals := range up.Header {
		for _, v := range vals {
			if strings.Contains(v, ig.key) {
				t.Fatalf("the client's key reached the upstream in %s", name)
			}
		}
	}
	var sent map[string]any
	if err := json.Unmarshal(up.Body, &sent); err != nil {
		t.Fatal(err)
	}
	if sent["model"] != "ok" {
		t.Fatalf("upstream model = %v, want the prefix stripped", sent["model"])
	}

	rid := httpResp.Header.Get("X-Request-Id")
	if rid == "" {
		t.Fatal("no X-Request-Id")
	}
	rec := ig.recordFor(t, rid)
	if rec.PromptTokens != mockPromptTokens || rec.CompletionTokens != mockCompletionTokens || rec.TotalTokens != mockPromptTokens+mockCompletionTokens {
		t.Fatalf("record tokens = %+v", rec)
	}
	assertCost(t, rec.Cost, wantCost(mockPromptTokens, mockCompletionTokens))
	if rec.Status != "success" || rec.StatusCode != 200 || rec.UsageSource != "provider" || rec.Model != "ok" ||
		rec.Provider != "mock" || rec.Endpoint != "/v1/chat/completions" || rec.UserID != "alice" ||
		rec.APIKeyID == nil || *rec.APIKeyID != ig.kid || rec.ID == "" || rec.Timestamp == "" {
		t.Fatalf("record = %+v", rec)
	}
}

func TestForwardedBodyIsExactlyWhatTheClientSent(t *testing.T) {
	t.Parallel()
	ig := startInferenceGateway(t, "")
	// Unknown fields, key order, a 2^53+1 integer and odd spacing survive;
	// only the model changes.
	sent := `{"z_first":1,"model":"mock:ok","messages":[{"role":"user","content":"hi"}],"reasoning_effort":"high","seed":9007199254740993,"temperature":0.30000000000000004,"user":"alice"}`
	r := ig.do("POST", "/v1/chat/completions", sent, "Authorization", "Bearer "+ig.key, "Accept-Encoding", "gzip")
	expect(t, r, 200)
	want := strings.Replace(sent, `"model":"mock:ok"`, `"model":"ok"`, 1)
	up := ig.mock.last(t)
	if string(up.Body) != want {
		t.Fatalf("upstream body\n got %s\nwant %s", up.Body, want)
	}
	if ae := up.Header.Get("Accept-Encoding"); ae != "" && ae != "gzip" {
		t.Fatalf("upstream Accept-Encoding = %q", ae)
	}
}

func TestStreamReachesClientBeforeUpstreamFinishes(t *testing.T) {
	t.Parallel()
	ig := startInferenceGateway(t, "")
	client := ig.client(ig.key)
	var httpResp *http.Response
	stream := client.Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{
		Model:    "mock:gated",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
	}, option.WithResponseInto(&httpResp))
	// The mock holds the stream open after its first chunk until released,
	// so this chunk can only arrive if the gateway flushed it.
	if !stream.Next() {
		t.Fatalf("no first chunk: %v", stream.Err())
	}
	if got := stream.Current().Choices[0].Delta.Content; got != "Hello" {
		t.Fatalf("first chunk = %q", got)
	}
	ig.mock.release()
	rest, usage := drainChat(stream)
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if content := "Hello" + rest; content != "Hello world" {
		t.Fatalf("content = %q", content)
	}
	if usage.PromptTokens != mockPromptTokens {
		t.Fatalf("the SDK asked for no usage chunk but include_usage is forced: got usage %+v", usage)
	}
	var sent struct {
		StreamOptions struct {
			IncludeUsage bool `json:"include_usage"`
		} `json:"stream_options"`
	}
	if err := json.Unmarshal(ig.mock.last(t).Body, &sent); err != nil || !sent.StreamOptions.IncludeUsage {
		t.Fatalf("include_usage not forced upstream: %s", ig.mock.last(t).Body)
	}
	rec := ig.recordFor(t, httpResp.Header.Get("X-Request-Id"))
	if rec.UsageSource != "provider" || rec.PromptTokens != mockPromptTokens || rec.CompletionTokens != mockCompletionTokens || rec.Status != "success" {
		t.Fatalf("record = %+v", rec)
	}
	assertCost(t, rec.Cost, wantCost(mockPromptTokens, mockCompletionTokens))
}

// drainChat reads a chat stream to its end and returns the content of the
// chunks it read and the last usage it carried; the caller checks Err.
func drainChat(stream *ssestream.Stream[openai.ChatCompletionChunk]) (content string, usage openai.CompletionUsage) {
	var b strings.Builder
	for stream.Next() {
		ch := stream.Current()
		if len(ch.Choices) > 0 {
			b.WriteString(ch.Choices[0].Delta.Content)
		}
		if ch.Usage.TotalTokens > 0 {
			usage = ch.Usage
		}
	}
	return b.String(), usage
}

// readSSE posts a streaming request and returns the data lines received.
func readSSE(t *testing.T, g *gateway, body, key string) (lines []string, requestID string) {
	t.Helper()
	resp := g.postStream(context.Background(), t, "/v1/chat/completions", body, key)
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			lines = append(lines, data)
		}
	}
	return lines, resp.Header.Get("X-Request-Id")
}

func TestStreamUsageChunkHiddenWhenClientOptedOut(t *testing.T) {
	t.Parallel()
	ig := startInferenceGateway(t, "")
	lines, rid := readSSE(t, ig.gateway, `{"model":"mock:ok","stream":true,"stream_options":{"include_usage":false},"messages":[{"role":"user","content":"hi"}]}`, ig.key)
	for _, l := range lines {
		if strings.Contains(l, `"usage"`) {
			t.Fatalf("usage chunk forwarded although include_usage was false: %s", l)
		}
	}
	if lines[len(lines)-1] != "[DONE]" {
		t.Fatalf("stream did not end with [DONE]: %v", lines)
	}
	rec := ig.recordFor(t, rid)
	if rec.UsageSource != "provider" || rec.PromptTokens != mockPromptTokens {
		t.Fatalf("opted-out stream not metered from provider usage: %+v", rec)
	}
}

func TestStreamWithoutUsageIsStillCharged(t *testing.T) {
	t.Parallel()
	ig := startInferenceGateway(t, "")
	_, rid := readSSE(t, ig.gateway, `{"model":"mock:no-usage","stream":true,"messages":[{"role":"user","content":"Write a haiku on Saturn"}]}`, ig.key)
	rec := ig.recordFor(t, rid)
	if rec.UsageSource != "estimated" || rec.PromptTokens <= 0 || rec.CompletionTokens <= 0 || rec.Cost <= 0 {
		t.Fatalf("no-usage stream record = %+v", rec)
	}
	assertCost(t, rec.Cost, wantCost(rec.PromptTokens, rec.CompletionTokens))
}

func TestClientDisconnectMidStreamIsCharged(t *testing.T) {
	t.Parallel()
	ig := startInferenceGateway(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	resp := ig.postStream(ctx, t, "/v1/chat/completions",
		`{"model":"mock:gated","stream":true,"messages":[{"role":"user","content":"tell me a long story"}]}`, ig.key)
	rid := resp.Header.Get("X-Request-Id")
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || !strings.Contains(line, "Hello") {
		t.Fatalf("first line %q, %v", line, err)
	}
	cancel()
	resp.Body.Close()
	var rec usageRecord
	waitFor(t, "the usage record of the cut stream", func() bool {
		for _, r := range ig.usage(t, "user_id=alice") {
			if r.RequestID == rid {
				rec = r
				return true
			}
		}
		return false
	})
	if rec.UsageSource != "estimated" || rec.CompletionTokens <= 0 || rec.Cost <= 0 || rec.Status != "error" {
		t.Fatalf("disconnected stream record = %+v", rec)
	}
}

func TestUpstreamDropMidStreamSendsErrorEvent(t *testing.T) {
	t.Parallel()
	ig := startInferenceGateway(t, "")
	lines, rid := readSSE(t, ig.gateway, `{"model":"mock:drop","stream":true,"messages":[{"role":"user","content":"hi"}]}`, ig.key)
	n := len(lines)
	if n < 3 || lines[n-1] != "[DONE]" || !strings.Contains(lines[n-2], `"An error occurred during streaming"`) {
		t.Fatalf("stream lines = %q", lines)
	}
	rec := ig.recordFor(t, rid)
	if rec.Status != "error" || rec.UsageSource != "estimated" || rec.Cost <= 0 {
		t.Fatalf("dropped stream record = %+v", rec)
	}
}

func TestUpstreamErrorsWithOpenAISDK(t *testing.T) {
	t.Parallel()
	ig := startInferenceGateway(t, `provider slow {
			base_url `+"http://127.0.0.1:1"+`/v1
		}`)
	// A provider whose base URL nothing listens on.
	client := ig.client(ig.key)
	tests := []struct {
		model   string
		status  int
		message string
	}{
		{"mock:err-500", 502, "LLM provider error"},
		{"mock:err-503", 502, "LLM provider error"},
		{"mock:err-401", 502, "LLM provider error"},
		{"mock:err-403", 502, "LLM provider error"},
		{"mock:err-400", 400, "mock error 400 with secret detail"},
		{"mock:err-429", 429, "mock error 429 with secret detail"},
		{"mock:err-404", 404, "mock error 404 with secret detail"},
		{"stuck:hang", 504, "LLM provider timeout"},
		{"slow:any", 502, "LLM provider error"},
	}
	for _, tt := range tests {
		t.Run(tt.model, func(t *testing.T) {
			var httpResp *http.Response
			_, err := client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
				Model:    tt.model,
				Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
			}, option.WithResponseInto(&httpResp))
			var apiErr *openai.Error
			if !errors.As(err, &apiErr) {
				t.Fatalf("error = %v, want an *openai.Error", err)
			}
			if apiErr.StatusCode != tt.status || apiErr.Message != tt.message {
				t.Fatalf("got %d %q, want %d %q", apiErr.StatusCode, apiErr.Message, tt.status, tt.message)
			}
			if tt.status >= 500 && strings.Contains(apiErr.RawJSON(), "secret detail") {
				t.Fatalf("provider error text leaked: %s", apiErr.RawJSON())
			}
			rec := ig.recordFor(t, httpResp.Header.Get("X-Request-Id"))
			if rec.Status != "error" || rec.StatusCode != tt.status || rec.ErrorMessage == nil || rec.Cost != 0 {
				t.Fatalf("error record = %+v", rec)
			}
		})
	}
}

func TestInferenceAuthAndUserRules(t *testing.T) {
	t.Parallel()
	ig := startInferenceGateway(t, "")
	chat := func(key, body string) *response {
		return ig.do("POST", "/v1/chat/completions", body, "Authorization", "Bearer "+key)
	}
	msgs := `"messages":[{"role":"user","content":"hi"}]`
	expectError(t, chat(masterKey, `{"model":"mock:ok",`+msgs+`}`), 400, "When using master key, 'user' field is required in request body")
	expectError(t, chat(masterKey, `{"model":"mock:ok","user":"nobody",`+msgs+`}`), 404, "User 'nobody' not found")
	expect(t, chat(masterKey, `{"model":"mock:ok","user":"alice",`+msgs+`}`), 200)
	// With a virtual key, "user" is the caller's own end user: billed to
	// the key's user (TestVirtualKeyUserIsTheCallersEndUser checks the record).
	expect(t, chat(ig.key, `{"model":"mock:ok","user":"bob",`+msgs+`}`), 200)
	expect(t, chat(ig.key, `{"model":"mock:ok","user":"alice",`+msgs+`}`), 200)
	expectError(t, chat(ig.key, `{"model":"gpt-4o",`+msgs+`}`), 400, "Model 'gpt-4o' must be 'provider:model'")
	expectError(t, chat(ig.key, `{"model":"nope:gpt-4o",`+msgs+`}`), 400, "Provider 'nope' is not configured")
	expectError(t, chat(ig.key, `{"model":"mock:ok",`), 422, "Invalid JSON body")
	expectError(t, chat(ig.key, `{"model":5}`), 422, "Field 'model' must be a string")
	expectError(t, chat("gw-"+strings.Repeat("x", 64), `{"model":"mock:ok",`+msgs+`}`), 401, "Invalid API key")

	expect(t, ig.adminDo("PATCH", "/v1/users/alice", map[string]any{"blocked": true}), 200)
	expectError(t, chat(ig.key, `{"model":"mock:ok",`+msgs+`}`), 403, "User 'alice' is blocked")
	expect(t, ig.adminDo("PATCH", "/v1/users/alice", map[string]any{"blocked": false}), 200)

	var k struct{ Key string }
	expect(t, ig.adminDo("POST", "/v1/keys", map[string]any{"user_id": "alice", "allowed_models": []string{"mock:ok"}}), 200).JSON(t, &k)
	expect(t, chat(k.Key, `{"model":"mock:ok",`+msgs+`}`), 200)
	expectError(t, chat(k.Key, `{"model":"mock:no-usage",`+msgs+`}`), 403, "Model 'mock:no-usage' is not allowed for this API key")
}

func TestEmbeddingsAreMetered(t *testing.T) {
	t.Parallel()
	ig := startInferenceGateway(t, "")
	var httpResp *http.Response
	client := ig.client(ig.key)
	resp, err := client.Embeddings.New(context.Background(), openai.EmbeddingNewParams{
		Model: "mock:emb",
		Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("hello")},
	}, option.WithResponseInto(&httpResp))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Data) != 1 || resp.Usage.PromptTokens != mockEmbeddingTokens {
		t.Fatalf("embeddings response = %+v", resp)
	}
	if ig.mock.last(t).Path != "/v1/embeddings" {
		t.Fatalf("upstream path = %q", ig.mock.last(t).Path)
	}
	rec := ig.recordFor(t, httpResp.Header.Get("X-Request-Id"))
	if rec.PromptTokens != mockEmbeddingTokens || rec.CompletionTokens != 0 || rec.Endpoint != "/v1/embeddings" {
		t.Fatalf("record = %+v", rec)
	}
	assertCost(t, rec.Cost, wantCost(mockEmbeddingTokens, 0))
}

func TestSpendEqualsSumOfRecords(t *testing.T) {
	t.Parallel()
	ig := startInferenceGateway(t, "")
	client := ig.client(ig.key)
	done := make(chan error, 12)
	for i := range 12 {
		go func() {
			model := []string{"mock:ok", "mock:no-usage", "mock:err-500"}[i%3]
			_, err := client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
				Model:    model,
				Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(strings.Repeat("word ", i+1))},
			})
			if model == "mock:err-500" {
				err = nil
			}
			done <- err
		}()
	}
	for range 12 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	var sum float64
	recs := ig.usage(t, "user_id=alice")
	if len(recs) != 12 {
		t.Fatalf("%d records, want 12", len(recs))
	}
	for _, r := range recs {
		sum += r.Cost
	}
	var user struct{ Spend float64 }
	expect(t, ig.adminDo("GET", "/v1/users/alice", nil), 200).JSON(t, &user)
	var key struct{ Spend float64 }
	expect(t, ig.adminDo("GET", "/v1/keys/"+ig.kid, nil), 200).JSON(t, &key)
	if math.Abs(user.Spend-sum) > 1e-9 || math.Abs(key.Spend-sum) > 1e-9 || sum <= 0 {
		t.Fatalf("user spend %v, key spend %v, sum of records %v", user.Spend, key.Spend, sum)
	}
}

func TestModelsList(t *testing.T) {
	t.Parallel()
	ig := startInferenceGateway(t, "")
	var list struct {
		Object string `json:"object"`
		Data   []struct {
			ID, Object, OwnedBy string
		} `json:"data"`
	}
	expect(t, ig.do("GET", "/v1/models", nil, "Authorization", "Bearer "+ig.key), 200).JSON(t, &list)
	ids := make([]string, len(list.Data))
	for i, m := range list.Data {
		ids[i] = m.ID
	}
	want := "mock:drop mock:emb mock:gated mock:listed-only mock:no-usage mock:ok"
	if list.Object != "list" || strings.Join(ids, " ") != want {
		t.Fatalf("models = %v, want %s", ids, want)
	}
	expect(t, ig.do("GET", "/v1/models/mock:ok", nil, "Authorization", "Bearer "+ig.key), 200)
	expectError(t, ig.do("GET", "/v1/models/mock:nope", nil, "Authorization", "Bearer "+ig.key), 404, "Model 'mock:nope' not found")

	var k struct{ Key string }
	expect(t, ig.adminDo("POST", "/v1/keys", map[string]any{"user_id": "alice", "allowed_models": []string{"mock:ok"}}), 200).JSON(t, &k)
	expect(t, ig.do("GET", "/v1/models", nil, "Authorization", "Bearer "+k.Key), 200).JSON(t, &list)
	if len(list.Data) != 1 || list.Data[0].ID != "mock:ok" {
		t.Fatalf("restricted key sees %+v", list.Data)
	}
}

func TestUsageFilters(t *testing.T) {
	t.Parallel()
	ig := startInferenceGateway(t, "")
	expect(t, ig.adminDo("POST", "/v1/users", map[string]any{"user_id": "bob"}), 200)
	chat := func(user, model string) {
		expect(t, ig.do("POST", "/v1/chat/completions", fmt.Sprintf(`{"model":%q,"user":%q,"messages":[{"role":"user","content":"hi"}]}`, model, user),
			"Authorization", "Bearer "+masterKey), 200)
	}
	before := time.Now().Add(-time.Second).UTC()
	chat("alice", "mock:ok")
	chat("bob", "mock:ok")
	chat("bob", "mock:no-usage")
	expect(t, ig.do("POST", "/v1/chat/completions", `{"model":"mock:ok","messages":[{"role":"user","content":"hi"}]}`, "Authorization", "Bearer "+ig.key), 200)

	if n := len(ig.usage(t, "")); n != 4 {
		t.Fatalf("all: %d records", n)
	}
	bob := ig.usage(t, "user_id=bob")
	if len(bob) != 2 || bob[0].Model != "no-usage" || bob[1].Model != "ok" {
		t.Fatalf("bob's records, newest first: %+v", bob)
	}
	if n := len(ig.usage(t, "user_id=bob&model=ok")); n != 1 {
		t.Fatalf("bob+model: %d", n)
	}
	if recs := ig.usage(t, "api_key_id="+ig.kid); len(recs) != 1 || recs[0].UserID != "alice" {
		t.Fatalf("by key: %+v", recs)
	}
	if n := len(ig.usage(t, fmt.Sprintf("start_date=%d", before.Unix()))); n != 4 {
		t.Fatalf("start_date (unix): %d", n)
	}
	if n := len(ig.usage(t, "end_date="+before.Format(time.RFC3339))); n != 0 {
		t.Fatalf("end_date before everything: %d", n)
	}
	if n := len(ig.usage(t, "limit=2&skip=3")); n != 1 {
		t.Fatalf("skip/limit: %d", n)
	}
	expect(t, ig.adminDo("GET", "/v1/usage?start_date=yesterday", nil), 422)
	var userUsage []usageRecord
	expect(t, ig.adminDo("GET", "/v1/users/bob/usage", nil), 200).JSON(t, &userUsage)
	if len(userUsage) != 2 {
		t.Fatalf("/v1/users/bob/usage: %d", len(userUsage))
	}
	expectError(t, ig.do("GET", "/v1/usage", nil, "Authorization", "Bearer "+ig.key), 401, "Invalid master key")
}
