package translate

import (
	"bytes"
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
	usage        Usage
	anthropic    anthropicStreamUsage // the totals of a Messages stream
	contentBytes int
	done         bool
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
	s.setUsage(parseUsage(usage))
	return !choices.Exists() || choices.Raw == "[]"
}

// typedEvent handles the events of the Responses API and of Anthropic's
// Messages API, which name their type in the payload.
func (s *sseScanner) typedEvent(typ, payload string) {
	switch typ {
	case "response.completed", "response.incomplete", "response.failed":
		if u := gjson.Get(payload, "response.usage"); u.IsObject() {
			s.setUsage(parseUsage(u))
		}
		s.done = true
	case "message_start":
		s.anthropic.merge(gjson.Get(payload, "message.usage"))
		s.setUsage(s.anthropic.usage())
	case "message_delta":
		s.anthropic.merge(gjson.Get(payload, "usage"))
		s.setUsage(s.anthropic.usage())
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

// setUsage takes the latest usage seen; a count found invalid once stays
// so, whatever comes after it.
func (s *sseScanner) setUsage(u Usage) {
	if !u.Seen {
		return
	}
	invalid := s.usage.Invalid
	s.usage = u
	if u.Invalid == "" {
		s.usage.Invalid = invalid
	}
}
