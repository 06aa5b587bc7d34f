package llmgateway

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

func FuzzExtractCredential(f *testing.F) {
	for _, seed := range [][4]string{
		{"Bearer gw-abc", "", "", ""},
		{"", "", "Bearer sk", ""},
		{"", "", "", "raw-key"},
		{"tok", "", "Bearer b", ""},
		{"", "Bearer x", "", ""},
		{"Bearer  spaced", "", "", ""},
		{"Bearer \r\nX: y", "", "", ""},
	} {
		f.Add(seed[0], seed[1], seed[2], seed[3])
	}
	f.Fuzz(func(t *testing.T, xAnyLLM, anyLLM, authorization, apiKey string) {
		h := http.Header{}
		for name, v := range map[string]string{"X-Anyllm-Key": xAnyLLM, "Anyllm-Key": anyLLM, "Authorization": authorization, "X-Api-Key": apiKey} {
			if v != "" {
				h[name] = []string{v}
			}
		}
		token, err := extractCredential(h)
		if err != nil {
			if err.Status != http.StatusUnauthorized || token != "" {
				t.Fatalf("error %v with token %q", err, token)
			}
			if strings.Contains(err.Message, "gw-") && err.Message != msgInvalidHeader {
				t.Fatalf("error message may echo the credential: %q", err.Message)
			}
			return
		}
		// The token comes from the first present header, whole.
		switch {
		case xAnyLLM != "":
			if "Bearer "+token != xAnyLLM {
				t.Fatalf("token %q not from X-AnyLLM-Key %q", token, xAnyLLM)
			}
		case anyLLM != "":
			if "Bearer "+token != anyLLM {
				t.Fatalf("token %q not from AnyLLM-Key %q", token, anyLLM)
			}
		case authorization != "":
			if "Bearer "+token != authorization {
				t.Fatalf("token %q not from Authorization %q", token, authorization)
			}
		default:
			if token != apiKey {
				t.Fatalf("token %q not from x-api-key %q", token, apiKey)
			}
		}
		if checkKeyFormat(token) == nil && !strings.HasPrefix(token, keyPrefix) {
			t.Fatalf("format check passed %q", token)
		}
	})
}

func FuzzSplitModel(f *testing.F) {
	for _, seed := range []string{"openai:gpt-4o", "openrouter/openai/gpt-4o", ":x", "x:", "", "a:b:c", "ü/é"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, m, ok := splitModel(s)
		if !ok {
			if p != "" || m != "" {
				t.Fatalf("failed split returned %q %q", p, m)
			}
			return
		}
		if p == "" || m == "" || strings.ContainsAny(p, ":/") || p+s[len(p):len(p)+1]+m != s {
			t.Fatalf("splitModel(%q) = %q, %q", s, p, m)
		}
		if key, err := normalizeModelKey(s); err == nil {
			if again, err := normalizeModelKey(key); err != nil || again != key {
				t.Fatalf("normalisation not idempotent: %q -> %q -> %q (%v)", s, key, again, err)
			}
		}
	})
}

func FuzzSSEScanner(f *testing.F) {
	for _, seed := range []string{
		"data: [DONE]\n",
		`data: {"choices":[{"delta":{"content":"hi"}}],"usage":null}` + "\n",
		`data: {"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2}}` + "\n",
		`data: {"type":"response.completed","response":{"usage":{"input_tokens":3,"output_tokens":4}}}` + "\n",
		`data: {"type":"message_start","message":{"usage":{"input_tokens":5,"output_tokens":1}}}` + "\n",
		`data: {"type":"message_delta","usage":{"output_tokens":9}}` + "\n",
		"data: {\"usage\":\n",
		": comment\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var s sseScanner
		for _, line := range bytes.SplitAfter(data, []byte("\n")) {
			s.line(line)
		}
		if s.contentBytes < 0 || s.contentBytes > len(data) {
			t.Fatalf("content bytes %d from %d bytes of input", s.contentBytes, len(data))
		}
	})
}

func FuzzPatchRequest(f *testing.F) {
	for _, seed := range []string{
		`{"model":"openai:gpt-4o","messages":[]}`,
		`{"model":"x:y","stream":true,"stream_options":{"include_usage":false}}`,
		`{"model":"x:y","stream_options":null,"seed":9007199254740993}`,
		`{"messages":[],"model":"a:b","z":{"model":"inner"}}`,
		`{"model":1}`,
		`{}`,
	} {
		f.Add([]byte(seed), "gpt-4o", true)
	}
	f.Fuzz(func(t *testing.T, body []byte, model string, forceUsage bool) {
		if !gjson.ValidBytes(body) || !gjson.ParseBytes(body).IsObject() || !utf8.Valid(body) || !utf8.ValidString(model) {
			return // prepareCall rejects these before patching; model comes from the body
		}
		patched, _, err := patchRequest(body, model, forceUsage)
		if err != nil {
			return
		}
		if !gjson.ValidBytes(patched) {
			t.Fatalf("patched body is not JSON: %s", patched)
		}
		if got := gjson.GetBytes(patched, "model"); got.Str != model {
			t.Fatalf("model = %q, want %q", got.Str, model)
		}
		if forceUsage && gjson.GetBytes(patched, "stream_options.include_usage").Type != gjson.True {
			t.Fatalf("include_usage not forced: %s", patched)
		}
		// Every other top-level field keeps its raw bytes.
		gjson.ParseBytes(body).ForEach(func(k, v gjson.Result) bool {
			if k.Str == "model" || k.Str == "stream_options" || strings.ContainsAny(k.Str, `.*?|#@\`) {
				return true
			}
			if got := gjson.GetBytes(patched, gjson.Escape(k.Str)); got.Raw != v.Raw && !bytes.Contains(patched, []byte(v.Raw)) {
				t.Fatalf("field %q changed: %s -> %s", k.Str, v.Raw, got.Raw)
			}
			return true
		})
	})
}

func FuzzDecodeAdminBody(f *testing.F) {
	for _, seed := range []string{
		`{"user_id":"u","alias":"A","metadata":{"a":1}}`,
		`{"user_id":5}`,
		`{"key_name":"k","expires_at":"2025-12-31T23:59:59Z","allowed_models":["openai:*"],"max_budget":1.5}`,
		`{"unknown":1}`,
		`{"user_id":"u"`,
		"{\"user_id\":\"\xff\"}",
		`[]`,
		``,
		strings.Repeat("[", 10000),
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, dst := range []any{&createUserRequest{}, &updateUserRequest{}, &createKeyRequest{}, &updateKeyRequest{}, &budgetRequest{}, &priceRequest{}} {
			err := decodeStrict(body, dst)
			if err == nil {
				continue
			}
			var ae *apiError
			if !errors.As(err, &ae) || ae.Status != http.StatusUnprocessableEntity {
				t.Fatalf("decode error %v is not a 422", err)
			}
		}
	})
}
