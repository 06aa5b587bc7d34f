package llmgateway

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/caddyserver/caddy/v2"
)

// ProviderConfig is one upstream LLM provider.
type ProviderConfig struct {
	// The provider's API key, sent in the provider's own auth style. Use a
	// placeholder such as `{env.OPENAI_API_KEY}`; it is resolved when the
	// config is loaded.
	APIKey string `json:"api_key,omitempty"`

	// Root URLs of the provider's OpenAI-compatible API (the part before
	// `/chat/completions`). Several URLs are load balanced. Default: the
	// known provider's public endpoint; required for any other name.
	BaseURLs []string `json:"base_urls,omitempty"`

	// Models served by this provider, listed by `/v1/models` as
	// `provider:model` (priced models are listed too).
	Models []string `json:"models,omitempty"`

	// Limit for a whole upstream call, streaming included. Default: 10m.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// Limit for connecting to the provider. Default: 10s.
	DialTimeout caddy.Duration `json:"dial_timeout,omitempty"`

	// Limit for the provider's response headers (the first byte) after the
	// request is sent. Default: the whole-call timeout.
	ResponseHeaderTimeout caddy.Duration `json:"response_header_timeout,omitempty"`

	// API version sent as `api-version` (Azure OpenAI).
	APIVersion string `json:"api_version,omitempty"`

	// The provider serves the OpenAI Responses API (`/v1/responses`).
	// Known for openai and azureopenai; set it for others that do.
	ResponsesAPI bool `json:"responses_api,omitempty"`

	// The API the provider speaks: `openai` (chat completions) or
	// `anthropic` (Messages). Default: anthropic for the provider named
	// anthropic, openai for every other.
	APIFormat string `json:"api_format,omitempty"`
}

// authStyle is how a provider expects its API key.
type authStyle int

const (
	authBearer    authStyle = iota // Authorization: Bearer <key>
	authAPIKey                     // api-key: <key> (Azure OpenAI)
	authAnthropic                  // x-api-key: <key> and anthropic-version
)

// apiFormat is the API a provider speaks.
type apiFormat int

const (
	formatOpenAI    apiFormat = iota // OpenAI chat completions (and embeddings)
	formatAnthropic                  // Anthropic Messages
)

// anthropicVersion is sent to Anthropic unless the client names another.
const anthropicVersion = "2023-06-01"

// knownProvider is a provider the gateway knows how to reach by name.
type knownProvider struct {
	baseURL   string // empty: the user must give one
	auth      authStyle
	format    apiFormat
	responses bool // serves the Responses API
	// maxCompletionTokens: translated requests name their limit
	// max_completion_tokens, as OpenAI's reasoning models require.
	maxCompletionTokens bool
}

// knownProviders are OpenAI-compatible providers that need only an API key
// (or, for local servers, nothing at all).
var knownProviders = map[string]knownProvider{
	"openai":      {baseURL: "https://api.openai.com/v1", responses: true, maxCompletionTokens: true},
	"mistral":     {baseURL: "https://api.mistral.ai/v1"},
	"groq":        {baseURL: "https://api.groq.com/openai/v1"},
	"deepseek":    {baseURL: "https://api.deepseek.com/v1"},
	"together":    {baseURL: "https://api.together.xyz/v1"},
	"fireworks":   {baseURL: "https://api.fireworks.ai/inference/v1"},
	"openrouter":  {baseURL: "https://openrouter.ai/api/v1"},
	"xai":         {baseURL: "https://api.x.ai/v1"},
	"perplexity":  {baseURL: "https://api.perplexity.ai"},
	"cerebras":    {baseURL: "https://api.cerebras.ai/v1"},
	"deepinfra":   {baseURL: "https://api.deepinfra.com/v1/openai"},
	"nebius":      {baseURL: "https://api.studio.nebius.com/v1"},
	"sambanova":   {baseURL: "https://api.sambanova.ai/v1"},
	"moonshot":    {baseURL: "https://api.moonshot.ai/v1"},
	"gemini":      {baseURL: "https://generativelanguage.googleapis.com/v1beta/openai"},
	"anthropic":   {baseURL: "https://api.anthropic.com/v1", auth: authAnthropic, format: formatAnthropic},
	"azureopenai": {auth: authAPIKey, responses: true, maxCompletionTokens: true},
	"ollama":      {baseURL: "http://localhost:11434/v1"},
	"vllm":        {baseURL: "http://localhost:8000/v1"},
	"lmstudio":    {baseURL: "http://localhost:1234/v1"},
	"llamacpp":    {baseURL: "http://localhost:8080/v1"},
}

// validProviderName reports whether name can be a `provider:` prefix.
func validProviderName(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func (p *ProviderConfig) validate(name string) error {
	if !validProviderName(name) {
		return fmt.Errorf("provider %q: name must be lowercase letters, digits, '-', '_' or '.'", name)
	}
	if p == nil {
		return fmt.Errorf("provider %q: empty configuration", name)
	}
	if _, known := knownProviders[name]; !known && len(p.BaseURLs) == 0 {
		return fmt.Errorf("provider %q: base_url is required for a provider the gateway does not know", name)
	}
	if kp, known := knownProviders[name]; known && kp.baseURL == "" && len(p.BaseURLs) == 0 {
		return fmt.Errorf("provider %q: base_url is required (the deployment URL)", name)
	}
	for _, u := range p.BaseURLs {
		if err := validateBaseURL(u); err != nil {
			return fmt.Errorf("provider %q: %w", name, err)
		}
	}
	if p.APIFormat != "" && p.APIFormat != "openai" && p.APIFormat != "anthropic" {
		return fmt.Errorf("provider %q: api_format must be openai or anthropic, got %q", name, p.APIFormat)
	}
	if p.Timeout < 0 || p.DialTimeout < 0 || p.ResponseHeaderTimeout < 0 {
		return fmt.Errorf("provider %q: timeouts must not be negative", name)
	}
	for _, m := range p.Models {
		if m == "" {
			return fmt.Errorf("provider %q: empty model name", name)
		}
	}
	return nil
}

func validateBaseURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("invalid base_url %q: expected an http or https URL", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("invalid base_url %q: no query or fragment allowed", raw)
	}
	return nil
}

// splitModel splits "provider:model" (or "provider/model") at the first
// ':' or '/'. Both parts must be non-empty.
func splitModel(s string) (provider, model string, ok bool) {
	i := strings.IndexAny(s, ":/")
	if i <= 0 || i == len(s)-1 {
		return "", "", false
	}
	return s[:i], s[i+1:], true
}

// normalizeModelKey turns "provider/model" or "provider:model" into the
// canonical "provider:model".
func normalizeModelKey(s string) (string, error) {
	provider, model, ok := splitModel(s)
	if !ok {
		return "", fmt.Errorf("model key %q must be 'provider:model'", s)
	}
	if !validProviderName(provider) {
		return "", fmt.Errorf("model key %q: invalid provider name %q", s, provider)
	}
	if len(s) > 256 || strings.ContainsFunc(model, isControl) {
		return "", fmt.Errorf("model key %q: invalid model name", s)
	}
	return provider + ":" + model, nil
}
