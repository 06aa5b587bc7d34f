package translate

import (
	"testing"

	"github.com/tidwall/gjson"
)

// TestTranslationRefusesMaxTokensItWouldMisread: a max_tokens the
// reservation does not read as a number is not sent as one (gjson reads
// "100000" as 100000: 4096 tokens were reserved and 100000 requested).
func TestTranslationRefusesMaxTokensItWouldMisread(t *testing.T) {
	t.Parallel()
	for _, mt := range []string{`"100000"`, `-5`, `0`, `true`, `{}`} {
		body := `{"model":"x","max_tokens":` + mt + `,"messages":[{"role":"user","content":"hi"}]}`
		if out, err := chatRequestFromAnthropic([]byte(body), "m"); err == nil {
			t.Errorf("max_tokens %s: translated to %s, want an error", mt, out)
		}
	}
}

func TestPromptTokenBound(t *testing.T) {
	t.Parallel()
	b64 := `"data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="`
	tests := []struct {
		name  string
		body  string
		extra int64 // beyond the body's bytes, less inline image data
		data  string
	}{
		{"text", `{"messages":[{"role":"user","content":"héllo wörld"}]}`, 0, ""},
		{"image by URL", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://x/y.png"}}]}]}`, imageTokenBound, ""},
		{"inline image", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":` + b64 + `}}]}]}`, imageTokenBound, b64},
		{"responses input_image by file", `{"input":[{"role":"user","content":[{"type":"input_image","file_id":"file-1"}]}]}`, imageTokenBound, ""},
		{"anthropic base64 in a tool result", `{"messages":[{"role":"user","content":[{"type":"tool_result","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"QUJD"}}]}]}]}`, imageTokenBound, `"QUJD"`},
		{"the word image in text", `{"messages":[{"role":"user","content":"an image"}]}`, 0, ""},
		{"tools", `{"tools":[{"type":"function","function":{"name":"f"}}]}`, toolsTokenBound, ""},
		{"built-in tool", `{"tools":[{"type":"computer_20250124","name":"computer"}]}`, toolsTokenBound + builtinToolTokenBound, ""},
		{"empty tools", `{"tools":[]}`, 0, ""},
	}
	for _, tt := range tests {
		want := int64(len(tt.body)-len(tt.data)) + tt.extra
		if got := PromptTokenBound(gjson.Parse(tt.body), []byte(tt.body)); got != want {
			t.Errorf("%s: promptTokenBound = %d, want %d", tt.name, got, want)
		}
	}
}
