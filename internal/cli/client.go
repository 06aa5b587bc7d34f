// Package cli is the `caddy llm-gateway` commands that manage a running
// gateway over its admin HTTP API: users, keys, budgets, pricing and the
// usage summary. It holds the HTTP client, the commands and their table
// output; the root package only registers them with Caddy. The master key
// comes from the environment (GATEWAY_MASTER_KEY), never from a flag, so it
// stays out of shell history and process lists.
package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Exit codes of the commands: scripts test them.
const (
	ExitOK          = 0
	ExitFailed      = 1 // unexpected failure, or a flag the parser refused
	ExitUsage       = 2 // bad arguments or flag values
	ExitNotFound    = 3 // the user, key, budget or price does not exist
	ExitAuth        = 4 // GATEWAY_MASTER_KEY unset, or refused by the gateway
	ExitUnreachable = 5 // the gateway does not answer at --url
	ExitRefused     = 6 // the gateway refused the request (validation, conflict, server error)
)

// MasterKeyEnv is the environment variable the commands read the master
// key from.
const MasterKeyEnv = "GATEWAY_MASTER_KEY"

// DefaultURL is the gateway the commands talk to without --url.
const DefaultURL = "http://localhost:8000"

// requestTimeout bounds one admin request.
const requestTimeout = 30 * time.Second

// maxResponse bounds what is read of one answer.
const maxResponse = 64 << 20

// Error is a failure with the exit code it ends the command with.
type Error struct {
	Code    int
	Message string
}

func (e *Error) Error() string { return e.Message }

func fail(code int, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Client calls a gateway's admin API with the master key.
type Client struct {
	base *url.URL
	key  string
	http *http.Client
}

// NewClient returns a client of the gateway at rawURL.
func NewClient(rawURL, key string) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(rawURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fail(ExitUsage, "--url %q is not an http:// or https:// URL", rawURL)
	}
	if key == "" {
		return nil, fail(ExitAuth, "no master key: set %s to the gateway's master key", MasterKeyEnv)
	}
	return &Client{base: u, key: key, http: &http.Client{Timeout: requestTimeout}}, nil
}

// Do sends method path (escaped; with query) and body (JSON-encoded when not nil)
// and returns the answer's body for a 2xx status. Any other answer is an
// *Error with the gateway's own message and the matching exit code.
func (c *Client) Do(ctx context.Context, method, path string, query url.Values, body any) ([]byte, error) {
	target := c.base.String() + path // path is escaped already (see escapeID)
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encoding the request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return nil, fail(ExitUsage, "building the request: %v", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fail(ExitUnreachable, "the gateway at %s does not answer: %s", c.base.Redacted(), transportCause(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return nil, fail(ExitUnreachable, "reading the answer of %s: %v", c.base.Redacted(), err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return data, nil
	}
	msg := errorMessage(data)
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		return nil, fail(ExitAuth, "the gateway refused the master key in %s: %s", MasterKeyEnv, msg)
	case http.StatusNotFound:
		return nil, fail(ExitNotFound, "%s", msg)
	case http.StatusServiceUnavailable:
		return nil, fail(ExitRefused, "the gateway is unavailable (503): %s", msg)
	}
	return nil, fail(ExitRefused, "the gateway refused the request (%d): %s", resp.StatusCode, msg)
}

// transportCause is the reason a request got no answer, without the URL
// that net/http repeats.
func transportCause(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "no answer within " + requestTimeout.String()
	}
	return err.Error()
}

// errorMessage is the message of a contract error body, or a short form of
// an unexpected one (the gateway answers JSON; a proxy in front may not).
func errorMessage(body []byte) string {
	var e struct {
		Detail any `json:"detail"`
		Error  struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil {
		if e.Error.Message != "" {
			return e.Error.Message
		}
		if s, ok := e.Detail.(string); ok && s != "" {
			return s
		}
	}
	s := strings.TrimSpace(string(body))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	if s == "" {
		return "no message"
	}
	return s
}

// escapeID escapes an id for a path segment; a price's model key keeps its
// '/'s (openrouter:openai/gpt-4o), which its route takes as they are.
func escapeID(id string, keepSlashes bool) string {
	if !keepSlashes {
		return url.PathEscape(id)
	}
	parts := strings.Split(id, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}
