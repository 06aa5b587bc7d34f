package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// Numbers the mock reports as usage, so metering tests can check exact costs.
const (
	mockPromptTokens     = 11
	mockCompletionTokens = 7
	mockEmbeddingTokens  = 5
	mockResponsesInput   = 13
	mockResponsesOutput  = 9
	// Anthropic usage: 17 input tokens, 4 read from the cache, 6 output.
	mockClaudeInput     = 17
	mockClaudeCacheRead = 4
	mockClaudeOutput    = 6
	// What the Anthropic mock's count_tokens answers.
	mockCountTokens = 1234
)

// mockUpstream is an OpenAI-compatible provider for tests. The model name
// (after the gateway strips its provider prefix) selects the behaviour:
//
//	ok          non-stream answer, or a stream with a usage chunk when asked
//	no-usage    like ok, but never any usage
//	gated       a stream that sends one chunk, then waits for release()
//	slow        a non-stream answer sent once the test sends on slow (or release())
//	drop        a stream that sends one chunk, then drops the connection
//	drop-early  a stream that sends its 200 headers, then drops the
//	            connection before any event
//	hang        never answers (until the request is cancelled)
//	err-<code>  answers <code> with an OpenAI error body
type mockUpstream struct {
	mockServer
	requestLog
	gate chan struct{}
	slow chan struct{} // each send lets one slow request answer
	once sync.Once
}

func newMockUpstream(t *testing.T) *mockUpstream {
	t.Helper()
	m := &mockUpstream{gate: make(chan struct{}), slow: make(chan struct{})}
	m.mockServer = startMockServer(t, m.serve, m.release)
	return m
}

// release lets gated streams finish.
func (m *mockUpstream) release() { m.once.Do(func() { close(m.gate) }) }

// last returns the last request received.
func (m *mockUpstream) last(t *testing.T) mockRequest {
	t.Helper()
	reqs := m.Requests()
	if len(reqs) == 0 {
		t.Fatal("the mock upstream received no request")
	}
	return reqs[len(reqs)-1]
}

func (m *mockUpstream) serve(w http.ResponseWriter, r *http.Request) {
	body := m.record(r)

	var req struct {
		Model         string `json:"model"`
		Stream        bool   `json:"stream"`
		StreamOptions *struct {
			IncludeUsage bool `json:"include_usage"`
		} `json:"stream_options"`
	}
	_ = json.Unmarshal(body, &req)

	if code, ok := strings.CutPrefix(req.Model, "err-"); ok {
		var status int
		fmt.Sscan(code, &status)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"error":{"message":"mock error %d with secret detail","type":"invalid_request_error","code":"mock_%d"}}`, status, status)
		return
	}
	if req.Model == "echo-key" {
		// Some providers quote the credential they rejected.
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"error":{"message":"Incorrect API key provided: %s","type":"invalid_request_error"}}`, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
		return
	}
	if req.Model == "hang" {
		<-r.Context().Done()
		return
	}
	if req.Model == "slow" {
		select {
		case <-m.slow:
		case <-m.gate:
		case <-r.Context().Done():
			return
		}
	}
	switch r.URL.Path {
	case "/v1/messages/count_tokens":
		if !anthropicAuthorized(w, r) {
			return
		}
		writeMockJSON(w, fmt.Sprintf(`{"input_tokens":%d}`, mockCountTokens))
		return
	case "/v1/messages":
		m.serveMessages(w, r, req.Model, req.Stream)
		return
	case "/v1/responses":
		m.serveResponses(w, req.Model, req.Stream)
		return
	case "/v1/embeddings":
		writeMockJSON(w, fmt.Sprintf(`{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,0.2]}],"model":%q,"usage":{"prompt_tokens":%d,"total_tokens":%d}}`,
			req.Model, mockEmbeddingTokens, mockEmbeddingTokens))
		return
	case "/v1/completions":
		m.serveLegacyCompletions(w, req.Model, req.Stream, req.StreamOptions != nil && req.StreamOptions.IncludeUsage)
		return
	case "/v1/chat/completions":
	default:
		http.NotFound(w, r)
		return
	}
	if !req.Stream {
		usage := fmt.Sprintf(`,"usage":{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}`, mockPromptTokens, mockCompletionTokens, mockPromptTokens+mockCompletionTokens)
		if req.Model == "no-usage" {
			usage = ""
		}
		writeMockJSON(w, fmt.Sprintf(`{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":%q,"choices":[{"index":0,"message":{"role":"assistant","content":"Hello world, from the mock."},"finish_reason":"stop"}]%s}`, req.Model, usage))
		return
	}

	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	chunk := func(content string) {
		fmt.Fprintf(w, "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":%q,\"choices\":[{\"index\":0,\"delta\":{\"content\":%q},\"finish_reason\":null}]}\n\n", req.Model, content)
		_ = rc.Flush()
	}
	if req.Model == "drop-early" {
		_ = rc.Flush()
		if conn, _, err := rc.Hijack(); err == nil {
			conn.Close()
		}
		return
	}
	chunk("Hello")
	switch req.Model {
	case "gated":
		select {
		case <-m.gate:
		case <-r.Context().Done():
			return
		}
	case "drop":
		conn, _, err := rc.Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	chunk(" world")
	fmt.Fprintf(w, "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":%q,\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n", req.Model)
	if req.Model != "no-usage" && req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
		fmt.Fprintf(w, "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":%q,\"choices\":[],\"usage\":{\"prompt_tokens\":%d,\"completion_tokens\":%d,\"total_tokens\":%d}}\n\n",
			req.Model, mockPromptTokens, mockCompletionTokens, mockPromptTokens+mockCompletionTokens)
	}
	fmt.Fprint(w, "data: [DONE]\n\n")
	_ = rc.Flush()
}

// waitFor polls cond until it holds; for state another process writes.
// The deadline only turns a hang into a failure: it is far above what any
// condition needs on a slow machine (a loaded runner with -race), so it is
// never what decides whether a test passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// serveResponses answers the OpenAI Responses API.
func (m *mockUpstream) serveResponses(w http.ResponseWriter, model string, stream bool) {
	usage := fmt.Sprintf(`{"input_tokens":%d,"output_tokens":%d,"total_tokens":%d}`, mockResponsesInput, mockResponsesOutput, mockResponsesInput+mockResponsesOutput)
	object := fmt.Sprintf(`{"id":"resp_1","object":"response","created_at":1700000000,"status":"completed","model":%q,"output":[{"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Hello world","annotations":[]}]}],"usage":%s}`, model, usage)
	if !stream {
		writeMockJSON(w, object)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	event := sseEvents(w)
	event("response.created", `{"type":"response.created","sequence_number":0,"response":{"id":"resp_1","object":"response","status":"in_progress","model":"`+model+`","output":[]}}`)
	event("response.output_text.delta", `{"type":"response.output_text.delta","sequence_number":1,"item_id":"msg_1","output_index":0,"content_index":0,"delta":"Hello"}`)
	event("response.output_text.delta", `{"type":"response.output_text.delta","sequence_number":2,"item_id":"msg_1","output_index":0,"content_index":0,"delta":" world"}`)
	event("response.completed", `{"type":"response.completed","sequence_number":3,"response":`+object+`}`)
}

// anthropicAuthorized reports whether r carries the provider key in
// x-api-key and an anthropic-version header; if not, it answers 401 in
// Anthropic's error shape.
func anthropicAuthorized(w http.ResponseWriter, r *http.Request) bool {
	if r.Header.Get("X-Api-Key") == providerKey && r.Header.Get("Anthropic-Version") != "" {
		return true
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusUnauthorized)
	io.WriteString(w, `{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}`)
	return false
}

// serveMessages answers the Anthropic Messages API. It requires the
// provider key in x-api-key and an anthropic-version header.
func (m *mockUpstream) serveMessages(w http.ResponseWriter, r *http.Request, model string, stream bool) {
	if !anthropicAuthorized(w, r) {
		return
	}
	usage := fmt.Sprintf(`{"input_tokens":%d,"cache_creation_input_tokens":0,"cache_read_input_tokens":%d,"output_tokens":%d}`, mockClaudeInput, mockClaudeCacheRead, mockClaudeOutput)
	if !stream {
		writeMockJSON(w, fmt.Sprintf(`{"id":"msg_1","type":"message","role":"assistant","model":%q,"content":[{"type":"text","text":"Hello from Claude"}],"stop_reason":"end_turn","stop_sequence":null,"usage":%s}`, model, usage))
		return
	}
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	event := sseEvents(w)
	event("message_start", fmt.Sprintf(`{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":%q,"content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":%d,"cache_creation_input_tokens":0,"cache_read_input_tokens":%d,"output_tokens":1}}}`, model, mockClaudeInput, mockClaudeCacheRead))
	event("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`)
	event("ping", `{"type":"ping"}`)
	event("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}`)
	event("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" from Claude"}}`)
	event("content_block_stop", `{"type":"content_block_stop","index":0}`)
	event("message_delta", fmt.Sprintf(`{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":%d}}`, mockClaudeOutput))
	event("message_stop", `{"type":"message_stop"}`)
}

// serveLegacyCompletions answers the legacy (text) Completions API, with
// usage in the chat shape; a stream carries it only when asked.
func (m *mockUpstream) serveLegacyCompletions(w http.ResponseWriter, model string, stream, includeUsage bool) {
	usage := fmt.Sprintf(`{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}`, mockPromptTokens, mockCompletionTokens, mockPromptTokens+mockCompletionTokens)
	if !stream {
		writeMockJSON(w, fmt.Sprintf(`{"id":"cmpl-1","object":"text_completion","created":1700000000,"model":%q,"choices":[{"text":"Hello world","index":0,"logprobs":null,"finish_reason":"stop"}],"usage":%s}`, model, usage))
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	rc := http.NewResponseController(w)
	for _, text := range []string{"Hello", " world"} {
		fmt.Fprintf(w, "data: {\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"created\":1700000000,\"model\":%q,\"choices\":[{\"text\":%q,\"index\":0,\"logprobs\":null,\"finish_reason\":null}]}\n\n", model, text)
		_ = rc.Flush()
	}
	if includeUsage {
		fmt.Fprintf(w, "data: {\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"created\":1700000000,\"model\":%q,\"choices\":[],\"usage\":%s}\n\n", model, usage)
	}
	fmt.Fprint(w, "data: [DONE]\n\n")
	_ = rc.Flush()
}
