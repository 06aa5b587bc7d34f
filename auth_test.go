package llmgateway

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
)

func TestExtractCredential(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		headers map[string][]string
		token   string
		errMsg  string
	}{
		{"nothing", nil, "", msgMissingCredentials},
		{"x-anyllm-key bearer", map[string][]string{"X-AnyLLM-Key": {"Bearer tok"}}, "tok", ""},
		{"anyllm-key alias", map[string][]string{"AnyLLM-Key": {"Bearer tok"}}, "tok", ""},
		{"authorization bearer", map[string][]string{"Authorization": {"Bearer tok"}}, "tok", ""},
		{"x-api-key raw", map[string][]string{"x-api-key": {"tok"}}, "tok", ""},
		{"x-anyllm-key wins over authorization", map[string][]string{"X-AnyLLM-Key": {"Bearer a"}, "Authorization": {"Bearer b"}}, "a", ""},
		{"x-anyllm-key wins over anyllm-key", map[string][]string{"X-AnyLLM-Key": {"Bearer a"}, "AnyLLM-Key": {"Bearer b"}}, "a", ""},
		{"authorization wins over x-api-key", map[string][]string{"Authorization": {"Bearer b"}, "x-api-key": {"c"}}, "b", ""},
		{"malformed x-anyllm-key does not fall back", map[string][]string{"X-AnyLLM-Key": {"tok"}, "Authorization": {"Bearer b"}}, "", msgInvalidHeader},
		{"empty x-anyllm-key counts as absent", map[string][]string{"X-AnyLLM-Key": {""}, "Authorization": {"Bearer b"}}, "b", ""},
		{"empty authorization counts as absent", map[string][]string{"Authorization": {""}, "x-api-key": {"c"}}, "c", ""},
		{"lowercase bearer", map[string][]string{"Authorization": {"bearer tok"}}, "", msgInvalidHeader},
		{"basic auth", map[string][]string{"Authorization": {"Basic dXNlcjpwYXNz"}}, "", msgInvalidHeader},
		{"bearer without space", map[string][]string{"Authorization": {"Bearer"}}, "", msgInvalidHeader},
		{"bearer with extra spaces keeps them", map[string][]string{"Authorization": {"Bearer  tok"}}, " tok", ""},
		{"bearer with empty token", map[string][]string{"Authorization": {"Bearer "}}, "", ""},
		{"duplicate authorization", map[string][]string{"Authorization": {"Bearer a", "Bearer b"}}, "", msgInvalidHeader},
		{"x-api-key with bearer is taken raw", map[string][]string{"x-api-key": {"Bearer tok"}}, "Bearer tok", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := http.Header{}
			for k, vs := range tt.headers {
				for _, v := range vs {
					h.Add(k, v)
				}
			}
			token, err := extractCredential(h)
			if tt.errMsg != "" {
				if err == nil || err.Message != tt.errMsg || err.Status != http.StatusUnauthorized {
					t.Fatalf("got token %q err %v, want 401 %q", token, err, tt.errMsg)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if token != tt.token {
				t.Fatalf("token = %q, want %q", token, tt.token)
			}
		})
	}
}

func TestCheckKeyFormat(t *testing.T) {
	t.Parallel()
	valid := "gw-" + strings.Repeat("aZ09_-", 11)
	tests := []struct {
		name   string
		token  string
		errMsg string
	}{
		{"valid", valid, ""},
		{"no prefix", "invalid-key", "Invalid API key format: API key must start with 'gw-' prefix"},
		{"too short", "gw-abc", "Invalid API key format: API key is too short. Expected at least 50 characters, got 6"},
		{"invalid chars", "gw-" + strings.Repeat("a", 50) + "!", "Invalid API key format: API key contains invalid characters. Must match pattern: gw-[A-Za-z0-9_-]+"},
		{"space", "gw-" + strings.Repeat("a", 50) + " ", "Invalid API key format: API key contains invalid characters. Must match pattern: gw-[A-Za-z0-9_-]+"},
		{"too long", "gw-" + strings.Repeat("a", 300), "Invalid API key format: API key is too long. Expected at most 256 characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := checkKeyFormat(tt.token)
			switch {
			case tt.errMsg == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tt.errMsg != "" && (err == nil || err.Message != tt.errMsg):
				t.Fatalf("got %v, want %q", err, tt.errMsg)
			}
		})
	}
}

func TestGenerateKey(t *testing.T) {
	t.Parallel()
	pattern := regexp.MustCompile(`^gw-[A-Za-z0-9_-]{64}$`)
	seen := make(map[string]bool)
	for range 1000 {
		secret, hash, err := generateKey()
		if err != nil {
			t.Fatal(err)
		}
		if len(secret) != 67 || !pattern.MatchString(secret) {
			t.Fatalf("bad key %q (len %d)", secret, len(secret))
		}
		if checkKeyFormat(secret) != nil {
			t.Fatalf("generated key fails the format check: %q", secret)
		}
		if hash != hashKey(secret) || len(hash) != 64 || strings.Contains(hash, secret) {
			t.Fatalf("bad hash %q", hash)
		}
		if seen[secret] {
			t.Fatalf("duplicate key %q", secret)
		}
		seen[secret] = true
	}
}

func TestMasterKeyComparison(t *testing.T) {
	t.Parallel()
	g := &Gateway{}
	if g.isMaster("") || g.isMaster("anything") {
		t.Fatal("no master key configured must match nothing")
	}
	g.hasMaster = true
	g.masterHash = sha256Sum("s3cret-master-key")
	for token, want := range map[string]bool{
		"s3cret-master-key":  true,
		"s3cret-master-kez":  false,
		"s3cret-master-key ": false,
		"":                   false,
	} {
		if got := g.isMaster(token); got != want {
			t.Errorf("isMaster(%q) = %v, want %v", token, got, want)
		}
	}
}

func TestSplitModel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, provider, model string
		ok                  bool
	}{
		{"openai:gpt-4o-mini", "openai", "gpt-4o-mini", true},
		{"openai/gpt-4o-mini", "openai", "gpt-4o-mini", true},
		{"openrouter:openai/gpt-4o", "openrouter", "openai/gpt-4o", true},
		{"openrouter/openai/gpt-4o", "openrouter", "openai/gpt-4o", true},
		{"gpt-4o", "", "", false},
		{":gpt-4o", "", "", false},
		{"openai:", "", "", false},
		{"", "", "", false},
	}
	for _, tt := range tests {
		p, m, ok := splitModel(tt.in)
		if p != tt.provider || m != tt.model || ok != tt.ok {
			t.Errorf("splitModel(%q) = %q, %q, %v; want %q, %q, %v", tt.in, p, m, ok, tt.provider, tt.model, tt.ok)
		}
	}
}
