package translate

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

func FuzzSSEScanner(f *testing.F) {
	for _, seed := range []string{
		"data: [DONE]\n",
		`data: {"choices":[{"delta":{"content":"hi"}}],"usage":null}` + "\n",
		`data: {"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2}}` + "\n",
		`data: {"type":"response.completed","response":{"usage":{"input_tokens":3,"output_tokens":4}}}` + "\n",
		`data: {"type":"message_start","message":{"usage":{"input_tokens":5,"output_tokens":1}}}` + "\n",
		`data: {"type":"message_delta","usage":{"output_tokens":9}}` + "\n",
		"data: {\"usage\":\n",
		": comment\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var s sseScanner
		for _, line := range bytes.SplitAfter(data, []byte("\n")) {
			s.line(line)
		}
		if s.contentBytes < 0 || s.contentBytes > len(data) {
			t.Fatalf("content bytes %d from %d bytes of input", s.contentBytes, len(data))
		}
	})
}

func FuzzPatchRequest(f *testing.F) {
	for _, seed := range []string{
		`{"model":"openai:gpt-4o","messages":[]}`,
		`{"model":"x:y","stream":true,"stream_options":{"include_usage":false}}`,
		`{"model":"x:y","stream_options":null,"seed":9007199254740993}`,
		`{"messages":[],"model":"a:b","z":{"model":"inner"}}`,
		`{"model":1}`,
		`{}`,
	} {
		f.Add([]byte(seed), "gpt-4o", true)
	}
	f.Fuzz(func(t *testing.T, body []byte, model string, forceUsage bool) {
		if !gjson.ValidBytes(body) || !gjson.ParseBytes(body).IsObject() || !utf8.Valid(body) || !utf8.ValidString(model) {
			return // prepareCall rejects these before patching; model comes from the body
		}
		patched, _, err := patchRequest(body, model, forceUsage)
		if err != nil {
			return
		}
		if !gjson.ValidBytes(patched) {
			t.Fatalf("patched body is not JSON: %s", patched)
		}
		if got := gjson.GetBytes(patched, "model"); got.Str != model {
			t.Fatalf("model = %q, want %q", got.Str, model)
		}
		if forceUsage && gjson.GetBytes(patched, "stream_options.include_usage").Type != gjson.True {
			t.Fatalf("include_usage not forced: %s", patched)
		}
		// Every other top-level field keeps its raw bytes.
		gjson.ParseBytes(body).ForEach(func(k, v gjson.Result) bool {
			if k.Str == "model" || k.Str == "stream_options" || strings.ContainsAny(k.Str, `.*?|#@\`) {
				return true
			}
			if got := gjson.GetBytes(patched, gjson.Escape(k.Str)); got.Raw != v.Raw && !bytes.Contains(patched, []byte(v.Raw)) {
				t.Fatalf("field %q changed: %s -> %s", k.Str, v.Raw, got.Raw)
			}
			return true
		})
	})
}
