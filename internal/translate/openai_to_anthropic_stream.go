package translate

import (
	"bytes"
	"cmp"
	"fmt"
	"strings"

	"github.com/tidwall/gjson"
)

// --- OpenAI chunks -> Anthropic SSE ---

// anthropicFromChatStream turns chat chunks into Anthropic events. Chat
// interleaves text and tool-call fragments freely, while Anthropic wants one
// block open at a time, so a block is closed as soon as the next kind of
// content begins.
type anthropicFromChatStream struct {
	model string

	started, stopped bool
	// open is the index of the open block, or -1; openKind is "text" or
	// "tool_use" while a block is open.
	open     int
	openKind string
	next     int
	// toolBlock maps a chat tool_calls index to its Anthropic block index.
	toolBlock map[int64]int

	stopReason string
	u          Usage
	estimate   int64 // prompt tokens stated up front when the provider has not said
	bytes      int
}

// newAnthropicFromChatStream translates chat chunks into Anthropic SSE
// reporting clientModel. promptEstimate is the prompt's size stated in
// message_start, where Anthropic clients (LangChain's among them) read the
// input tokens, since chat providers report usage only at the end.
func newAnthropicFromChatStream(clientModel string, promptEstimate int64) streamTranslator {
	return &anthropicFromChatStream{model: clientModel, open: -1, toolBlock: map[int64]int{}, estimate: promptEstimate}
}

func (s *anthropicFromChatStream) event(name string, data []byte, out []byte) ([]byte, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return out, nil
	}
	if bytes.Equal(data, chatStreamDone) {
		return s.finish(out), nil
	}
	if !gjson.ValidBytes(data) {
		return out, fmt.Errorf("chat stream: %s event: invalid JSON", cmp.Or(name, "unnamed"))
	}
	root := gjson.ParseBytes(data)
	if e := root.Get("error"); (e.Exists() && e.Type != gjson.Null) || name == "error" {
		return out, fmt.Errorf("chat stream: %w", &providerError{
			kind:    cmp.Or(e.Get("type").String(), e.Get("code").String()),
			message: cmp.Or(e.Get("message").String(), e.Raw, string(data)),
		})
	}
	if !root.IsObject() || s.stopped {
		return out, nil
	}
	w := translatedSSE{buf: out}
	if u := root.Get("usage"); u.IsObject() {
		s.u = parseUsage(u)
	}
	s.start(&w, root.Get("id").String())
	for _, c := range root.Get("choices").Array() {
		if c.Get("index").Int() != 0 {
			continue // Anthropic has a single message; n>1 is not translated
		}
		d := c.Get("delta")
		s.bytes += len(d.Get("reasoning_content").String())
		if text := d.Get("content").String(); text != "" {
			s.text(&w, text)
		}
		for pos, call := range d.Get("tool_calls").Array() {
			idx := int64(pos)
			if i := call.Get("index"); i.Exists() {
				idx = i.Int()
			}
			s.toolCall(&w, idx, call)
		}
		if fr := c.Get("finish_reason"); fr.Type == gjson.String && fr.Str != "" {
			s.stopReason = stopReasonFromOpenAI(fr.Str)
			s.closeBlock(&w)
		}
	}
	return w.buf, w.err
}

// start sends message_start before the first content; input tokens are the
// estimate unless the provider reported usage on its first chunk.
func (s *anthropicFromChatStream) start(w *translatedSSE, chatID string) {
	if s.started {
		return
	}
	s.started = true
	usage := anthropicUsageOf(s.u)
	if !s.u.Seen {
		usage.InputTokens = s.estimate
	}
	w.write("message_start", map[string]any{
		"type": "message_start",
		"message": map[string]any{
			"id":            "msg_" + strings.TrimPrefix(chatID, "chatcmpl-"),
			"type":          "message",
			"role":          "assistant",
			"model":         s.model,
			"content":       []any{},
			"stop_reason":   nil,
			"stop_sequence": nil,
			"usage":         usage,
		},
	})
}

func (s *anthropicFromChatStream) text(w *translatedSSE, text string) {
	s.bytes += len(text)
	if s.openKind != "text" {
		s.closeBlock(w)
		s.openBlock(w, "text", map[string]any{"type": "text", "text": ""})
	}
	s.blockDelta(w, s.open, map[string]any{"type": "text_delta", "text": text})
}

// toolCall starts a tool_use block for a new tool call index and forwards
// argument fragments as input_json_delta. Fragments of a call whose block
// was already closed still go to that block's index, so no input is lost.
func (s *anthropicFromChatStream) toolCall(w *translatedSSE, idx int64, call gjson.Result) {
	block, ok := s.toolBlock[idx]
	if !ok {
		s.closeBlock(w)
		name := call.Get("function.name").String()
		s.bytes += len(name)
		block = s.openBlock(w, "tool_use", map[string]any{
			"type":  "tool_use",
			"id":    call.Get("id").String(),
			"name":  name,
			"input": map[string]any{},
		})
		s.toolBlock[idx] = block
	}
	if args := call.Get("function.arguments").String(); args != "" {
		s.bytes += len(args)
		s.blockDelta(w, block, map[string]any{"type": "input_json_delta", "partial_json": args})
	}
}

func (s *anthropicFromChatStream) openBlock(w *translatedSSE, kind string, block map[string]any) int {
	s.open, s.openKind = s.next, kind
	s.next++
	w.write("content_block_start", map[string]any{"type": "content_block_start", "index": s.open, "content_block": block})
	return s.open
}

func (s *anthropicFromChatStream) blockDelta(w *translatedSSE, index int, delta map[string]any) {
	w.write("content_block_delta", map[string]any{"type": "content_block_delta", "index": index, "delta": delta})
}

func (s *anthropicFromChatStream) closeBlock(w *translatedSSE) {
	if s.openKind == "" {
		return
	}
	w.write("content_block_stop", map[string]any{"type": "content_block_stop", "index": s.open})
	s.open, s.openKind = -1, ""
}

// finish sends message_delta and message_stop, once; it runs on [DONE] or
// when the caller sees the upstream end. message_delta carries the final
// usage, input included, since message_start was sent before it was known.
func (s *anthropicFromChatStream) finish(out []byte) []byte {
	if s.stopped {
		return out
	}
	s.stopped = true
	w := translatedSSE{buf: out}
	s.start(&w, "")
	s.closeBlock(&w)
	usage := anthropicUsageOf(s.u)
	w.write("message_delta", map[string]any{
		"type":  "message_delta",
		"delta": map[string]any{"stop_reason": cmp.Or(s.stopReason, "end_turn"), "stop_sequence": nil},
		"usage": map[string]int64{
			"input_tokens":            usage.InputTokens,
			"output_tokens":           usage.OutputTokens,
			"cache_read_input_tokens": usage.CacheReadInputTokens,
		},
	})
	w.write("message_stop", map[string]any{"type": "message_stop"})
	// Events hold only strings, numbers and maps, so w.err is always nil.
	return w.buf
}

func (s *anthropicFromChatStream) usage() Usage { return s.u }

func (s *anthropicFromChatStream) contentBytes() int { return s.bytes }
