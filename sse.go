package llmgateway

import (
	"bytes"

	"github.com/tidwall/gjson"
)

// sseScanner watches the lines of an OpenAI chat completion stream as they
// are forwarded. It keeps no copy of the stream: only the usage numbers,
// a count of the content bytes seen (for an estimate when the provider
// sends no usage) and whether the stream ended with [DONE].
type sseScanner struct {
	usageSeen        bool
	promptTokens     int64
	completionTokens int64
	contentBytes     int
	done             bool
}

var (
	dataPrefix  = []byte("data:")
	doneMarker  = []byte("[DONE]")
	usageNeedle = []byte(`"usage"`)
)

// line inspects one complete line (with its newline) and reports whether
// it carries a usage-only chunk (choices empty, usage set): the caller
// drops it when the client asked for no usage.
func (s *sseScanner) line(line []byte) (usageOnly bool) {
	payload, ok := bytes.CutPrefix(line, dataPrefix)
	if !ok {
		return false
	}
	payload = bytes.TrimSpace(payload)
	if bytes.Equal(payload, doneMarker) {
		s.done = true
		return false
	}
	if len(payload) == 0 || payload[0] != '{' {
		return false
	}
	choices := gjson.GetBytes(payload, "choices")
	choices.ForEach(func(_, c gjson.Result) bool {
		d := c.Get("delta")
		s.contentBytes += len(d.Get("content").Str) + len(d.Get("reasoning_content").Str) + len(d.Get("refusal").Str)
		if tc := d.Get("tool_calls"); tc.Exists() {
			tc.ForEach(func(_, call gjson.Result) bool {
				s.contentBytes += len(call.Get("function.arguments").Str) + len(call.Get("function.name").Str)
				return true
			})
		}
		return true
	})
	if !bytes.Contains(payload, usageNeedle) {
		return false
	}
	usage := gjson.GetBytes(payload, "usage")
	if !usage.IsObject() {
		return false
	}
	s.usageSeen = true
	s.promptTokens = usage.Get("prompt_tokens").Int()
	s.completionTokens = usage.Get("completion_tokens").Int()
	return !choices.Exists() || (choices.IsArray() && len(choices.Array()) == 0)
}
