package translate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/tidwall/gjson"
)

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
