package llmgateway

import (
	"bytes"
	"math"
	"strings"

	"github.com/tidwall/gjson"
)

// sseScanner watches the events of a stream as they are forwarded
// unchanged: OpenAI chat completion chunks, Responses API events and
// Anthropic Messages events. It keeps no copy of the stream: only the
// usage numbers, a count of the content bytes seen (for an estimate when
// the provider sends no usage) and whether the stream reached its final
// event.
type sseScanner struct {
	usageSeen        bool
	usageInvalid     string // why the provider's usage cannot be billed
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
// it carries a chat usage-only chunk (choices empty, usage set): the caller
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
	// One copy of the event as a string lets every lookup below return
	// substrings of it instead of allocating (gjson.GetBytes copies).
	event := string(payload)
	if strings.Contains(event, `"type"`) { // chat chunks name no top-level type
		if typ := gjson.Get(event, "type"); typ.Type == gjson.String {
			s.typedEvent(typ.Str, event)
			return false
		}
	}

	choices := gjson.Get(event, "choices")
	choices.ForEach(func(_, c gjson.Result) bool {
		d := c.Get("delta")
		s.contentBytes += len(c.Get("text").Str) // legacy completions
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
	usage := gjson.Get(event, "usage")
	if !usage.IsObject() {
		return false
	}
	s.setUsage(usage)
	return !choices.Exists() || choices.Raw == "[]"
}

// typedEvent handles the events of the Responses API and of Anthropic's
// Messages API, which name their type in the payload.
func (s *sseScanner) typedEvent(typ, payload string) {
	switch typ {
	case "response.completed", "response.incomplete", "response.failed":
		if u := gjson.Get(payload, "response.usage"); u.IsObject() {
			s.setUsage(u)
		}
		s.done = true
	case "message_start":
		if u := gjson.Get(payload, "message.usage"); u.IsObject() {
			s.setUsage(u)
		}
	case "message_delta":
		u := gjson.Get(payload, "usage")
		if bad := invalidUsage(u); bad != "" {
			s.usageInvalid = bad
		}
		if out := u.Get("output_tokens"); out.Exists() {
			s.usageSeen = true
			s.completionTokens = out.Int()
		}
		if in := u.Get("input_tokens"); in.Exists() && in.Int() > 0 {
			s.promptTokens = in.Int() + u.Get("cache_creation_input_tokens").Int() + u.Get("cache_read_input_tokens").Int()
		}
	case "message_stop":
		s.done = true
	case "content_block_delta":
		d := gjson.Get(payload, "delta")
		s.contentBytes += len(d.Get("text").Str) + len(d.Get("partial_json").Str) + len(d.Get("thinking").Str)
	default:
		if d := gjson.Get(payload, "delta"); d.Type == gjson.String {
			s.contentBytes += len(d.Str) // response.output_text.delta and the like
		}
	}
}

// setUsage reads a usage object in any of the three formats.
func (s *sseScanner) setUsage(u gjson.Result) {
	s.usageSeen = true
	if bad := invalidUsage(u); bad != "" {
		s.usageInvalid = bad
	}
	s.promptTokens, s.completionTokens = usageTokens(u)
}

// maxReportedTokens is the largest token count taken from a provider: far
// beyond any model's context, so a larger one is a provider's bug or a
// hostile upstream (a prompt_tokens of 1e30 once billed 9.2e12 dollars).
const maxReportedTokens = 100_000_000

// usageCountFields are the token counts read from usage objects.
var usageCountFields = [...]string{"prompt_tokens", "completion_tokens", "input_tokens", "output_tokens",
	"cache_creation_input_tokens", "cache_read_input_tokens"}

// invalidUsage names the first token count of a usage object that is not
// an integer from 0 to maxReportedTokens ("prompt_tokens=-2"), or "".
func invalidUsage(u gjson.Result) string {
	for _, field := range usageCountFields {
		v := u.Get(field)
		if !v.Exists() || v.Type == gjson.Null {
			continue
		}
		if v.Type != gjson.Number || v.Num < 0 || v.Num > maxReportedTokens || v.Num != math.Trunc(v.Num) {
			return field + "=" + truncate(v.Raw, 32)
		}
	}
	return ""
}

// usageTokens reads prompt and completion tokens from an OpenAI chat
// ("prompt_tokens"), Responses or Anthropic ("input_tokens") usage object;
// Anthropic's cache tokens count as prompt tokens.
func usageTokens(u gjson.Result) (prompt, completion int64) {
	if p := u.Get("prompt_tokens"); p.Exists() {
		prompt = p.Int()
	} else {
		prompt = u.Get("input_tokens").Int() + u.Get("cache_creation_input_tokens").Int() + u.Get("cache_read_input_tokens").Int()
	}
	if c := u.Get("completion_tokens"); c.Exists() {
		completion = c.Int()
	} else {
		completion = u.Get("output_tokens").Int()
	}
	return prompt, completion
}
