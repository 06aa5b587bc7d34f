package translate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/tidwall/gjson"
)

// NewOpenAIToAnthropic is the translator of an OpenAI chat client calling
// an Anthropic-format provider: chat requests become Messages requests,
// and Messages answers and events become chat completions and chunks.
func NewOpenAIToAnthropic(o Options) Translator { return &openaiToAnthropic{opts: o} }

type openaiToAnthropic struct {
	opts         Options
	includeUsage bool // the stream ends with a usage chunk, as chat clients expect unless they opt out
}

func (t *openaiToAnthropic) Request(body []byte) ([]byte, string, error) {
	t.includeUsage = gjson.GetBytes(body, "stream_options.include_usage").Type != gjson.False
	out, err := anthropicRequestFromChat(body, t.opts.Model, t.opts.DefaultMaxTokens)
	return out, "/messages", err
}

func (t *openaiToAnthropic) Response(body []byte) (Response, error) {
	out, u, err := chatResponseFromAnthropic(body, t.opts.ClientModel, t.opts.created())
	return translatedResponse(out, u), err
}

func (t *openaiToAnthropic) Stream() Stream {
	return &translatedStream{tr: newChatFromAnthropicStream(t.opts.ClientModel, t.opts.created(), t.includeUsage)}
}

func (t *openaiToAnthropic) StreamHeader(int, string) (int, string) { return translatedStreamHeader() }

// anthropicRequestFromChat translates an OpenAI chat request into an
// Anthropic Messages request for model. defaultMaxTokens fills max_tokens,
// which Anthropic requires, when the client set no limit.
func anthropicRequestFromChat(body []byte, model string, defaultMaxTokens int64) ([]byte, error) {
	root, err := translationInput(body)
	if err != nil {
		return nil, fmt.Errorf("chat request: %w", err)
	}
	if n := root.Get("n"); n.Exists() && n.Type != gjson.Null && n.Int() != 1 {
		return nil, fmt.Errorf("chat request: n=%s: Anthropic returns a single choice", n.Raw)
	}
	req := anthropicRequest{Model: model, MaxTokens: defaultMaxTokens}
	for _, field := range []string{"max_completion_tokens", "max_tokens"} {
		v := root.Get(field)
		if !v.Exists() || v.Type == gjson.Null {
			continue
		}
		if v.Type != gjson.Number || v.Int() < 1 {
			return nil, fmt.Errorf("chat request: %s must be a positive integer", field)
		}
		req.MaxTokens = v.Int()
		break
	}
	if req.MaxTokens < 1 {
		return nil, errors.New("chat request: max_tokens is required by Anthropic and no default is configured")
	}

	system, messages, err := anthropicMessagesFromChat(root.Get("messages"))
	if err != nil {
		return nil, fmt.Errorf("chat request: %w", err)
	}
	req.Messages = messages
	if req.System, err = anthropicSystem(system); err != nil {
		return nil, fmt.Errorf("chat request: system: %w", err)
	}
	if req.Tools, err = anthropicToolsFromChat(root.Get("tools")); err != nil {
		return nil, fmt.Errorf("chat request: %w", err)
	}
	if req.ToolChoice, err = anthropicToolChoiceFromChat(root.Get("tool_choice"), root.Get("parallel_tool_calls")); err != nil {
		return nil, fmt.Errorf("chat request: %w", err)
	}
	if len(req.Tools) == 0 {
		// Anthropic accepts tool_choice only alongside tools.
		req.ToolChoice = nil
	}
	if req.StopSequences, err = stopList(root.Get("stop")); err != nil {
		return nil, fmt.Errorf("chat request: stop: %w", err)
	}
	for field, dst := range map[string]*json.RawMessage{"temperature": &req.Temperature, "top_p": &req.TopP, "top_k": &req.TopK} {
		if *dst, err = numericParam(root.Get(field)); err != nil {
			return nil, fmt.Errorf("chat request: %s: %w", field, err)
		}
	}
	req.Stream = root.Get("stream").Type == gjson.True
	if effort := effortFromReasoningEffort(root.Get("reasoning_effort").String()); effort != "" {
		req.OutputConfig = &anthropicOutput{Effort: effort}
	}
	if user := root.Get("user").String(); user != "" {
		req.Metadata = &anthropicMetadata{UserID: user}
	}
	out, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encoding anthropic request: %w", err)
	}
	return out, nil
}

// anthropicMessagesFromChat splits chat messages into the system blocks and
// alternating user/assistant turns Anthropic expects. Tool results become
// user turns and consecutive turns of one role are merged.
func anthropicMessagesFromChat(msgs gjson.Result) (system []anthropicBlock, turns []anthropicMessage, err error) {
	if !msgs.IsArray() {
		return nil, nil, errors.New("messages must be an array")
	}
	for i, m := range msgs.Array() {
		var role string
		var blocks []anthropicBlock
		switch r := m.Get("role").String(); r {
		case "system", "developer":
			b, err := anthropicBlocksFromChatContent(m.Get("content"), false)
			if err != nil {
				return nil, nil, fmt.Errorf("messages[%d]: %w", i, err)
			}
			system = append(system, b...)
			continue
		case "user":
			role = "user"
			blocks, err = anthropicBlocksFromChatContent(m.Get("content"), true)
		case "assistant":
			role = "assistant"
			blocks, err = anthropicAssistantBlocks(m)
		case "tool":
			role = "user"
			var b anthropicBlock
			b, err = anthropicToolResult(m)
			blocks = []anthropicBlock{b}
		default:
			err = fmt.Errorf("unsupported role %q", r)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("messages[%d]: %w", i, err)
		}
		if len(blocks) == 0 {
			continue // Anthropic rejects empty turns
		}
		if n := len(turns); n > 0 && turns[n-1].Role == role {
			turns[n-1].Content = append(turns[n-1].Content, blocks...)
		} else {
			turns = append(turns, anthropicMessage{Role: role, Content: blocks})
		}
	}
	if len(turns) == 0 {
		return nil, nil, errors.New("messages: no user or assistant message")
	}
	for i := range turns {
		if turns[i].Role == "user" {
			toolResultsFirst(turns[i].Content)
		}
	}
	return system, turns, nil
}

// toolResultsFirst moves tool_result blocks to the front of a merged user
// turn, keeping their order: Anthropic requires them before any other
// content, while a chat history may put a user message before tool output.
func toolResultsFirst(blocks []anthropicBlock) {
	results := make([]anthropicBlock, 0, len(blocks))
	rest := make([]anthropicBlock, 0, len(blocks))
	for _, b := range blocks {
		if b.Type == "tool_result" {
			results = append(results, b)
		} else {
			rest = append(rest, b)
		}
	}
	copy(blocks, results)
	copy(blocks[len(results):], rest)
}

// anthropicBlocksFromChatContent converts a chat content value (string or
// parts) to blocks; media says whether images and files may appear.
func anthropicBlocksFromChatContent(content gjson.Result, media bool) ([]anthropicBlock, error) {
	switch {
	case !content.Exists() || content.Type == gjson.Null:
		return nil, nil
	case content.Type == gjson.String:
		if content.Str == "" {
			return nil, nil
		}
		return []anthropicBlock{{Type: "text", Text: content.Str}}, nil
	case !content.IsArray():
		return nil, errors.New("content must be a string or an array of parts")
	}
	var blocks []anthropicBlock
	for j, part := range content.Array() {
		b, err := anthropicBlockFromPart(part, media)
		if err != nil {
			return nil, fmt.Errorf("content[%d]: %w", j, err)
		}
		if b.Type != "" {
			blocks = append(blocks, b)
		}
	}
	return blocks, nil
}

// anthropicBlockFromPart converts one chat content part; an empty text part
// yields a zero block, which the caller skips.
func anthropicBlockFromPart(part gjson.Result, media bool) (anthropicBlock, error) {
	var b anthropicBlock
	if cc := part.Get("cache_control"); cc.IsObject() {
		// Some OpenAI-style clients mark prompt-cache breakpoints on parts.
		b.CacheControl = json.RawMessage(cc.Raw)
	}
	switch t := part.Get("type").String(); {
	case t == "text" || t == "refusal":
		b.Text = part.Get(t).String()
		if b.Text == "" {
			return anthropicBlock{}, nil
		}
		b.Type = "text"
	case t == "image_url" && media:
		url := part.Get("image_url.url").String()
		if v := part.Get("image_url"); v.Type == gjson.String {
			url = v.Str // some clients send the URL as a bare string
		}
		src, err := anthropicSourceFromURL(url)
		if err != nil {
			return anthropicBlock{}, fmt.Errorf("image_url: %w", err)
		}
		b.Type, b.Source = "image", src
	case t == "file" && media:
		data := part.Get("file.file_data").String()
		if data == "" {
			return anthropicBlock{}, errors.New("file: only inline file_data is supported, not file_id")
		}
		src, err := anthropicSourceFromURL(data)
		if err != nil || src.Type != "base64" {
			return anthropicBlock{}, errors.New("file: file_data must be a base64 data URL")
		}
		b.Type, b.Source = "document", src
	default:
		return anthropicBlock{}, fmt.Errorf("unsupported content part type %q here", t)
	}
	return b, nil
}

// anthropicSourceFromURL turns a data: URL into a base64 source and an
// http(s) URL into a url source, the two forms Anthropic fetches from.
func anthropicSourceFromURL(u string) (*anthropicSource, error) {
	if rest, ok := strings.CutPrefix(u, "data:"); ok {
		meta, data, ok := strings.Cut(rest, ",")
		mediaType, base64 := strings.CutSuffix(meta, ";base64")
		if !ok || !base64 || mediaType == "" {
			return nil, errors.New("data URL must be data:<media type>;base64,<data>")
		}
		return &anthropicSource{Type: "base64", MediaType: mediaType, Data: data}, nil
	}
	if strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://") {
		return &anthropicSource{Type: "url", URL: u}, nil
	}
	return nil, errors.New("URL must be a data: or http(s) URL")
}

// anthropicAssistantBlocks converts an assistant message: its text, then
// its tool calls as tool_use blocks.
func anthropicAssistantBlocks(m gjson.Result) ([]anthropicBlock, error) {
	blocks, err := anthropicBlocksFromChatContent(m.Get("content"), false)
	if err != nil {
		return nil, err
	}
	for k, call := range m.Get("tool_calls").Array() {
		if t := call.Get("type").String(); t != "" && t != "function" {
			return nil, fmt.Errorf("tool_calls[%d]: unsupported type %q", k, t)
		}
		input, err := toolInputObject(call.Get("function.arguments").String())
		if err != nil {
			return nil, fmt.Errorf("tool_calls[%d]: arguments: %w", k, err)
		}
		blocks = append(blocks, anthropicBlock{
			Type:  "tool_use",
			ID:    call.Get("id").String(),
			Name:  call.Get("function.name").String(),
			Input: input,
		})
	}
	return blocks, nil
}

// toolInputObject parses a tool call's arguments string into the JSON
// object Anthropic wants as input; models sometimes send "" for no arguments.
func toolInputObject(args string) (json.RawMessage, error) {
	args = strings.TrimSpace(args)
	if args == "" {
		return json.RawMessage(`{}`), nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, []byte(args)); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if buf.Bytes()[0] != '{' {
		return nil, errors.New("must be a JSON object")
	}
	return buf.Bytes(), nil
}

// anthropicToolResult converts a role "tool" message to a tool_result block;
// string content stays a string, parts become blocks.
func anthropicToolResult(m gjson.Result) (anthropicBlock, error) {
	b := anthropicBlock{Type: "tool_result", ToolUseID: m.Get("tool_call_id").String()}
	if b.ToolUseID == "" {
		return b, errors.New("tool message without tool_call_id")
	}
	content := m.Get("content")
	if content.Type == gjson.String {
		if content.Str != "" {
			b.Content, _ = json.Marshal(content.Str) // a string always marshals
		}
		return b, nil
	}
	blocks, err := anthropicBlocksFromChatContent(content, true)
	if err != nil {
		return b, err
	}
	if len(blocks) > 0 {
		if b.Content, err = json.Marshal(blocks); err != nil {
			return b, fmt.Errorf("encoding tool result: %w", err)
		}
	}
	return b, nil
}

// anthropicSystem renders system blocks as the plain string Anthropic also
// accepts when that loses nothing, and as text blocks otherwise.
func anthropicSystem(blocks []anthropicBlock) (json.RawMessage, error) {
	switch {
	case len(blocks) == 0:
		return nil, nil
	case len(blocks) == 1 && blocks[0].CacheControl == nil:
		return json.Marshal(blocks[0].Text)
	default:
		return json.Marshal(blocks)
	}
}

func anthropicToolsFromChat(tools gjson.Result) ([]anthropicTool, error) {
	var out []anthropicTool
	for i, t := range tools.Array() {
		if typ := t.Get("type").String(); typ != "function" {
			return nil, fmt.Errorf("tools[%d]: unsupported tool type %q", i, typ)
		}
		tool := anthropicTool{
			Name:        t.Get("function.name").String(),
			Description: t.Get("function.description").String(),
			InputSchema: anthropicEmptySchema,
		}
		if tool.Name == "" {
			return nil, fmt.Errorf("tools[%d]: function.name is required", i)
		}
		if p := t.Get("function.parameters"); p.IsObject() {
			tool.InputSchema = json.RawMessage(p.Raw)
		}
		out = append(out, tool)
	}
	return out, nil
}

func anthropicToolChoiceFromChat(choice, parallel gjson.Result) (*anthropicToolChoice, error) {
	var tc *anthropicToolChoice
	switch {
	case !choice.Exists() || choice.Type == gjson.Null:
	case choice.Type == gjson.String:
		kind, ok := map[string]string{"auto": "auto", "required": "any", "none": "none"}[choice.Str]
		if !ok {
			return nil, fmt.Errorf("tool_choice: unsupported value %q", choice.Str)
		}
		tc = &anthropicToolChoice{Type: kind}
	case choice.IsObject() && choice.Get("type").String() == "function":
		name := choice.Get("function.name").String()
		if name == "" {
			return nil, errors.New("tool_choice: function.name is required")
		}
		tc = &anthropicToolChoice{Type: "tool", Name: name}
	default:
		return nil, errors.New(`tool_choice: must be "auto", "required", "none" or a function choice`)
	}
	if parallel.Type == gjson.False {
		if tc == nil {
			tc = &anthropicToolChoice{Type: "auto"}
		}
		// "none" has no parallel setting: no tool is called at all.
		tc.DisableParallelToolUse = tc.Type != "none"
	}
	return tc, nil
}

// effortFromReasoningEffort maps OpenAI's reasoning_effort to Anthropic's
// output_config.effort; "none" and unknown levels have no equivalent.
func effortFromReasoningEffort(effort string) string {
	switch effort {
	case "minimal", "low":
		return "low"
	case "medium", "high":
		return effort
	case "xhigh":
		return "max"
	}
	return ""
}

// Interface guards
var _ Translator = (*openaiToAnthropic)(nil)
