package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// agentMock is a provider that plays the model for an agent such as Claude
// Code, in both formats: OpenAI chat completions and Anthropic Messages
// (with count_tokens), streamed or not. A prompt containing "CALL_TOOL"
// gets a call of the configured tool; once the tool's result comes back it
// answers with text quoting that result. Anything else gets "PONG".
// Usage is reported with the same numbers as mockUpstream.
type agentMock struct {
	mockServer
	requestLog
	tool      string          // the tool the model calls
	toolInput json.RawMessage // and its input
}

func newAgentMock(t *testing.T, tool string, input any) *agentMock {
	t.Helper()
	raw, err := json.Marshal(input)
	if err != nil {
		t.Fatal(err)
	}
	m := &agentMock{tool: tool, toolInput: raw}
	m.mockServer = startMockServer(t, m.serve, nil)
	return m
}

// agentTurn is what the model does next.
type agentTurn struct {
	text     string // the answer, when no tool is called
	callTool bool
}

func (m *agentMock) serve(w http.ResponseWriter, r *http.Request) {
	root := gjson.ParseBytes(m.record(r))
	switch {
	case r.Method != http.MethodPost:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	case r.URL.Path == "/v1/messages/count_tokens":
		writeMockJSON(w, fmt.Sprintf(`{"input_tokens":%d}`, mockCountTokens))
	case r.URL.Path == "/v1/messages":
		if r.Header.Get("X-Api-Key") != providerKey {
			http.Error(w, `{"type":"error","error":{"type":"authentication_error","message":"bad key"}}`, http.StatusUnauthorized)
			return
		}
		m.anthropicAnswer(w, root, m.anthropicTurn(root))
	case r.URL.Path == "/v1/chat/completions":
		if r.Header.Get("Authorization") != "Bearer "+providerKey {
			http.Error(w, `{"error":{"message":"bad key"}}`, http.StatusUnauthorized)
			return
		}
		m.chatAnswer(w, root, m.chatTurn(root))
	default:
		http.NotFound(w, r)
	}
}

// anthropicTurn decides from an Anthropic conversation: a tool result in
// the last user turn is quoted, a CALL_TOOL prompt calls the tool.
func (m *agentMock) anthropicTurn(root gjson.Result) agentTurn {
	msgs := root.Get("messages").Array()
	// The last user turn: for a model it does not know, Claude Code puts a
	// role "system" message after the prompt.
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Get("role").String() != "user" {
			continue
		}
		var result string
		msgs[i].Get("content").ForEach(func(_, b gjson.Result) bool {
			if b.Get("type").String() == "tool_result" {
				result = toolResultText(b.Get("content"))
			}
			return true
		})
		if result != "" {
			return agentTurn{text: "The tool said: " + result}
		}
		if strings.Contains(msgs[i].Get("content").Raw, "CALL_TOOL") {
			return agentTurn{callTool: true}
		}
		break
	}
	return agentTurn{text: "PONG"}
}

func toolResultText(content gjson.Result) string {
	if content.Type == gjson.String {
		return content.Str
	}
	var parts []string
	content.ForEach(func(_, b gjson.Result) bool {
		parts = append(parts, b.Get("text").String())
		return true
	})
	return strings.Join(parts, "\n")
}

// chatTurn decides from a chat conversation in the same way.
func (m *agentMock) chatTurn(root gjson.Result) agentTurn {
	msgs := root.Get("messages").Array()
	// The last non-system message: Claude Code's system reminders come after
	// the user's prompt.
	for i := len(msgs) - 1; i >= 0; i-- {
		switch msgs[i].Get("role").String() {
		case "system":
			continue
		case "tool":
			return agentTurn{text: "The tool said: " + toolResultText(msgs[i].Get("content"))}
		default:
			if strings.Contains(msgs[i].Get("content").Raw, "CALL_TOOL") {
				return agentTurn{callTool: true}
			}
			return agentTurn{text: "PONG"}
		}
	}
	return agentTurn{text: "PONG"}
}

func (m *agentMock) anthropicAnswer(w http.ResponseWriter, root gjson.Result, turn agentTurn) {
	model := root.Get("model").String()
	stop := "end_turn"
	block := map[string]any{"type": "text", "text": turn.text}
	if turn.callTool {
		stop = "tool_use"
		block = map[string]any{"type": "tool_use", "id": "toolu_gw1", "name": m.tool, "input": m.toolInput}
	}
	usage := map[string]int{"input_tokens": mockClaudeInput, "cache_creation_input_tokens": 0, "cache_read_input_tokens": mockClaudeCacheRead, "output_tokens": mockClaudeOutput}
	if !root.Get("stream").Bool() {
		b, _ := json.Marshal(map[string]any{"id": "msg_gw1", "type": "message", "role": "assistant", "model": model,
			"content": []any{block}, "stop_reason": stop, "stop_sequence": nil, "usage": usage})
		writeMockJSON(w, string(b))
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	send := sseEvents(w)
	event := func(name string, v any) {
		b, _ := json.Marshal(v)
		send(name, string(b))
	}
	startUsage := map[string]int{"input_tokens": mockClaudeInput, "cache_creation_input_tokens": 0, "cache_read_input_tokens": mockClaudeCacheRead, "output_tokens": 1}
	event("message_start", map[string]any{"type": "message_start", "message": map[string]any{"id": "msg_gw1", "type": "message", "role": "assistant",
		"model": model, "content": []any{}, "stop_reason": nil, "stop_sequence": nil, "usage": startUsage}})
	if turn.callTool {
		event("content_block_start", map[string]any{"type": "content_block_start", "index": 0,
			"content_block": map[string]any{"type": "tool_use", "id": "toolu_gw1", "name": m.tool, "input": map[string]any{}}})
		event("content_block_delta", map[string]any{"type": "content_block_delta", "index": 0,
			"delta": map[string]any{"type": "input_json_delta", "partial_json": string(m.toolInput)}})
	} else {
		event("content_block_start", map[string]any{"type": "content_block_start", "index": 0, "content_block": map[string]any{"type": "text", "text": ""}})
		event("content_block_delta", map[string]any{"type": "content_block_delta", "index": 0, "delta": map[string]any{"type": "text_delta", "text": turn.text}})
	}
	event("content_block_stop", map[string]any{"type": "content_block_stop", "index": 0})
	event("message_delta", map[string]any{"type": "message_delta", "delta": map[string]any{"stop_reason": stop, "stop_sequence": nil},
		"usage": map[string]int{"output_tokens": mockClaudeOutput}})
	event("message_stop", map[string]any{"type": "message_stop"})
}

func (m *agentMock) chatAnswer(w http.ResponseWriter, root gjson.Result, turn agentTurn) {
	model := root.Get("model").String()
	usage := map[string]int{"prompt_tokens": mockPromptTokens, "completion_tokens": mockCompletionTokens, "total_tokens": mockPromptTokens + mockCompletionTokens}
	call := map[string]any{"id": "call_gw1", "type": "function", "function": map[string]any{"name": m.tool, "arguments": string(m.toolInput)}}
	finish := "stop"
	if turn.callTool {
		finish = "tool_calls"
	}
	if !root.Get("stream").Bool() {
		msg := map[string]any{"role": "assistant", "content": turn.text}
		if turn.callTool {
			msg = map[string]any{"role": "assistant", "content": nil, "tool_calls": []any{call}}
		}
		b, _ := json.Marshal(map[string]any{"id": "chatcmpl-gw1", "object": "chat.completion", "created": 1700000000, "model": model,
			"choices": []any{map[string]any{"index": 0, "message": msg, "finish_reason": finish}}, "usage": usage})
		writeMockJSON(w, string(b))
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	rc := http.NewResponseController(w)
	chunk := func(choices []any, usage any) {
		c := map[string]any{"id": "chatcmpl-gw1", "object": "chat.completion.chunk", "created": 1700000000, "model": model, "choices": choices}
		if usage != nil {
			c["usage"] = usage
		}
		b, _ := json.Marshal(c)
		fmt.Fprintf(w, "data: %s\n\n", b)
		_ = rc.Flush()
	}
	if turn.callTool {
		first := map[string]any{"index": 0, "id": "call_gw1", "type": "function", "function": map[string]any{"name": m.tool, "arguments": ""}}
		chunk([]any{map[string]any{"index": 0, "delta": map[string]any{"role": "assistant", "content": nil, "tool_calls": []any{first}}, "finish_reason": nil}}, nil)
		args := map[string]any{"index": 0, "function": map[string]any{"arguments": string(m.toolInput)}}
		chunk([]any{map[string]any{"index": 0, "delta": map[string]any{"tool_calls": []any{args}}, "finish_reason": nil}}, nil)
	} else {
		chunk([]any{map[string]any{"index": 0, "delta": map[string]any{"role": "assistant", "content": turn.text}, "finish_reason": nil}}, nil)
	}
	chunk([]any{map[string]any{"index": 0, "delta": map[string]any{}, "finish_reason": finish}}, nil)
	if root.Get("stream_options.include_usage").Bool() {
		chunk([]any{}, usage)
	}
	fmt.Fprint(w, "data: [DONE]\n\n")
	_ = rc.Flush()
}
