package translate

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

func TestSSEScannerPicksUpUsage(t *testing.T) {
	t.Parallel()
	stream := []string{
		`data: {"id":"1","choices":[{"index":0,"delta":{"role":"assistant","content":""}}],"usage":null}` + "\n",
		"\n",
		`data: {"id":"1","choices":[{"index":0,"delta":{"content":"Hello"}}],"usage":null}` + "\n",
		"\n",
		`data: {"id":"1","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"name":"f","arguments":"{\"a\":1}"}}]}}]}` + "\n",
		"\n",
		`data: {"id":"1","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":34,"total_tokens":46}}` + "\n",
		"\n",
		"data: [DONE]\n",
	}
	var s sseScanner
	var usageOnly []int
	for i, line := range stream {
		if s.line([]byte(line)) {
			usageOnly = append(usageOnly, i)
		}
	}
	if !s.usage.Seen || s.usage.Prompt != 12 || s.usage.Completion != 34 || !s.done {
		t.Fatalf("scanner = %+v", s)
	}
	if len(usageOnly) != 1 || usageOnly[0] != 6 {
		t.Fatalf("usage-only lines = %v, want [6]", usageOnly)
	}
	if want := len("Hello") + len("f") + len(`{"a":1}`); s.contentBytes != want {
		t.Fatalf("content bytes = %d, want %d", s.contentBytes, want)
	}
}

func TestSSEScannerIgnoresNonData(t *testing.T) {
	t.Parallel()
	var s sseScanner
	for _, line := range []string{
		": keep-alive\n",
		"event: message\n",
		"data: not json\n",
		`data: {"usage": "nope"}` + "\n",
		"data:{\"choices\":[{\"delta\":{\"content\":\"ab\"}}],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}\n",
	} {
		if s.line([]byte(line)) {
			t.Fatalf("%q reported as usage-only", line)
		}
	}
	if !s.usage.Seen || s.usage.Prompt != 1 || s.usage.Completion != 2 || s.contentBytes != 2 || s.done {
		t.Fatalf("scanner = %+v", s)
	}
}

func TestEstimateTokens(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		want int64
	}{
		{"empty", `{}`, 0},
		{"one message", `{"messages":[{"role":"user","content":"abcdefgh"}]}`, tokensPerMessage + 2 + tokensPerCompletes},
		{"parts", `{"messages":[{"role":"user","content":[{"type":"text","text":"abcd"},{"type":"image_url","image_url":{"url":"x"}}]}]}`, tokensPerMessage + 1 + tokensPerCompletes},
		{"embeddings input", `{"input":["abcd","efgh"]}`, 2},
		{"rounds up", `{"input":"abcde"}`, 2},
	}
	for _, tt := range tests {
		if got := EstimatePromptTokens([]byte(tt.body)); got != tt.want {
			t.Errorf("%s: estimate = %d, want %d", tt.name, got, tt.want)
		}
	}
	if got := EstimateTokens(len(strings.Repeat("x", 400))); got != 100 {
		t.Errorf("EstimateTokens(400 bytes) = %d", got)
	}
}

func BenchmarkSSEScannerLine(b *testing.B) {
	line := []byte(`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":" world"},"finish_reason":null}],"usage":null}` + "\n")
	var s sseScanner
	b.ReportAllocs()
	for b.Loop() {
		s.line(line)
	}
}

func TestInvalidUsage(t *testing.T) {
	t.Parallel()
	tests := []struct{ usage, want string }{
		{`{"prompt_tokens":11,"completion_tokens":7,"total_tokens":18}`, ""},
		{`{"input_tokens":0,"output_tokens":100000000,"cache_read_input_tokens":null}`, ""},
		{`{"prompt_tokens":2.0,"completion_tokens":7}`, ""},
		{`{"prompt_tokens":-2,"completion_tokens":7}`, "prompt_tokens=-2"},
		{`{"prompt_tokens":1e30,"completion_tokens":7}`, "prompt_tokens=1e30"},
		{`{"prompt_tokens":1,"completion_tokens":1.5}`, "completion_tokens=1.5"},
		{`{"input_tokens":1,"output_tokens":100000001}`, "output_tokens=100000001"},
		{`{"input_tokens":1,"cache_creation_input_tokens":"7"}`, `cache_creation_input_tokens="7"`},
		{`{"input_tokens":true}`, "input_tokens=true"},
	}
	for _, tt := range tests {
		if got := invalidUsage(gjson.Parse(tt.usage)); got != tt.want {
			t.Errorf("invalidUsage(%s) = %q, want %q", tt.usage, got, tt.want)
		}
	}
	var s sseScanner
	s.line([]byte(`data: {"choices":[],"usage":{"prompt_tokens":-5,"completion_tokens":3}}` + "\n"))
	if !s.usage.Seen || s.usage.Invalid != "prompt_tokens=-5" {
		t.Fatalf("scanner: seen %v, invalid %q", s.usage.Seen, s.usage.Invalid)
	}
}
