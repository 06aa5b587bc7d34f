package llmgateway

// Translation between the OpenAI Chat Completions API and the Anthropic
// Messages API, so that either kind of client can reach either kind of
// provider. Everything here is pure: bodies in, bodies out, no I/O.
//
// Fields with no counterpart on the other side are dropped rather than
// rejected, because clients send them by default and failing the request
// would break them. Dropped from a chat request bound for Anthropic:
// frequency_penalty, presence_penalty, logit_bias, logprobs, top_logprobs,
// seed, response_format, reasoning_effort, verbosity, service_tier, store,
// metadata, modalities, audio, prediction, web_search_options,
// prompt_cache_key, safety_identifier, stream_options (the caller reads
// include_usage itself), the legacy functions/function_call, a message's
// "name", an image's "detail" and a tool's "strict". Dropped from an
// Anthropic request bound for an OpenAI-compatible provider: top_k (OpenAI
// rejects it), thinking, service_tier, container, mcp_servers, every
// cache_control, citations, a tool_result's is_error, and the assistant's
// thinking and redacted_thinking blocks (only Anthropic can verify their
// signatures). Content that cannot be carried over (audio, file ids, server
// tools) is an error instead: dropping it would change what the model sees.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/tidwall/gjson"
)

// tokenUsage is what a provider reported.
type tokenUsage struct {
	prompt, completion int64 // prompt includes Anthropic cache creation + cache read input tokens
	cachedPrompt       int64 // cache_read_input_tokens (OpenAI: prompt_tokens_details.cached_tokens)
	seen               bool
}

// Anthropic Messages wire types, limited to what the translation writes.

type anthropicRequest struct {
	Model         string               `json:"model"`
	System        json.RawMessage      `json:"system,omitempty"`
	Messages      []anthropicMessage   `json:"messages"`
	MaxTokens     int64                `json:"max_tokens"`
	StopSequences []string             `json:"stop_sequences,omitempty"`
	Temperature   json.RawMessage      `json:"temperature,omitempty"`
	TopP          json.RawMessage      `json:"top_p,omitempty"`
	TopK          json.RawMessage      `json:"top_k,omitempty"`
	Stream        bool                 `json:"stream,omitempty"`
	Metadata      *anthropicMetadata   `json:"metadata,omitempty"`
	Tools         []anthropicTool      `json:"tools,omitempty"`
	ToolChoice    *anthropicToolChoice `json:"tool_choice,omitempty"`
}

type anthropicMetadata struct {
	UserID string `json:"user_id"`
}

type anthropicMessage struct {
	Role    string           `json:"role"`
	Content []anthropicBlock `json:"content"`
}

// anthropicBlock is a content block of any type; the type decides which
// fields are set. Empty text blocks are never built (Anthropic rejects them).
type anthropicBlock struct {
	Type         string           `json:"type"`
	Text         string           `json:"text,omitempty"`
	Source       *anthropicSource `json:"source,omitempty"`
	ID           string           `json:"id,omitempty"`
	Name         string           `json:"name,omitempty"`
	Input        json.RawMessage  `json:"input,omitempty"`
	ToolUseID    string           `json:"tool_use_id,omitempty"`
	Content      json.RawMessage  `json:"content,omitempty"`
	CacheControl json.RawMessage  `json:"cache_control,omitempty"`
}

type anthropicSource struct {
	Type      string `json:"type"`
	MediaType string `json:"media_type,omitempty"`
	Data      string `json:"data,omitempty"`
	URL       string `json:"url,omitempty"`
}

type anthropicTool struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	InputSchema json.RawMessage `json:"input_schema"`
}

type anthropicToolChoice struct {
	Type                   string `json:"type"`
	Name                   string `json:"name,omitempty"`
	DisableParallelToolUse bool   `json:"disable_parallel_tool_use,omitempty"`
}

type anthropicResponse struct {
	ID           string           `json:"id"`
	Type         string           `json:"type"`
	Role         string           `json:"role"`
	Model        string           `json:"model"`
	Content      []anthropicBlock `json:"content"`
	StopReason   string           `json:"stop_reason"`
	StopSequence *string          `json:"stop_sequence"`
	Usage        anthropicUsage   `json:"usage"`
}

type anthropicUsage struct {
	InputTokens              int64 `json:"input_tokens"`
	OutputTokens             int64 `json:"output_tokens"`
	CacheCreationInputTokens int64 `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int64 `json:"cache_read_input_tokens"`
}

// OpenAI Chat Completions wire types, limited to what the translation writes.

type openaiRequest struct {
	Model             string               `json:"model"`
	Messages          []openaiMessage      `json:"messages"`
	MaxTokens         int64                `json:"max_tokens,omitempty"`
	Temperature       json.RawMessage      `json:"temperature,omitempty"`
	TopP              json.RawMessage      `json:"top_p,omitempty"`
	Stop              []string             `json:"stop,omitempty"`
	Stream            bool                 `json:"stream,omitempty"`
	StreamOptions     *openaiStreamOptions `json:"stream_options,omitempty"`
	User              string               `json:"user,omitempty"`
	Tools             []openaiTool         `json:"tools,omitempty"`
	ToolChoice        any                  `json:"tool_choice,omitempty"`
	ParallelToolCalls *bool                `json:"parallel_tool_calls,omitempty"`
}

type openaiStreamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// openaiMessage serves requests and responses; Content is a string, a
// []openaiPart, or nil (JSON null, for an assistant turn of tool calls only).
type openaiMessage struct {
	Role             string           `json:"role"`
	Content          any              `json:"content"`
	ReasoningContent string           `json:"reasoning_content,omitempty"`
	ToolCalls        []openaiToolCall `json:"tool_calls,omitempty"`
	ToolCallID       string           `json:"tool_call_id,omitempty"`
}

type openaiPart struct {
	Type     string          `json:"type"`
	Text     string          `json:"text,omitempty"`
	ImageURL *openaiImageURL `json:"image_url,omitempty"`
	File     *openaiFile     `json:"file,omitempty"`
}

type openaiImageURL struct {
	URL string `json:"url"`
}

type openaiFile struct {
	Filename string `json:"filename,omitempty"`
	FileData string `json:"file_data"`
}

type openaiToolCall struct {
	ID       string         `json:"id"`
	Type     string         `json:"type"`
	Function openaiFunction `json:"function"`
}

type openaiFunction struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

type openaiTool struct {
	Type     string             `json:"type"`
	Function openaiFunctionSpec `json:"function"`
}

type openaiFunctionSpec struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
}

type openaiNamedToolChoice struct {
	Type     string `json:"type"`
	Function struct {
		Name string `json:"name"`
	} `json:"function"`
}

type openaiCompletion struct {
	ID      string         `json:"id"`
	Object  string         `json:"object"`
	Created int64          `json:"created"`
	Model   string         `json:"model"`
	Choices []openaiChoice `json:"choices"`
	Usage   *openaiUsage   `json:"usage,omitempty"`
}

type openaiChoice struct {
	Index        int           `json:"index"`
	Message      openaiMessage `json:"message"`
	FinishReason string        `json:"finish_reason"`
}

type openaiUsage struct {
	PromptTokens        int64               `json:"prompt_tokens"`
	CompletionTokens    int64               `json:"completion_tokens"`
	TotalTokens         int64               `json:"total_tokens"`
	PromptTokensDetails openaiPromptDetails `json:"prompt_tokens_details"`
}

type openaiPromptDetails struct {
	CachedTokens int64 `json:"cached_tokens"`
}

// anthropicEmptySchema stands in for a function tool without parameters: Anthropic
// requires an input_schema on every tool.
var anthropicEmptySchema = json.RawMessage(`{"type":"object","properties":{}}`)

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

// chatResponseFromAnthropic translates an Anthropic Messages response into
// an OpenAI chat.completion reporting clientModel.
func chatResponseFromAnthropic(body []byte, clientModel string, created int64) ([]byte, tokenUsage, error) {
	root, err := translationInput(body)
	if err != nil {
		return nil, tokenUsage{}, fmt.Errorf("anthropic response: %w", err)
	}
	if err := anthropicBodyError(root); err != nil {
		return nil, tokenUsage{}, fmt.Errorf("anthropic response: %w", err)
	}
	if t := root.Get("type").String(); t != "" && t != "message" {
		return nil, tokenUsage{}, fmt.Errorf("anthropic response: unexpected type %q", t)
	}
	var text, reasoning strings.Builder
	var calls []openaiToolCall
	for _, b := range root.Get("content").Array() {
		switch b.Get("type").String() {
		case "text":
			text.WriteString(b.Get("text").String())
		case "thinking":
			reasoning.WriteString(b.Get("thinking").String())
		case "tool_use":
			args, err := toolArguments(b.Get("input"))
			if err != nil {
				return nil, tokenUsage{}, fmt.Errorf("anthropic response: tool_use %q input: %w", b.Get("id").String(), err)
			}
			calls = append(calls, openaiToolCall{
				ID:       b.Get("id").String(),
				Type:     "function",
				Function: openaiFunction{Name: b.Get("name").String(), Arguments: args},
			})
		}
		// redacted_thinking and server tool blocks have no chat equivalent.
	}
	msg := openaiMessage{Role: "assistant", ReasoningContent: reasoning.String(), ToolCalls: calls}
	if text.Len() > 0 || len(calls) == 0 {
		msg.Content = text.String()
	}
	usage := tokenUsageFromAnthropic(root.Get("usage"))
	resp := openaiCompletion{
		ID:      "chatcmpl-" + root.Get("id").String(),
		Object:  "chat.completion",
		Created: created,
		Model:   clientModel,
		Choices: []openaiChoice{{Message: msg, FinishReason: finishReasonFromAnthropic(root.Get("stop_reason").String())}},
	}
	if usage.seen {
		resp.Usage = openaiUsageOf(usage)
	}
	out, err := json.Marshal(resp)
	if err != nil {
		return nil, tokenUsage{}, fmt.Errorf("encoding chat response: %w", err)
	}
	return out, usage, nil
}

// tokenUsageFromAnthropic reads a Messages usage object. Anthropic counts
// cached input apart from input_tokens; the prompt total adds it back.
func tokenUsageFromAnthropic(u gjson.Result) tokenUsage {
	if !u.IsObject() {
		return tokenUsage{}
	}
	read := u.Get("cache_read_input_tokens").Int()
	return tokenUsage{
		prompt:       u.Get("input_tokens").Int() + u.Get("cache_creation_input_tokens").Int() + read,
		completion:   u.Get("output_tokens").Int(),
		cachedPrompt: read,
		seen:         true,
	}
}

// tokenUsageFromOpenAI reads a chat usage object.
func tokenUsageFromOpenAI(u gjson.Result) tokenUsage {
	if !u.IsObject() {
		return tokenUsage{}
	}
	return tokenUsage{
		prompt:       u.Get("prompt_tokens").Int(),
		completion:   u.Get("completion_tokens").Int(),
		cachedPrompt: u.Get("prompt_tokens_details.cached_tokens").Int(),
		seen:         true,
	}
}

func openaiUsageOf(u tokenUsage) *openaiUsage {
	return &openaiUsage{
		PromptTokens:        u.prompt,
		CompletionTokens:    u.completion,
		TotalTokens:         u.prompt + u.completion,
		PromptTokensDetails: openaiPromptDetails{CachedTokens: u.cachedPrompt},
	}
}

// anthropicUsageOf splits a prompt total back into Anthropic's fields.
// Cache writes are not reported by OpenAI-compatible providers, so the
// uncached rest all counts as input_tokens.
func anthropicUsageOf(u tokenUsage) anthropicUsage {
	return anthropicUsage{
		InputTokens:          max(u.prompt-u.cachedPrompt, 0),
		OutputTokens:         u.completion,
		CacheReadInputTokens: u.cachedPrompt,
	}
}

func finishReasonFromAnthropic(stopReason string) string {
	switch stopReason {
	case "max_tokens", "model_context_window_exceeded":
		return "length"
	case "tool_use":
		return "tool_calls"
	case "refusal":
		return "content_filter"
	default: // end_turn, stop_sequence, pause_turn
		return "stop"
	}
}

func stopReasonFromOpenAI(finishReason string) string {
	switch finishReason {
	case "length":
		return "max_tokens"
	case "tool_calls", "function_call":
		return "tool_use"
	case "content_filter":
		return "refusal"
	default:
		return "end_turn"
	}
}

// chatRequestFromAnthropic translates an Anthropic Messages request, as the
// Anthropic SDKs send it, into an OpenAI chat request for model.
func chatRequestFromAnthropic(body []byte, model string) ([]byte, error) {
	root, err := translationInput(body)
	if err != nil {
		return nil, fmt.Errorf("messages request: %w", err)
	}
	req := openaiRequest{Model: model, MaxTokens: root.Get("max_tokens").Int()}
	if sys := root.Get("system"); sys.Exists() && sys.Type != gjson.Null {
		text, err := joinedBlockText(sys)
		if err != nil {
			return nil, fmt.Errorf("messages request: system: %w", err)
		}
		if text != "" {
			req.Messages = append(req.Messages, openaiMessage{Role: "system", Content: text})
		}
	}
	msgs := root.Get("messages")
	if !msgs.IsArray() {
		return nil, errors.New("messages request: messages must be an array")
	}
	for i, m := range msgs.Array() {
		var err error
		switch r := m.Get("role").String(); r {
		case "user":
			req.Messages, err = appendOpenAIUserTurn(req.Messages, m.Get("content"))
		case "assistant":
			var msg openaiMessage
			msg, err = openaiAssistantTurn(m.Get("content"))
			req.Messages = append(req.Messages, msg)
		default:
			err = fmt.Errorf("unsupported role %q", r)
		}
		if err != nil {
			return nil, fmt.Errorf("messages request: messages[%d]: %w", i, err)
		}
	}
	if req.Tools, err = openaiToolsFromAnthropic(root.Get("tools")); err != nil {
		return nil, fmt.Errorf("messages request: %w", err)
	}
	if len(req.Tools) > 0 {
		if req.ToolChoice, req.ParallelToolCalls, err = openaiToolChoiceFromAnthropic(root.Get("tool_choice")); err != nil {
			return nil, fmt.Errorf("messages request: %w", err)
		}
	}
	if req.Stop, err = stopList(root.Get("stop_sequences")); err != nil {
		return nil, fmt.Errorf("messages request: stop_sequences: %w", err)
	}
	for field, dst := range map[string]*json.RawMessage{"temperature": &req.Temperature, "top_p": &req.TopP} {
		if *dst, err = numericParam(root.Get(field)); err != nil {
			return nil, fmt.Errorf("messages request: %s: %w", field, err)
		}
	}
	req.User = root.Get("metadata.user_id").String()
	if root.Get("stream").Type == gjson.True {
		req.Stream = true
		req.StreamOptions = &openaiStreamOptions{IncludeUsage: true}
	}
	out, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encoding chat request: %w", err)
	}
	return out, nil
}

// appendOpenAIUserTurn converts an Anthropic user turn. Its tool_result
// blocks become tool messages, which must directly follow the assistant's
// tool calls, so they come first; Anthropic already requires that order.
// The rest, with any images the tool results held (tool messages carry only
// text), becomes one user message.
func appendOpenAIUserTurn(msgs []openaiMessage, content gjson.Result) ([]openaiMessage, error) {
	if content.Type == gjson.String {
		return append(msgs, openaiMessage{Role: "user", Content: content.Str}), nil
	}
	if !content.IsArray() {
		return nil, errors.New("content must be a string or an array of blocks")
	}
	var parts []openaiPart
	for j, b := range content.Array() {
		if b.Get("type").String() != "tool_result" {
			p, err := openaiPartFromBlock(b)
			if err != nil {
				return nil, fmt.Errorf("content[%d]: %w", j, err)
			}
			parts = append(parts, p...)
			continue
		}
		text, media, err := splitToolResult(b.Get("content"))
		if err != nil {
			return nil, fmt.Errorf("content[%d]: tool_result: %w", j, err)
		}
		msgs = append(msgs, openaiMessage{Role: "tool", ToolCallID: b.Get("tool_use_id").String(), Content: text})
		parts = append(parts, media...)
	}
	switch {
	case len(parts) == 1 && parts[0].Type == "text":
		msgs = append(msgs, openaiMessage{Role: "user", Content: parts[0].Text})
	case len(parts) > 0:
		msgs = append(msgs, openaiMessage{Role: "user", Content: parts})
	}
	return msgs, nil
}

// openaiPartFromBlock converts a user content block to chat parts; an empty
// text block yields none.
func openaiPartFromBlock(b gjson.Result) ([]openaiPart, error) {
	switch t := b.Get("type").String(); t {
	case "text":
		if text := b.Get("text").String(); text != "" {
			return []openaiPart{{Type: "text", Text: text}}, nil
		}
		return nil, nil
	case "image":
		url, err := urlFromAnthropicSource(b.Get("source"))
		if err != nil {
			return nil, fmt.Errorf("image: %w", err)
		}
		return []openaiPart{{Type: "image_url", ImageURL: &openaiImageURL{URL: url}}}, nil
	case "document":
		src := b.Get("source")
		switch src.Get("type").String() {
		case "text":
			return []openaiPart{{Type: "text", Text: src.Get("data").String()}}, nil
		case "base64":
			url, _ := urlFromAnthropicSource(src)
			return []openaiPart{{Type: "file", File: &openaiFile{Filename: b.Get("title").String(), FileData: url}}}, nil
		}
		return nil, fmt.Errorf("document: unsupported source type %q", src.Get("type").String())
	default:
		return nil, fmt.Errorf("unsupported block type %q", t)
	}
}

func urlFromAnthropicSource(src gjson.Result) (string, error) {
	switch t := src.Get("type").String(); t {
	case "base64":
		return "data:" + src.Get("media_type").String() + ";base64," + src.Get("data").String(), nil
	case "url":
		return src.Get("url").String(), nil
	default:
		return "", fmt.Errorf("unsupported source type %q", t)
	}
}

// splitToolResult separates a tool_result's content into the text of the
// tool message and the images that must travel in a user message.
func splitToolResult(content gjson.Result) (string, []openaiPart, error) {
	if content.Type == gjson.String || !content.Exists() || content.Type == gjson.Null {
		return content.String(), nil, nil
	}
	if !content.IsArray() {
		return "", nil, errors.New("content must be a string or an array of blocks")
	}
	var texts []string
	var media []openaiPart
	for _, b := range content.Array() {
		parts, err := openaiPartFromBlock(b)
		if err != nil {
			return "", nil, err
		}
		for _, p := range parts {
			if p.Type == "text" {
				texts = append(texts, p.Text)
			} else {
				media = append(media, p)
			}
		}
	}
	return strings.Join(texts, "\n"), media, nil
}

// openaiAssistantTurn converts an Anthropic assistant turn: text joined into
// content, tool_use blocks into tool_calls, thinking dropped.
func openaiAssistantTurn(content gjson.Result) (openaiMessage, error) {
	msg := openaiMessage{Role: "assistant"}
	if content.Type == gjson.String {
		msg.Content = content.Str
		return msg, nil
	}
	if !content.IsArray() {
		return msg, errors.New("content must be a string or an array of blocks")
	}
	var text strings.Builder
	for j, b := range content.Array() {
		switch t := b.Get("type").String(); t {
		case "text":
			text.WriteString(b.Get("text").String())
		case "thinking", "redacted_thinking":
		case "tool_use":
			args, err := toolArguments(b.Get("input"))
			if err != nil {
				return msg, fmt.Errorf("content[%d]: tool_use input: %w", j, err)
			}
			msg.ToolCalls = append(msg.ToolCalls, openaiToolCall{
				ID:       b.Get("id").String(),
				Type:     "function",
				Function: openaiFunction{Name: b.Get("name").String(), Arguments: args},
			})
		default:
			return msg, fmt.Errorf("content[%d]: unsupported block type %q", j, t)
		}
	}
	if text.Len() > 0 || len(msg.ToolCalls) == 0 {
		msg.Content = text.String()
	}
	return msg, nil
}

func openaiToolsFromAnthropic(tools gjson.Result) ([]openaiTool, error) {
	var out []openaiTool
	for i, t := range tools.Array() {
		if typ := t.Get("type").String(); typ != "" && typ != "custom" {
			return nil, fmt.Errorf("tools[%d]: server tool %q is only available on Anthropic", i, typ)
		}
		spec := openaiFunctionSpec{Name: t.Get("name").String(), Description: t.Get("description").String()}
		if spec.Name == "" {
			return nil, fmt.Errorf("tools[%d]: name is required", i)
		}
		if s := t.Get("input_schema"); s.IsObject() {
			spec.Parameters = json.RawMessage(s.Raw)
		}
		out = append(out, openaiTool{Type: "function", Function: spec})
	}
	return out, nil
}

func openaiToolChoiceFromAnthropic(choice gjson.Result) (any, *bool, error) {
	if !choice.Exists() || choice.Type == gjson.Null {
		return nil, nil, nil
	}
	var parallel *bool
	if choice.Get("disable_parallel_tool_use").Bool() {
		parallel = new(bool)
	}
	switch t := choice.Get("type").String(); t {
	case "auto":
		return "auto", parallel, nil
	case "any":
		return "required", parallel, nil
	case "none":
		return "none", nil, nil
	case "tool":
		named := openaiNamedToolChoice{Type: "function"}
		named.Function.Name = choice.Get("name").String()
		return named, parallel, nil
	default:
		return nil, nil, fmt.Errorf("tool_choice: unsupported type %q", t)
	}
}

// anthropicResponseFromChat translates an OpenAI chat.completion into an
// Anthropic Messages response reporting clientModel. Only the first choice
// is kept; reasoning text is dropped, since a thinking block would need a
// signature only Anthropic can make.
func anthropicResponseFromChat(body []byte, clientModel string) ([]byte, tokenUsage, error) {
	root, err := translationInput(body)
	if err != nil {
		return nil, tokenUsage{}, fmt.Errorf("chat response: %w", err)
	}
	if e := root.Get("error"); e.Exists() && e.Type != gjson.Null {
		return nil, tokenUsage{}, fmt.Errorf("chat response: provider error: %s", e.Get("message").String())
	}
	choice := root.Get("choices.0")
	if !choice.Exists() {
		return nil, tokenUsage{}, errors.New("chat response: no choices")
	}
	msg := choice.Get("message")
	resp := anthropicResponse{
		ID:         "msg_" + strings.TrimPrefix(root.Get("id").String(), "chatcmpl-"),
		Type:       "message",
		Role:       "assistant",
		Model:      clientModel,
		Content:    []anthropicBlock{},
		StopReason: stopReasonFromOpenAI(choice.Get("finish_reason").String()),
	}
	text, err := joinedBlockText(msg.Get("content"))
	if err != nil {
		return nil, tokenUsage{}, fmt.Errorf("chat response: content: %w", err)
	}
	if text == "" {
		text = msg.Get("refusal").String()
	}
	if text != "" {
		resp.Content = append(resp.Content, anthropicBlock{Type: "text", Text: text})
	}
	for k, call := range msg.Get("tool_calls").Array() {
		input, err := toolInputObject(call.Get("function.arguments").String())
		if err != nil {
			return nil, tokenUsage{}, fmt.Errorf("chat response: tool_calls[%d]: arguments: %w", k, err)
		}
		resp.Content = append(resp.Content, anthropicBlock{
			Type:  "tool_use",
			ID:    call.Get("id").String(),
			Name:  call.Get("function.name").String(),
			Input: input,
		})
	}
	usage := tokenUsageFromOpenAI(root.Get("usage"))
	resp.Usage = anthropicUsageOf(usage)
	out, err := json.Marshal(resp)
	if err != nil {
		return nil, tokenUsage{}, fmt.Errorf("encoding anthropic response: %w", err)
	}
	return out, usage, nil
}

// anthropicErrorBody renders an error in the shape Anthropic clients parse,
// with the error type Anthropic uses for that status.
func anthropicErrorBody(status int, message string) []byte {
	body := map[string]any{"type": "error", "error": map[string]string{"type": anthropicErrorType(status), "message": message}}
	out, _ := json.Marshal(body) // strings only: cannot fail
	return out
}

// anthropicErrorType is the error type Anthropic uses for an HTTP status.
func anthropicErrorType(status int) string {
	var kind string
	switch {
	case status == 401:
		kind = "authentication_error"
	case status == 402:
		kind = "billing_error"
	case status == 403:
		kind = "permission_error"
	case status == 404:
		kind = "not_found_error"
	case status == 413:
		kind = "request_too_large"
	case status == 429:
		kind = "rate_limit_error"
	case status == 529:
		kind = "overloaded_error"
	case status >= 500:
		kind = "api_error"
	default:
		kind = "invalid_request_error"
	}
	return kind
}

// anthropicBodyError reports an Anthropic error body as an error.
func anthropicBodyError(root gjson.Result) error {
	if root.Get("type").String() != "error" {
		return nil
	}
	return &providerError{kind: root.Get("error.type").String(), message: root.Get("error.message").String()}
}

// providerError is an error the provider reported in place of (or in
// the middle of) a response; kind is the provider's error type, if any.
type providerError struct {
	kind, message string
}

func (e *providerError) Error() string {
	if e.kind == "" {
		return "provider error: " + e.message
	}
	return "provider error " + e.kind + ": " + e.message
}

func translationInput(body []byte) (gjson.Result, error) {
	if !gjson.ValidBytes(body) {
		return gjson.Result{}, errors.New("invalid JSON")
	}
	root := gjson.ParseBytes(body)
	if !root.IsObject() {
		return gjson.Result{}, errors.New("body must be a JSON object")
	}
	return root, nil
}

// joinedBlockText reads a string, or the text of an array of text blocks/parts.
func joinedBlockText(v gjson.Result) (string, error) {
	switch {
	case !v.Exists() || v.Type == gjson.Null:
		return "", nil
	case v.Type == gjson.String:
		return v.Str, nil
	case !v.IsArray():
		return "", errors.New("must be a string or an array of text blocks")
	}
	var texts []string
	for _, b := range v.Array() {
		if t := b.Get("type").String(); t != "text" {
			return "", fmt.Errorf("unsupported block type %q", t)
		}
		if s := b.Get("text").String(); s != "" {
			texts = append(texts, s)
		}
	}
	return strings.Join(texts, "\n"), nil
}

// stopList reads a string or an array of strings; null means none.
func stopList(v gjson.Result) ([]string, error) {
	switch {
	case !v.Exists() || v.Type == gjson.Null:
		return nil, nil
	case v.Type == gjson.String:
		if v.Str == "" {
			return nil, nil
		}
		return []string{v.Str}, nil
	case !v.IsArray():
		return nil, errors.New("must be a string or an array of strings")
	}
	var out []string
	for _, s := range v.Array() {
		if s.Type != gjson.String {
			return nil, errors.New("must be a string or an array of strings")
		}
		out = append(out, s.Str)
	}
	return out, nil
}

// numericParam passes a numeric field through unchanged, so that values keep
// their exact spelling; null means unset.
func numericParam(v gjson.Result) (json.RawMessage, error) {
	switch v.Type {
	case gjson.Null:
		return nil, nil
	case gjson.Number:
		return json.RawMessage(v.Raw), nil
	default:
		return nil, errors.New("must be a number")
	}
}

// toolArguments renders a tool input object as the compact JSON string chat
// uses for arguments; a missing input is an empty object.
func toolArguments(v gjson.Result) (string, error) {
	if !v.Exists() || v.Type == gjson.Null {
		return "{}", nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, []byte(v.Raw)); err != nil {
		return "", err
	}
	return buf.String(), nil
}
