package translate

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// NewAnthropicToOpenAI is the translator of an Anthropic Messages client
// calling an OpenAI-compatible provider: Messages requests become chat
// requests, and chat answers and chunks become Messages answers and events.
func NewAnthropicToOpenAI(o Options) Translator { return &anthropicToOpenAI{opts: o} }

type anthropicToOpenAI struct{ opts Options }

func (t *anthropicToOpenAI) Request(body []byte) ([]byte, string, error) {
	out, err := chatRequestFromAnthropic(body, t.opts.Model)
	if err == nil && t.opts.MaxCompletionTokens {
		out, err = useMaxCompletionTokens(out)
	}
	return out, "/chat/completions", err
}

func (t *anthropicToOpenAI) Response(body []byte) (Response, error) {
	out, u, err := anthropicResponseFromChat(body, t.opts.ClientModel)
	return translatedResponse(out, u), err
}

func (t *anthropicToOpenAI) Stream() Stream {
	return &translatedStream{tr: newAnthropicFromChatStream(t.opts.ClientModel, t.opts.PromptEstimate)}
}

func (t *anthropicToOpenAI) StreamHeader(int, string) (int, string) { return translatedStreamHeader() }

// chatRequestFromAnthropic translates an Anthropic Messages request, as the
// Anthropic SDKs send it, into an OpenAI chat request for model.
func chatRequestFromAnthropic(body []byte, model string) ([]byte, error) {
	root, err := translationInput(body)
	if err != nil {
		return nil, fmt.Errorf("messages request: %w", err)
	}
	maxTokens := root.Get("max_tokens")
	if maxTokens.Exists() && maxTokens.Type != gjson.Null && (maxTokens.Type != gjson.Number || maxTokens.Int() < 1) {
		// gjson would read "100000" as 100000 and send it as a number the
		// reservation never counted on.
		return nil, errors.New("messages request: max_tokens must be a positive integer")
	}
	req := openaiRequest{Model: model, MaxTokens: maxTokens.Int()}
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
		case "system":
			// Claude Code sends one for model names it does not know.
			var text string
			if text, err = joinedBlockText(m.Get("content")); err == nil && text != "" {
				req.Messages = append(req.Messages, openaiMessage{Role: "system", Content: text})
			}
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
	req.ReasoningEffort = reasoningEffortFromAnthropic(root.Get("output_config.effort").String())
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
		// A newer choice the translation does not know: the provider's
		// default (auto) is the closest.
		return nil, parallel, nil
	}
}

// reasoningEffortFromAnthropic maps Anthropic's output_config.effort to
// OpenAI's reasoning_effort; "max" becomes "high", the highest level every
// OpenAI reasoning model accepts. Unknown levels are dropped.
func reasoningEffortFromAnthropic(effort string) string {
	switch effort {
	case "low", "medium", "high":
		return effort
	case "max":
		return "high"
	}
	return ""
}

// useMaxCompletionTokens renames a translated request's max_tokens to
// max_completion_tokens: OpenAI's reasoning models accept only that name,
// and every OpenAI model accepts it.
func useMaxCompletionTokens(body []byte) ([]byte, error) {
	v := gjson.GetBytes(body, "max_tokens")
	if !v.Exists() {
		return body, nil
	}
	body, err := sjson.DeleteBytes(body, "max_tokens")
	if err != nil {
		return nil, err
	}
	return sjson.SetRawBytes(body, "max_completion_tokens", []byte(v.Raw))
}

// Interface guards
var _ Translator = (*anthropicToOpenAI)(nil)
