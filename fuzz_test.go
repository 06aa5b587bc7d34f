package llmgateway

import (
	"errors"
	"net/http"
	"strings"
	"testing"
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
