package translate

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// Fixtures under testdata/anthropic are written from the public Anthropic
// Messages and OpenAI Chat Completions references: X.in.* is what a client
// or provider sends, X.want.* what the translation must produce.

const fixtureCreated = 1700000000

func readAnthropicFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "anthropic", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// assertTranslatedJSON compares two JSON documents ignoring key order and spacing.
func assertTranslatedJSON(t *testing.T, what string, got, want []byte) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: output is not JSON: %v\n%s", what, err, got)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("%s: expectation is not JSON: %v\n%s", what, err, want)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s:\n got %s\nwant %s", what, compactTranslated(got), compactTranslated(want))
	}
}

func compactTranslated(b []byte) string {
	var buf bytes.Buffer
	if json.Compact(&buf, b) != nil {
		return string(b)
	}
	return buf.String()
}

// assertTranslatedPaths checks selected paths of a JSON document; "" means absent.
func assertTranslatedPaths(t *testing.T, out []byte, want map[string]string) {
	t.Helper()
	for path, w := range want {
		got := gjson.GetBytes(out, path)
		if w == "" {
			if got.Exists() {
				t.Errorf("%s: want absent, got %s", path, got.Raw)
			}
			continue
		}
		if !got.Exists() {
			t.Errorf("%s: absent, want %s\nin %s", path, w, out)
			continue
		}
		assertTranslatedJSON(t, path, []byte(got.Raw), []byte(w))
	}
}

func TestAnthropicRequestFromChatFixture(t *testing.T) {
	t.Parallel()
	out, err := anthropicRequestFromChat(readAnthropicFixture(t, "chat_request.in.json"), "claude-sonnet-4-5-20250929", 4096)
	if err != nil {
		t.Fatal(err)
	}
	assertTranslatedJSON(t, "anthropic request", out, readAnthropicFixture(t, "chat_request.want.json"))
}

func TestAnthropicRequestFromChatCases(t *testing.T) {
	t.Parallel()
	const hi = `{"role":"user","content":"hi"}`
	tool := `"tools":[{"type":"function","function":{"name":"f"}}]`
	cases := []struct {
		name       string
		body       string
		defaultMax int64
		want       map[string]string
		wantErr    string
	}{
		{name: "single system string stays a string", body: `{"messages":[{"role":"system","content":"Be nice."},` + hi + `]}`,
			want: map[string]string{"system": `"Be nice."`, "messages": `[{"role":"user","content":[{"type":"text","text":"hi"}]}]`, "max_tokens": `4096`}},
		{name: "cache_control on a system part keeps blocks", body: `{"messages":[{"role":"system","content":[{"type":"text","text":"S","cache_control":{"type":"ephemeral"}}]},` + hi + `]}`,
			want: map[string]string{"system": `[{"type":"text","text":"S","cache_control":{"type":"ephemeral"}}]`}},
		{name: "max_tokens alone", body: `{"max_tokens":77,"messages":[` + hi + `]}`, want: map[string]string{"max_tokens": `77`}},
		{name: "stop string", body: `{"stop":"END","messages":[` + hi + `]}`, want: map[string]string{"stop_sequences": `["END"]`}},
		{name: "null options are unset", body: `{"stop":null,"temperature":null,"user":null,"tool_choice":null,"messages":[` + hi + `]}`,
			want: map[string]string{"stop_sequences": "", "temperature": "", "metadata": "", "tool_choice": "", "stream": ""}},
		{name: "tool_choice auto", body: `{"tool_choice":"auto",` + tool + `,"messages":[` + hi + `]}`,
			want: map[string]string{"tool_choice": `{"type":"auto"}`, "tools": `[{"name":"f","input_schema":{"type":"object","properties":{}}}]`}},
		{name: "tool_choice none ignores parallel", body: `{"tool_choice":"none","parallel_tool_calls":false,` + tool + `,"messages":[` + hi + `]}`,
			want: map[string]string{"tool_choice": `{"type":"none"}`}},
		{name: "tool_choice function", body: `{"tool_choice":{"type":"function","function":{"name":"f"}},` + tool + `,"messages":[` + hi + `]}`,
			want: map[string]string{"tool_choice": `{"type":"tool","name":"f"}`}},
		{name: "parallel false alone", body: `{"parallel_tool_calls":false,` + tool + `,"messages":[` + hi + `]}`,
			want: map[string]string{"tool_choice": `{"type":"auto","disable_parallel_tool_use":true}`}},
		{name: "tool_choice without tools is dropped", body: `{"tool_choice":"required","messages":[` + hi + `]}`,
			want: map[string]string{"tool_choice": "", "tools": ""}},
		{name: "assistant turns merge and empty ones vanish",
			body: `{"messages":[` + hi + `,{"role":"assistant","content":"a"},{"role":"assistant","content":""},{"role":"assistant","content":[{"type":"refusal","refusal":"no"}]}]}`,
			want: map[string]string{"messages.#": `2`, "messages.1": `{"role":"assistant","content":[{"type":"text","text":"a"},{"type":"text","text":"no"}]}`}},
		{name: "tool results move before user text",
			body: `{"messages":[` + hi + `,{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"user","content":"wait"},{"role":"tool","tool_call_id":"c1","content":""}]}`,
			want: map[string]string{"messages.2.content": `[{"type":"tool_result","tool_use_id":"c1"},{"type":"text","text":"wait"}]`}},
		{name: "file part becomes a document",
			body: `{"messages":[{"role":"user","content":[{"type":"file","file":{"filename":"a.pdf","file_data":"data:application/pdf;base64,JVBERi0="}}]}]}`,
			want: map[string]string{"messages.0.content": `[{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBERi0="}}]`}},
		{name: "image in a tool result",
			body: `{"messages":[` + hi + `,{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c1","content":[{"type":"image_url","image_url":{"url":"https://x.test/a.png"}}]}]}`,
			want: map[string]string{"messages.2.content.0.content": `[{"type":"image","source":{"type":"url","url":"https://x.test/a.png"}}]`}},
		{name: "invalid arguments", body: `{"messages":[` + hi + `,{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{oops"}}]}]}`, wantErr: "messages[1]: tool_calls[0]: arguments: invalid JSON"},
		{name: "arguments not an object", body: `{"messages":[` + hi + `,{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"[1]"}}]}]}`, wantErr: "must be a JSON object"},
		{name: "no max tokens anywhere", body: `{"messages":[` + hi + `]}`, defaultMax: -1, wantErr: "max_tokens is required"},
		{name: "bad max tokens", body: `{"max_tokens":0,"messages":[` + hi + `]}`, wantErr: "max_tokens must be a positive integer"},
		{name: "n above one", body: `{"n":2,"messages":[` + hi + `]}`, wantErr: "n=2"},
		{name: "audio part", body: `{"messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"x","format":"wav"}}]}]}`, wantErr: `messages[0]: content[0]: unsupported content part type "input_audio"`},
		{name: "image in system", body: `{"messages":[{"role":"system","content":[{"type":"image_url","image_url":{"url":"https://x.test/a.png"}}]},` + hi + `]}`, wantErr: "unsupported content part type"},
		{name: "data URL not base64", body: `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png,abc"}}]}]}`, wantErr: "data URL must be"},
		{name: "ftp URL", body: `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"ftp://x/a.png"}}]}]}`, wantErr: "data: or http(s)"},
		{name: "legacy function role", body: `{"messages":[{"role":"function","name":"f","content":"x"}]}`, wantErr: `unsupported role "function"`},
		{name: "tool without id", body: `{"messages":[{"role":"tool","content":"x"}]}`, wantErr: "without tool_call_id"},
		{name: "only system", body: `{"messages":[{"role":"system","content":"x"}]}`, wantErr: "no user or assistant message"},
		{name: "non-function tool", body: `{"tools":[{"type":"custom","custom":{"name":"x"}}],"messages":[` + hi + `]}`, wantErr: `unsupported tool type "custom"`},
		{name: "bad tool_choice", body: `{"tool_choice":"sometimes","messages":[` + hi + `]}`, wantErr: "tool_choice"},
		{name: "reasoning_effort maps to effort", body: `{"reasoning_effort":"medium","messages":[` + hi + `]}`, want: map[string]string{"output_config": `{"effort":"medium"}`}},
		{name: "reasoning_effort minimal is low", body: `{"reasoning_effort":"minimal","messages":[` + hi + `]}`, want: map[string]string{"output_config": `{"effort":"low"}`}},
		{name: "reasoning_effort xhigh is max", body: `{"reasoning_effort":"xhigh","messages":[` + hi + `]}`, want: map[string]string{"output_config": `{"effort":"max"}`}},
		{name: "reasoning_effort none dropped", body: `{"reasoning_effort":"none","messages":[` + hi + `]}`, want: map[string]string{"output_config": ""}},
		{name: "temperature as string", body: `{"temperature":"hot","messages":[` + hi + `]}`, wantErr: "temperature: must be a number"},
		{name: "not JSON", body: `{"messages":`, wantErr: "invalid JSON"},
		{name: "not an object", body: `[]`, wantErr: "must be a JSON object"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			defaultMax := tc.defaultMax
			if defaultMax == 0 {
				defaultMax = 4096
			}
			out, err := anthropicRequestFromChat([]byte(tc.body), "claude-test", defaultMax)
			checkTranslation(t, out, err, tc.wantErr, tc.want)
		})
	}
}

func checkTranslation(t *testing.T, out []byte, err error, wantErr string, want map[string]string) {
	t.Helper()
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("error = %v, want it to contain %q", err, wantErr)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	assertTranslatedPaths(t, out, want)
}

func TestChatRequestFromAnthropicFixture(t *testing.T) {
	t.Parallel()
	out, err := chatRequestFromAnthropic(readAnthropicFixture(t, "messages_request.in.json"), "gpt-4.1")
	if err != nil {
		t.Fatal(err)
	}
	assertTranslatedJSON(t, "chat request", out, readAnthropicFixture(t, "messages_request.want.json"))
}

// TestChatRequestFromClaudeCode translates a request as Claude Code sends it
// for a model it does not know (trimmed from a real one): a role "system"
// message inside messages, adaptive thinking, context management, effort,
// cache_control everywhere and a deferred tool.
func TestChatRequestFromClaudeCode(t *testing.T) {
	t.Parallel()
	out, err := chatRequestFromAnthropic(readAnthropicFixture(t, "claude_code_request.in.json"), "gpt-test")
	if err != nil {
		t.Fatal(err)
	}
	assertTranslatedJSON(t, "chat request", out, readAnthropicFixture(t, "claude_code_request.want.json"))
}

func TestUseMaxCompletionTokens(t *testing.T) {
	t.Parallel()
	out, err := useMaxCompletionTokens([]byte(`{"model":"m","max_tokens":32000,"messages":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	assertTranslatedPaths(t, out, map[string]string{"max_tokens": "", "max_completion_tokens": "32000", "model": `"m"`})
	if out, _ := useMaxCompletionTokens([]byte(`{"model":"m"}`)); string(out) != `{"model":"m"}` {
		t.Errorf("without max_tokens: %s", out)
	}
}

func TestChatRequestFromAnthropicCases(t *testing.T) {
	t.Parallel()
	const hi = `{"role":"user","content":"hi"}`
	tool := `"tools":[{"name":"f","input_schema":{"type":"object"}}]`
	cases := []struct {
		name    string
		body    string
		want    map[string]string
		wantErr string
	}{
		{name: "plain", body: `{"model":"claude","max_tokens":10,"system":"S","messages":[` + hi + `,{"role":"assistant","content":"yo"}]}`,
			want: map[string]string{"model": `"gpt-test"`, "max_tokens": `10`, "messages": `[{"role":"system","content":"S"},{"role":"user","content":"hi"},{"role":"assistant","content":"yo"}]`,
				"stream": "", "stream_options": "", "tools": "", "tool_choice": ""}},
		{name: "tool_choice any", body: `{"tool_choice":{"type":"any"},` + tool + `,"messages":[` + hi + `]}`,
			want: map[string]string{"tool_choice": `"required"`, "parallel_tool_calls": "", "tools": `[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]`}},
		{name: "tool_choice tool", body: `{"tool_choice":{"type":"tool","name":"f","disable_parallel_tool_use":true},` + tool + `,"messages":[` + hi + `]}`,
			want: map[string]string{"tool_choice": `{"type":"function","function":{"name":"f"}}`, "parallel_tool_calls": `false`}},
		{name: "tool_choice none", body: `{"tool_choice":{"type":"none"},` + tool + `,"messages":[` + hi + `]}`,
			want: map[string]string{"tool_choice": `"none"`}},
		{name: "tool_choice without tools is dropped", body: `{"tool_choice":{"type":"any"},"messages":[` + hi + `]}`,
			want: map[string]string{"tool_choice": ""}},
		{name: "stream false", body: `{"stream":false,"messages":[` + hi + `]}`, want: map[string]string{"stream": "", "stream_options": ""}},
		{name: "documents", body: `{"messages":[{"role":"user","content":[{"type":"document","title":"a.pdf","source":{"type":"base64","media_type":"application/pdf","data":"JVBERi0="}},{"type":"document","source":{"type":"text","media_type":"text/plain","data":"notes"}}]}]}`,
			want: map[string]string{"messages.0.content": `[{"type":"file","file":{"filename":"a.pdf","file_data":"data:application/pdf;base64,JVBERi0="}},{"type":"text","text":"notes"}]`}},
		{name: "empty text blocks vanish", body: `{"messages":[{"role":"user","content":[{"type":"text","text":""},{"type":"text","text":"x"}]}]}`,
			want: map[string]string{"messages": `[{"role":"user","content":"x"}]`}},
		{name: "server tool", body: `{"tools":[{"type":"web_search_20250305","name":"web_search"}],"messages":[` + hi + `]}`, wantErr: `server tool "web_search_20250305"`},
		{name: "unknown user block", body: `{"messages":[{"role":"user","content":[{"type":"search_result"}]}]}`, wantErr: `messages[0]: content[0]: unsupported block type "search_result"`},
		{name: "unknown assistant block", body: `{"messages":[{"role":"assistant","content":[{"type":"server_tool_use"}]}]}`, wantErr: `unsupported block type "server_tool_use"`},
		{name: "bad image source", body: `{"messages":[{"role":"user","content":[{"type":"image","source":{"type":"file","file_id":"f"}}]}]}`, wantErr: `image: unsupported source type "file"`},
		{name: "system role in messages stays in place", body: `{"messages":[` + hi + `,{"role":"system","content":[{"type":"text","text":"env","cache_control":{"type":"ephemeral"}}]},{"role":"system","content":"s2"}]}`,
			want: map[string]string{"messages": `[{"role":"user","content":"hi"},{"role":"system","content":"env"},{"role":"system","content":"s2"}]`}},
		{name: "empty system message vanishes", body: `{"messages":[{"role":"system","content":""},` + hi + `]}`,
			want: map[string]string{"messages": `[{"role":"user","content":"hi"}]`}},
		{name: "Claude Code's extras are dropped, effort maps",
			body: `{"thinking":{"type":"adaptive","display":"omitted"},"context_management":{"edits":[{"type":"clear_thinking_20251015","keep":"all"}]},"output_config":{"effort":"high"},"service_tier":"auto","top_k":5,` +
				`"tools":[{"name":"f","input_schema":{"type":"object"},"defer_loading":true,"cache_control":{"type":"ephemeral"}}],"messages":[` + hi + `]}`,
			want: map[string]string{"reasoning_effort": `"high"`, "thinking": "", "context_management": "", "output_config": "", "service_tier": "", "top_k": "",
				"tools": `[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]`}},
		{name: "effort max is high", body: `{"output_config":{"effort":"max"},"messages":[` + hi + `]}`, want: map[string]string{"reasoning_effort": `"high"`}},
		{name: "effort low", body: `{"output_config":{"effort":"low"},"messages":[` + hi + `]}`, want: map[string]string{"reasoning_effort": `"low"`}},
		{name: "unknown effort dropped", body: `{"output_config":{"effort":"ultra"},"messages":[` + hi + `]}`, want: map[string]string{"reasoning_effort": ""}},
		{name: "unknown tool_choice dropped", body: `{"tool_choice":{"type":"someday"},` + tool + `,"messages":[` + hi + `]}`, want: map[string]string{"tool_choice": ""}},
		{name: "system not text", body: `{"system":[{"type":"image"}],"messages":[` + hi + `]}`, wantErr: "system: unsupported block type"},
		{name: "messages missing", body: `{}`, wantErr: "messages must be an array"},
		{name: "not JSON", body: `nope`, wantErr: "invalid JSON"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, err := chatRequestFromAnthropic([]byte(tc.body), "gpt-test")
			checkTranslation(t, out, err, tc.wantErr, tc.want)
		})
	}
}

func TestChatResponseFromAnthropic(t *testing.T) {
	t.Parallel()
	out, usage, err := chatResponseFromAnthropic(readAnthropicFixture(t, "messages_response.in.json"), "anthropic:claude-sonnet-4-5", fixtureCreated)
	if err != nil {
		t.Fatal(err)
	}
	assertTranslatedJSON(t, "chat response", out, readAnthropicFixture(t, "messages_response.want.json"))
	if want := (Usage{Prompt: 2620, Completion: 89, CachedPrompt: 2048, Seen: true}); usage != want {
		t.Errorf("usage = %+v, want %+v", usage, want)
	}
}

func TestChatResponseFromAnthropicStopReasons(t *testing.T) {
	t.Parallel()
	cases := []struct{ stopReason, finish string }{
		{"end_turn", "stop"},
		{"stop_sequence", "stop"},
		{"pause_turn", "stop"},
		{"max_tokens", "length"},
		{"tool_use", "tool_calls"},
		{"refusal", "content_filter"},
	}
	for _, tc := range cases {
		t.Run(tc.stopReason, func(t *testing.T) {
			t.Parallel()
			body := `{"id":"msg_1","type":"message","role":"assistant","content":[{"type":"text","text":"ok"}],"stop_reason":"` + tc.stopReason + `","usage":{"input_tokens":3,"output_tokens":2}}`
			out, usage, err := chatResponseFromAnthropic([]byte(body), "m", 1)
			if err != nil {
				t.Fatal(err)
			}
			assertTranslatedPaths(t, out, map[string]string{
				"choices.0.finish_reason":   `"` + tc.finish + `"`,
				"choices.0.message.content": `"ok"`,
				"usage":                     `{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5,"prompt_tokens_details":{"cached_tokens":0}}`,
			})
			if usage != (Usage{Prompt: 3, Completion: 2, Seen: true}) {
				t.Errorf("usage = %+v", usage)
			}
		})
	}
}

func TestChatResponseFromAnthropicEdges(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, body string
		want       map[string]string
		wantErr    string
	}{
		{name: "tool calls only have null content", body: `{"id":"msg_1","type":"message","content":[{"type":"tool_use","id":"t","name":"f","input":{}}],"stop_reason":"tool_use"}`,
			want: map[string]string{"choices.0.message.content": `null`, "choices.0.message.tool_calls.0.function.arguments": `"{}"`, "usage": ""}},
		{name: "empty content", body: `{"id":"msg_1","type":"message","content":[],"stop_reason":"end_turn"}`,
			want: map[string]string{"choices.0.message.content": `""`, "choices.0.message.tool_calls": ""}},
		{name: "error body", body: `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`, wantErr: "overloaded_error: Overloaded"},
		{name: "other type", body: `{"type":"message_batch"}`, wantErr: `unexpected type "message_batch"`},
		{name: "not JSON", body: `{`, wantErr: "invalid JSON"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, _, err := chatResponseFromAnthropic([]byte(tc.body), "m", 1)
			checkTranslation(t, out, err, tc.wantErr, tc.want)
		})
	}
}

func TestAnthropicResponseFromChat(t *testing.T) {
	t.Parallel()
	out, usage, err := anthropicResponseFromChat(readAnthropicFixture(t, "chat_response.in.json"), "openai:gpt-4o")
	if err != nil {
		t.Fatal(err)
	}
	assertTranslatedJSON(t, "anthropic response", out, readAnthropicFixture(t, "chat_response.want.json"))
	if want := (Usage{Prompt: 1117, Completion: 46, CachedPrompt: 1024, Seen: true}); usage != want {
		t.Errorf("usage = %+v, want %+v", usage, want)
	}
}

func TestAnthropicResponseFromChatCases(t *testing.T) {
	t.Parallel()
	choice := func(msg, finish string) string {
		return `{"id":"chatcmpl-x","object":"chat.completion","choices":[{"index":0,"message":` + msg + `,"finish_reason":` + finish + `}],"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}`
	}
	text := `{"role":"assistant","content":"hi"}`
	cases := []struct {
		name, body string
		want       map[string]string
		wantErr    string
	}{
		{name: "stop", body: choice(text, `"stop"`), want: map[string]string{"stop_reason": `"end_turn"`, "id": `"msg_x"`, "content": `[{"type":"text","text":"hi"}]`,
			"usage": `{"input_tokens":5,"output_tokens":1,"cache_creation_input_tokens":0,"cache_read_input_tokens":0}`, "stop_sequence": `null`}},
		{name: "length", body: choice(text, `"length"`), want: map[string]string{"stop_reason": `"max_tokens"`}},
		{name: "tool_calls", body: choice(text, `"tool_calls"`), want: map[string]string{"stop_reason": `"tool_use"`}},
		{name: "content_filter", body: choice(text, `"content_filter"`), want: map[string]string{"stop_reason": `"refusal"`}},
		{name: "null finish", body: choice(text, `null`), want: map[string]string{"stop_reason": `"end_turn"`}},
		{name: "refusal text", body: choice(`{"role":"assistant","content":null,"refusal":"I can't."}`, `"stop"`), want: map[string]string{"content": `[{"type":"text","text":"I can't."}]`}},
		{name: "content parts", body: choice(`{"role":"assistant","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}`, `"stop"`), want: map[string]string{"content.0.text": `"a\nb"`}},
		{name: "empty arguments", body: choice(`{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":""}}]}`, `"tool_calls"`),
			want: map[string]string{"content": `[{"type":"tool_use","id":"c","name":"f","input":{}}]`}},
		{name: "bad arguments", body: choice(`{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{\"a\":"}}]}`, `"tool_calls"`), wantErr: "tool_calls[0]: arguments: invalid JSON"},
		{name: "no choices", body: `{"id":"x","choices":[]}`, wantErr: "no choices"},
		{name: "error object", body: `{"error":{"message":"boom","type":"server_error"}}`, wantErr: "boom"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, _, err := anthropicResponseFromChat([]byte(tc.body), "openai:gpt-4o")
			checkTranslation(t, out, err, tc.wantErr, tc.want)
		})
	}
}

func TestAnthropicErrorType(t *testing.T) {
	t.Parallel()
	cases := map[int]string{
		400: "invalid_request_error", 401: "authentication_error", 402: "billing_error", 403: "permission_error",
		404: "not_found_error", 413: "request_too_large", 422: "invalid_request_error", 429: "rate_limit_error",
		500: "api_error", 502: "api_error", 503: "api_error", 504: "api_error", 529: "overloaded_error",
	}
	for status, kind := range cases {
		if got := anthropicErrorType(status); got != kind {
			t.Errorf("status %d: type %q, want %q", status, got, kind)
		}
	}
}

// fixtureEvent is one parsed server-sent event.
type fixtureEvent struct {
	name string
	data []byte
}

// parseFixtureSSE splits an SSE stream into events, joining multi-line data
// as the SSE specification says; comment lines are skipped.
func parseFixtureSSE(stream []byte) []fixtureEvent {
	var events []fixtureEvent
	var cur fixtureEvent
	var lines [][]byte
	flush := func() {
		if cur.name != "" || lines != nil {
			cur.data = bytes.Join(lines, []byte("\n"))
			events = append(events, cur)
		}
		cur, lines = fixtureEvent{}, nil
	}
	for _, line := range bytes.Split(bytes.ReplaceAll(stream, []byte("\r\n"), []byte("\n")), []byte("\n")) {
		switch {
		case len(line) == 0:
			flush()
		case bytes.HasPrefix(line, []byte("event:")):
			cur.name = string(bytes.TrimSpace(line[len("event:"):]))
		case bytes.HasPrefix(line, []byte("data:")):
			v := line[len("data:"):]
			lines = append(lines, bytes.TrimPrefix(v, []byte(" ")))
		}
	}
	flush()
	return events
}

func assertTranslatedEvents(t *testing.T, got, want []byte) {
	t.Helper()
	if len(got) > 0 && !bytes.HasSuffix(got, []byte("\n\n")) {
		t.Errorf("output does not end with a blank line: %q", got)
	}
	g, w := parseFixtureSSE(got), parseFixtureSSE(want)
	for i := range max(len(g), len(w)) {
		if i >= len(g) {
			t.Errorf("event %d missing: want %s %s", i, w[i].name, w[i].data)
			continue
		}
		if i >= len(w) {
			t.Errorf("event %d unexpected: %s %s", i, g[i].name, g[i].data)
			continue
		}
		if g[i].name != w[i].name {
			t.Errorf("event %d name = %q, want %q", i, g[i].name, w[i].name)
		}
		if json.Valid(w[i].data) {
			assertTranslatedJSON(t, "event "+strconv.Itoa(i)+" ("+w[i].name+")", g[i].data, w[i].data)
		} else if !bytes.Equal(g[i].data, w[i].data) {
			t.Errorf("event %d data = %q, want %q", i, g[i].data, w[i].data)
		}
	}
}

// fixturePromptEstimate is the gateway's prompt estimate the chat stream
// fixtures state in message_start.
const fixturePromptEstimate = 42

func TestAnthropicStreamFixtures(t *testing.T) {
	t.Parallel()
	toChat := func(includeUsage bool) func() streamTranslator {
		return func() streamTranslator {
			return newChatFromAnthropicStream("anthropic:claude-sonnet-4-5", fixtureCreated, includeUsage)
		}
	}
	toAnthropic := func() streamTranslator { return newAnthropicFromChatStream("openai:gpt-4o", fixturePromptEstimate) }
	cases := []struct {
		fixture   string
		newTr     func() streamTranslator
		wantUsage Usage
		wantBytes int
		wantErr   string
	}{
		{fixture: "anthropic_text", newTr: toChat(true),
			wantUsage: Usage{Prompt: 25, Completion: 15, Seen: true}, wantBytes: len("Hello! How can I help?")},
		{fixture: "anthropic_tool_use", newTr: toChat(false),
			wantUsage: Usage{Prompt: 472, Completion: 89, Seen: true},
			wantBytes: len("Okay, let me check.") + len("get_weather") + len(`{"location":`) + len(` "San Francisco, CA"}`) + len("get_time") + len("{}")},
		{fixture: "anthropic_cache", newTr: toChat(true),
			wantUsage: Usage{Prompt: 3212, Completion: 40, CachedPrompt: 3000, Seen: true}, wantBytes: len("Short answer.") + len("Yes.")},
		{fixture: "anthropic_error", newTr: toChat(true),
			wantUsage: Usage{Prompt: 30, Completion: 1, Seen: true}, wantBytes: len("Partial"), wantErr: "overloaded_error: Overloaded"},
		{fixture: "chat_text", newTr: toAnthropic, wantBytes: len("Hello there")},
		{fixture: "chat_tool_calls", newTr: toAnthropic,
			wantUsage: Usage{Prompt: 82, Completion: 18, Seen: true},
			wantBytes: len("Let me look.") + len("get_weather") + len(`{"location"`) + len(`:"Paris"}`) + len("get_time") + len("{}")},
		{fixture: "chat_cache", newTr: toAnthropic,
			wantUsage: Usage{Prompt: 2100, Completion: 5, CachedPrompt: 2048, Seen: true}, wantBytes: len("Quick.") + len("Cached answer.")},
		{fixture: "chat_error", newTr: toAnthropic, wantBytes: len("Partial"), wantErr: "server_error: The server had an error"},
	}
	for _, tc := range cases {
		t.Run(tc.fixture, func(t *testing.T) {
			t.Parallel()
			tr := tc.newTr()
			var out []byte
			var err error
			for _, ev := range parseFixtureSSE(readAnthropicFixture(t, tc.fixture+".in.sse")) {
				if out, err = tr.event(ev.name, ev.data, out); err != nil {
					break
				}
			}
			switch {
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tc.wantErr)
				}
			case err != nil:
				t.Fatal(err)
			default:
				out = tr.finish(out)
				if again := tr.finish(out); !bytes.Equal(again, out) {
					t.Errorf("second finish appended %q", again[len(out):])
				}
			}
			assertTranslatedEvents(t, out, readAnthropicFixture(t, tc.fixture+".want.sse"))
			if got := tr.usage(); got != tc.wantUsage {
				t.Errorf("usage = %+v, want %+v", got, tc.wantUsage)
			}
			if got := tr.contentBytes(); got != tc.wantBytes {
				t.Errorf("contentBytes = %d, want %d", got, tc.wantBytes)
			}
		})
	}
}

func TestChatFromAnthropicStreamEdges(t *testing.T) {
	t.Parallel()
	t.Run("empty upstream still closes", func(t *testing.T) {
		t.Parallel()
		tr := newChatFromAnthropicStream("m", 1, true)
		out := tr.finish(nil)
		assertTranslatedEvents(t, out, []byte(`data: {"id":"chatcmpl-","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant"},"finish_reason":"stop"}]}`+"\n\ndata: [DONE]\n\n"))
		if tr.usage().Seen {
			t.Error("usage seen without any event")
		}
	})
	t.Run("type from event name", func(t *testing.T) {
		t.Parallel()
		tr := newChatFromAnthropicStream("m", 1, false)
		out, err := tr.event("content_block_delta", []byte(`{"index":0,"delta":{"type":"text_delta","text":"x"}}`), nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := gjson.GetBytes(parseFixtureSSE(out)[0].data, "choices.0.delta.content").String(); got != "x" {
			t.Errorf("content = %q in %s", got, out)
		}
	})
	t.Run("invalid JSON", func(t *testing.T) {
		t.Parallel()
		tr := newChatFromAnthropicStream("m", 1, false)
		if _, err := tr.event("message_start", []byte(`{"type":`), nil); err == nil || !strings.Contains(err.Error(), "message_start event: invalid JSON") {
			t.Errorf("error = %v", err)
		}
	})
	t.Run("message_delta input replaces start", func(t *testing.T) {
		t.Parallel()
		tr := newChatFromAnthropicStream("m", 1, false)
		for _, d := range []string{
			`{"type":"message_start","message":{"id":"a","usage":{"input_tokens":10,"cache_read_input_tokens":5,"output_tokens":1}}}`,
			`{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"input_tokens":11,"output_tokens":7}}`,
		} {
			if _, err := tr.event("", []byte(d), nil); err != nil {
				t.Fatal(err)
			}
		}
		if got, want := tr.usage(), (Usage{Prompt: 16, Completion: 7, CachedPrompt: 5, Seen: true}); got != want {
			t.Errorf("usage = %+v, want %+v", got, want)
		}
	})
}

func TestAnthropicFromChatStreamEdges(t *testing.T) {
	t.Parallel()
	t.Run("empty upstream still closes", func(t *testing.T) {
		t.Parallel()
		tr := newAnthropicFromChatStream("m", 0)
		out := tr.finish(nil)
		var names []string
		for _, ev := range parseFixtureSSE(out) {
			names = append(names, ev.name)
		}
		if got := strings.Join(names, ","); got != "message_start,message_delta,message_stop" {
			t.Errorf("events = %s", got)
		}
	})
	t.Run("events after DONE are ignored", func(t *testing.T) {
		t.Parallel()
		tr := newAnthropicFromChatStream("m", 0)
		out, _ := tr.event("", []byte("[DONE]"), nil)
		n := len(out)
		out, err := tr.event("", []byte(`{"id":"x","choices":[{"index":0,"delta":{"content":"late"}}]}`), out)
		if err != nil || len(out) != n {
			t.Errorf("late chunk: err %v, appended %q", err, out[n:])
		}
	})
	t.Run("second choice ignored, tool index defaults to position", func(t *testing.T) {
		t.Parallel()
		tr := newAnthropicFromChatStream("m", 0)
		out, err := tr.event("", []byte(`{"id":"x","choices":[{"index":1,"delta":{"content":"other"}},{"index":0,"delta":{"tool_calls":[{"id":"c","function":{"name":"f","arguments":"{}"}}]}}]}`), nil)
		if err != nil {
			t.Fatal(err)
		}
		evs := parseFixtureSSE(out)
		if len(evs) != 3 || gjson.GetBytes(evs[1].data, "content_block.name").String() != "f" || gjson.GetBytes(evs[2].data, "delta.partial_json").String() != "{}" {
			t.Errorf("events = %s", out)
		}
	})
}

// FuzzAnthropicStream feeds arbitrary events to both translators: they may
// fail, but must not panic, and what they write must be well-formed SSE
// with JSON payloads.
func FuzzAnthropicStream(f *testing.F) {
	for _, name := range []string{"anthropic_text", "anthropic_tool_use", "anthropic_cache", "anthropic_error", "chat_text", "chat_tool_calls", "chat_cache", "chat_error"} {
		stream := readAnthropicFixture(f, name+".in.sse")
		f.Add("", stream)
		for _, ev := range parseFixtureSSE(stream) {
			f.Add(ev.name, ev.data)
		}
	}
	f.Add("error", []byte(`{"type":"error"}`))
	f.Add("", []byte(`{"choices":[{"delta":{"tool_calls":[{"index":-1,"function":{"arguments":"x"}}]}}]}`))
	f.Add("content_block_delta", []byte(`{"index":9,"delta":{"type":"input_json_delta","partial_json":"{"}}`))
	f.Add("", []byte("\xff\xfe"))
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		translators := []streamTranslator{
			newChatFromAnthropicStream("m", 1, true),
			newAnthropicFromChatStream("m", 0),
		}
		for _, tr := range translators {
			out, _ := tr.event(name, data, nil)
			for _, ev := range parseFixtureSSE(data) {
				var err error
				if out, err = tr.event(ev.name, ev.data, out); err != nil {
					break
				}
			}
			out = tr.finish(out)
			if !bytes.HasSuffix(out, []byte("\n\n")) {
				t.Fatalf("output does not end with a blank line: %q", out)
			}
			for _, ev := range parseFixtureSSE(out) {
				if !json.Valid(ev.data) && !bytes.Equal(ev.data, chatStreamDone) {
					t.Fatalf("event %q has invalid data %q", ev.name, ev.data)
				}
			}
			_ = tr.usage()
			if tr.contentBytes() < 0 {
				t.Fatal("negative contentBytes")
			}
		}
	})
}
