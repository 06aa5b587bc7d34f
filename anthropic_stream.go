package llmgateway

// Streaming translation between Anthropic Messages SSE events and OpenAI
// chat.completion.chunk lines. Each translator is fed one upstream event at
// a time and writes the client's events as soon as they can be built, so
// nothing is held back beyond the state needed to number blocks and report
// usage at the end.

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/tidwall/gjson"
)

// streamTranslator converts one upstream SSE stream into the client's SSE
// dialect.
type streamTranslator interface {
	// event consumes one upstream SSE event: its "event:" name (may be empty) and its joined "data:" payload,
	// and appends complete translated SSE events (each ending in "\n\n") to out.
	event(name string, data []byte, out []byte) ([]byte, error)
	// finish appends what closes the client's stream once the upstream stream ended normally
	// (for chat: a final usage chunk if includeUsage and "data: [DONE]\n\n"; for Anthropic: message_delta/message_stop if not yet sent).
	finish(out []byte) []byte
	// usage reports the usage seen so far.
	usage() tokenUsage
	// contentBytes is the number of bytes of generated text/tool arguments seen (for estimates when no usage arrives).
	contentBytes() int
}

var chatStreamDone = []byte("[DONE]")

// translatedSSE accumulates translated events and remembers the first encoding
// error, so that the translators need not check every append.
type translatedSSE struct {
	buf []byte
	err error
}

// write appends v as an SSE event: with an "event:" line when name is set
// (the Anthropic dialect), as a bare "data:" line otherwise (chat).
func (w *translatedSSE) write(name string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		if w.err == nil {
			w.err = fmt.Errorf("encoding %s event: %w", cmp.Or(name, "chunk"), err)
		}
		return
	}
	if name != "" {
		w.buf = append(w.buf, "event: "...)
		w.buf = append(w.buf, name...)
		w.buf = append(w.buf, '\n')
	}
	w.buf = append(w.buf, "data: "...)
	w.buf = append(w.buf, b...)
	w.buf = append(w.buf, "\n\n"...)
}

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

	input, cacheWrite, cacheRead, output int64
	usageSeen                            bool
	invalid                              string // invalidUsage of a usage object seen
	bytes                                int
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

type openaiChunk struct {
	ID      string              `json:"id"`
	Object  string              `json:"object"`
	Created int64               `json:"created"`
	Model   string              `json:"model"`
	Choices []openaiChunkChoice `json:"choices"`
	Usage   *openaiUsage        `json:"usage,omitempty"`
}

type openaiChunkChoice struct {
	Index        int         `json:"index"`
	Delta        openaiDelta `json:"delta"`
	FinishReason *string     `json:"finish_reason"`
}

type openaiDelta struct {
	Role             string                `json:"role,omitempty"`
	Content          *string               `json:"content,omitempty"`
	ReasoningContent string                `json:"reasoning_content,omitempty"`
	ToolCalls        []openaiToolCallDelta `json:"tool_calls,omitempty"`
}

type openaiToolCallDelta struct {
	Index    int                 `json:"index"`
	ID       string              `json:"id,omitempty"`
	Type     string              `json:"type,omitempty"`
	Function openaiFunctionDelta `json:"function"`
}

type openaiFunctionDelta struct {
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments"`
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
		s.addUsage(msg.Get("usage"))
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
		s.addUsage(root.Get("usage"))
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

// addUsage applies a usage object from message_start or message_delta.
// message_delta repeats totals rather than increments, and may omit input
// fields, so only fields present replace what was seen.
func (s *chatFromAnthropicStream) addUsage(u gjson.Result) {
	if !u.IsObject() {
		return
	}
	s.usageSeen = true
	if bad := invalidUsage(u); bad != "" {
		s.invalid = bad
	}
	for field, dst := range map[string]*int64{
		"input_tokens":                &s.input,
		"cache_creation_input_tokens": &s.cacheWrite,
		"cache_read_input_tokens":     &s.cacheRead,
		"output_tokens":               &s.output,
	} {
		if v := u.Get(field); v.Type == gjson.Number {
			*dst = v.Int()
		}
	}
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
	if s.includeUsage && s.usageSeen {
		c := s.chunk([]openaiChunkChoice{})
		c.Usage = openaiUsageOf(s.usage())
		w.write("", c)
	}
	// Chunks hold only strings and numbers, so w.err is always nil here.
	w.buf = append(w.buf, "data: [DONE]\n\n"...)
	return w.buf
}

func (s *chatFromAnthropicStream) usage() tokenUsage {
	return tokenUsage{
		prompt:       s.input + s.cacheWrite + s.cacheRead,
		completion:   s.output,
		cachedPrompt: s.cacheRead,
		seen:         s.usageSeen,
		invalid:      s.invalid,
	}
}

func (s *chatFromAnthropicStream) contentBytes() int { return s.bytes }

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
	u          tokenUsage
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
		s.u = tokenUsageFromOpenAI(u)
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
	if !s.u.seen {
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

func (s *anthropicFromChatStream) usage() tokenUsage { return s.u }

func (s *anthropicFromChatStream) contentBytes() int { return s.bytes }
