package llmgateway

import (
	"encoding/json"
)

// tokenUsage is what a provider reported.
type tokenUsage struct {
	prompt, completion int64 // prompt includes Anthropic cache creation + cache read input tokens
	cachedPrompt       int64 // cache_read_input_tokens (OpenAI: prompt_tokens_details.cached_tokens)
	seen               bool
	invalid            string // why the provider's usage cannot be billed (invalidUsage)
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
	OutputConfig  *anthropicOutput     `json:"output_config,omitempty"`
}

type anthropicOutput struct {
	Effort string `json:"effort,omitempty"`
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
	ReasoningEffort   string               `json:"reasoning_effort,omitempty"`
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
