package llmgateway

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// Default upstream limits.
const (
	defaultTimeout     = 10 * time.Minute
	defaultDialTimeout = 10 * time.Second
)

// upstream is a configured provider ready to take requests. The gateway
// talks to providers with its own http.Transport rather than an embedded
// reverse_proxy: every attempt must produce exactly one usage record, 5xx
// and auth failures must be replaced by the contract's errors while other
// 4xx pass through, and a failure mid-stream must become an SSE error
// event. Those are simplest where the gateway owns the round trip.
type upstream struct {
	name       string
	baseURLs   []*url.URL
	apiKey     string
	auth       authStyle
	format     apiFormat
	apiVersion string
	models     []string
	responses  bool // serves the Responses API
	// maxCompletionTokens: see knownProvider.
	maxCompletionTokens bool
	timeout             time.Duration
	client              *http.Client
	next                atomic.Uint64 // round-robin position

	dialTimeout   time.Duration // for the operator's error causes
	headerTimeout time.Duration
	warns         warnLimiter // of failure warnings
}

// serves reports whether the provider answers an endpoint of kind in the
// client's own API, so that a call passes through untranslated: an
// Anthropic-format provider serves only Messages; an OpenAI-compatible one
// every OpenAI endpoint, the Responses API where it has it.
func (up *upstream) serves(kind endpointKind) bool {
	if up.format == formatAnthropic {
		return kind == kindMessages
	}
	return kind != kindResponses || up.responses
}

// newUpstream resolves placeholders and builds the provider's transport.
func newUpstream(name string, cfg *ProviderConfig, repl *caddy.Replacer) (*upstream, error) {
	known := knownProviders[name]
	u := &upstream{
		name:                name,
		apiKey:              repl.ReplaceKnown(cfg.APIKey, ""),
		auth:                known.auth,
		format:              known.format,
		apiVersion:          repl.ReplaceKnown(cfg.APIVersion, ""),
		models:              cfg.Models,
		responses:           known.responses || cfg.ResponsesAPI,
		maxCompletionTokens: known.maxCompletionTokens,
		timeout:             time.Duration(cfg.Timeout),
	}
	if u.timeout == 0 {
		u.timeout = defaultTimeout
	}
	switch cfg.APIFormat {
	case "anthropic":
		u.format, u.auth = formatAnthropic, authAnthropic
	case "openai":
		u.format = formatOpenAI
		if u.auth == authAnthropic {
			u.auth = authBearer // Anthropic's OpenAI-compatible endpoint
		}
	}
	raw := cfg.BaseURLs
	if len(raw) == 0 {
		raw = []string{known.baseURL}
	}
	for _, s := range raw {
		parsed, err := url.Parse(repl.ReplaceKnown(s, ""))
		if err != nil {
			return nil, fmt.Errorf("provider %s: base_url: %w", name, err)
		}
		parsed.Path = strings.TrimSuffix(parsed.Path, "/")
		u.baseURLs = append(u.baseURLs, parsed)
	}
	dialTimeout := time.Duration(cfg.DialTimeout)
	if dialTimeout == 0 {
		dialTimeout = defaultDialTimeout
	}
	u.dialTimeout, u.headerTimeout = dialTimeout, time.Duration(cfg.ResponseHeaderTimeout)
	transport := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          512,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   dialTimeout,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: time.Duration(cfg.ResponseHeaderTimeout),
	}
	u.client = &http.Client{
		Transport: transport,
		// Never follow redirects: a redirect would resend the provider key.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return u, nil
}

// endpoint returns the URL of path (e.g. "/chat/completions") with the
// query rawQuery on the next base URL in round-robin order, offset by
// attempt for failover.
func (u *upstream) endpoint(path, rawQuery string, attempt uint64, start uint64) string {
	base := u.baseURLs[(start+attempt)%uint64(len(u.baseURLs))]
	target := *base
	target.Path = base.Path + path
	target.RawQuery = rawQuery
	if u.apiVersion != "" {
		q := target.Query()
		q.Set("api-version", u.apiVersion)
		target.RawQuery = q.Encode()
	}
	return target.String()
}

// setAuth puts the provider key on req in the provider's style; client
// carries the headers an Anthropic client chose (version, betas).
func (u *upstream) setAuth(h, client http.Header) {
	if u.auth == authAnthropic {
		version := client.Get("Anthropic-Version")
		if version == "" {
			version = anthropicVersion
		}
		h.Set("Anthropic-Version", version)
		if beta := client.Get("Anthropic-Beta"); beta != "" {
			h.Set("Anthropic-Beta", beta)
		}
	}
	if u.apiKey == "" {
		return
	}
	switch u.auth {
	case authAnthropic:
		h.Set("X-Api-Key", u.apiKey)
	case authAPIKey:
		h.Set("Api-Key", u.apiKey)
	default:
		h.Set("Authorization", "Bearer "+u.apiKey)
	}
}

// redact removes the provider key from text before it is logged.
func (u *upstream) redact(s string) string {
	if u.apiKey == "" {
		return s
	}
	return strings.ReplaceAll(s, u.apiKey, "[REDACTED]")
}

// redactBytes is redact for a body.
func (u *upstream) redactBytes(b []byte) []byte {
	if u.apiKey == "" {
		return b
	}
	return bytes.ReplaceAll(b, []byte(u.apiKey), []byte("[REDACTED]"))
}

func (u *upstream) close() {
	u.client.CloseIdleConnections()
}
