package translate

// Streaming translation between Anthropic Messages SSE events and OpenAI
// chat.completion.chunk lines. Each translator is fed one upstream event at
// a time and writes the client's events as soon as they can be built, so
// nothing is held back beyond the state needed to number blocks and report
// usage at the end.

import (
	"bytes"
	"cmp"
	"fmt"

	"github.com/tidwall/gjson"
)

// --- Anthropic SSE -> OpenAI chunks ---

// chatFromAnthropicStream turns an Anthropic event stream into chat chunks.
type chatFromAnthropicStream struct {
	id, model    string
	created      int64
	includeUsage bool

	roleSent, finishSent, closed bool
	// toolIndex maps an Anthropic content block index to its position in
	// the chat tool_calls array, which counts tool calls only.
	toolIndex map[int64]int
	nextTool  int

	u     anthropicStreamUsage
	bytes int
}

// newChatFromAnthropicStream translates Anthropic SSE into chat chunks
// reporting clientModel; includeUsage adds the final usage chunk.
func newChatFromAnthropicStream(clientModel string, created int64, includeUsage bool) streamTranslator {
	return &chatFromAnthropicStream{
		id:           "chatcmpl-",
		model:        clientModel,
		created:      created,
		includeUsage: includeUsage,
		toolIndex:    map[int64]int{},
	}
}

func (s *chatFromAnthropicStream) event(name string, data []byte, out []byte) ([]byte, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return out, nil
	}
	if !gjson.ValidBytes(data) {
		return out, fmt.Errorf("anthropic stream: %s event: invalid JSON", cmp.Or(name, "unnamed"))
	}
	root := gjson.ParseBytes(data)
	typ := root.Get("type").String()
	if typ == "" {
		typ = name
	}
	w := translatedSSE{buf: out}
	switch typ {
	case "message_start":
		msg := root.Get("message")
		if id := msg.Get("id").String(); id != "" {
			s.id = "chatcmpl-" + id
		}
		s.u.merge(msg.Get("usage"))
		s.delta(&w, openaiDelta{Content: new(string)})
	case "content_block_start":
		block := root.Get("content_block")
		switch block.Get("type").String() {
		case "text":
			s.text(&w, block.Get("text").String())
		case "thinking":
			s.reasoning(&w, block.Get("thinking").String())
		case "tool_use":
			idx := s.nextTool
			s.nextTool++
			s.toolIndex[root.Get("index").Int()] = idx
			name := block.Get("name").String()
			s.bytes += len(name)
			s.delta(&w, openaiDelta{ToolCalls: []openaiToolCallDelta{{
				Index:    idx,
				ID:       block.Get("id").String(),
				Type:     "function",
				Function: openaiFunctionDelta{Name: name},
			}}})
		}
	case "content_block_delta":
		d := root.Get("delta")
		switch d.Get("type").String() {
		case "text_delta":
			s.text(&w, d.Get("text").String())
		case "thinking_delta":
			s.reasoning(&w, d.Get("thinking").String())
		case "input_json_delta":
			idx, ok := s.toolIndex[root.Get("index").Int()]
			args := d.Get("partial_json").String()
			if !ok || args == "" {
				break
			}
			s.bytes += len(args)
			s.delta(&w, openaiDelta{ToolCalls: []openaiToolCallDelta{{Index: idx, Function: openaiFunctionDelta{Arguments: args}}}})
		}
		// signature_delta and citations_delta have no chat equivalent.
	case "message_delta":
		s.u.merge(root.Get("usage"))
		if reason := root.Get("delta.stop_reason"); reason.Type == gjson.String && !s.finishSent {
			s.finishChunk(&w, finishReasonFromAnthropic(reason.Str))
		}
	case "error":
		return out, fmt.Errorf("anthropic stream: %w", &providerError{
			kind:    root.Get("error.type").String(),
			message: root.Get("error.message").String(),
		})
	}
	// ping, content_block_stop, message_stop and unknown events add nothing.
	return w.buf, w.err
}

func (s *chatFromAnthropicStream) text(w *translatedSSE, text string) {
	if text == "" {
		return
	}
	s.bytes += len(text)
	s.delta(w, openaiDelta{Content: &text})
}

func (s *chatFromAnthropicStream) reasoning(w *translatedSSE, text string) {
	if text == "" {
		return
	}
	s.bytes += len(text)
	s.delta(w, openaiDelta{ReasoningContent: text})
}

// delta writes one chunk; the first chunk of the stream names the role.
func (s *chatFromAnthropicStream) delta(w *translatedSSE, d openaiDelta) {
	if !s.roleSent {
		s.roleSent = true
		d.Role = "assistant"
	}
	w.write("", s.chunk([]openaiChunkChoice{{Delta: d}}))
}

func (s *chatFromAnthropicStream) finishChunk(w *translatedSSE, reason string) {
	s.finishSent = true
	d := openaiDelta{}
	if !s.roleSent {
		s.roleSent = true
		d.Role = "assistant"
	}
	w.write("", s.chunk([]openaiChunkChoice{{Delta: d, FinishReason: &reason}}))
}

func (s *chatFromAnthropicStream) chunk(choices []openaiChunkChoice) openaiChunk {
	return openaiChunk{ID: s.id, Object: "chat.completion.chunk", Created: s.created, Model: s.model, Choices: choices}
}

func (s *chatFromAnthropicStream) finish(out []byte) []byte {
	if s.closed {
		return out
	}
	s.closed = true
	w := translatedSSE{buf: out}
	if !s.finishSent {
		// A stream that ended without message_delta still owes the client
		// a finish_reason.
		s.finishChunk(&w, "stop")
	}
	if s.includeUsage && s.u.seen {
		c := s.chunk([]openaiChunkChoice{})
		c.Usage = openaiUsageOf(s.usage())
		w.write("", c)
	}
	// Chunks hold only strings and numbers, so w.err is always nil here.
	w.buf = append(w.buf, "data: [DONE]\n\n"...)
	return w.buf
}

func (s *chatFromAnthropicStream) usage() Usage { return s.u.usage() }

func (s *chatFromAnthropicStream) contentBytes() int { return s.bytes }
