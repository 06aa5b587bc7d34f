package llmgateway

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/llmgateway/caddy-llm-gateway/internal/translate"
)

// countTokens answers POST /v1/messages/count_tokens (Claude Code's
// /context sends them by the dozen). Anthropic-format providers count the
// tokens themselves; for the others the gateway answers its own estimate.
// It is authenticated like inference (the key, its user and its model
// allow-list), but nothing is generated, so nothing is billed or recorded.
func (g *Gateway) countTokens(w http.ResponseWriter, r *http.Request) error {
	p, err := g.authenticate(r)
	if err != nil {
		return err
	}
	if err := checkJSONContentType(r); err != nil {
		return err
	}
	body, err := readBody(r, g.MaxRequestBody)
	if err != nil {
		return err
	}
	// As on inference, duplicate keys are refused: the allow-list is
	// checked on what the provider reads.
	root, err := parseRequestJSON(body)
	if err != nil {
		return err
	}
	if !root.IsObject() {
		return errValidation("Request body must be a JSON object")
	}
	modelField := root.Get("model")
	switch {
	case !modelField.Exists():
		return errValidation("Field 'model' is required")
	case modelField.Type != gjson.String:
		return errValidation("Field 'model' must be a string")
	}
	if p.key != nil {
		if _, err := g.loadCallUser(p.key.UserID); err != nil {
			return err
		}
	}
	provider, model, ok := splitModel(modelField.Str)
	if !ok && g.routes[modelField.Str] != nil {
		// A route's targets may count differently: the estimate.
		if p.key != nil && !routeAllowed(p.key.AllowedModels, modelField.Str) {
			return errForbidden("model_not_allowed", fmt.Sprintf("Model '%s' is not allowed for this API key", truncate(modelField.Str, 128)))
		}
		writeJSON(w, http.StatusOK, map[string]int64{"input_tokens": translate.EstimatePromptTokens(body)})
		return nil
	}
	if !ok {
		return errBadRequest(fmt.Sprintf("Model '%s' must be 'provider:model'", truncate(modelField.Str, 128)))
	}
	up := g.upstreams[provider]
	if up == nil {
		return errBadRequest(fmt.Sprintf("Provider '%s' is not configured", truncate(provider, 64)))
	}
	if p.key != nil && !modelAllowed(p.key.AllowedModels, provider, model) {
		return errForbidden("model_not_allowed", fmt.Sprintf("Model '%s' is not allowed for this API key", truncate(modelField.Str, 128)))
	}
	if up.format != formatAnthropic {
		writeJSON(w, http.StatusOK, map[string]int64{"input_tokens": translate.EstimatePromptTokens(body)})
		return nil
	}
	patched, err := sjson.SetBytes(body, "model", model)
	if err != nil {
		return errValidation("Invalid JSON body")
	}
	return g.relayCountTokens(w, r, up, patched)
}

// relayCountTokens asks an Anthropic-format provider and answers as it
// did, with the contract's errors for its failures.
func (g *Gateway) relayCountTokens(w http.ResponseWriter, r *http.Request, up *upstream, body []byte) error {
	ctx, cancel := context.WithTimeout(r.Context(), up.timeout)
	defer cancel()
	start := up.next.Add(1) - 1
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, up.endpoint("/messages/count_tokens", r.URL.RawQuery, 0, start), bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("building count_tokens request: %w", err)
	}
	req.ContentLength = int64(len(body))
	req.Header.Set("Content-Type", "application/json")
	if ua := r.Header.Get("User-Agent"); ua != "" {
		req.Header.Set("User-Agent", ua)
	}
	up.setAuth(req.Header, r.Header)
	resp, err := up.client.Do(req)
	if err != nil {
		if c := g.logger.Check(zapcore.DebugLevel, "count_tokens request failed"); c != nil {
			c.Write(zap.String("provider", up.name), zap.String("error", up.redact(err.Error())))
		}
		if isTimeout(err) {
			return newError(http.StatusGatewayTimeout, "provider_timeout", msgProviderTimeout)
		}
		return newError(http.StatusBadGateway, "provider_error", msgProviderError)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if err != nil {
		return newError(http.StatusBadGateway, "provider_error", msgProviderError)
	}
	if resp.StatusCode >= 500 || resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden ||
		resp.StatusCode < 200 || (resp.StatusCode >= 300 && resp.StatusCode < 400) || (resp.StatusCode < 300 && !gjson.ValidBytes(data)) {
		if c := g.logger.Check(zapcore.DebugLevel, "provider error response"); c != nil {
			c.Write(zap.String("provider", up.name), zap.Int("status", resp.StatusCode), zap.String("body", up.redact(string(data))))
		}
		return newError(http.StatusBadGateway, "provider_error", msgProviderError)
	}
	data = up.redactBytes(data)
	copyHeader(w.Header(), resp.Header, "Content-Type", "Retry-After")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(data)
	return nil
}
