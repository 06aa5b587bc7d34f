package cli

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestClientMapsAnswersToExitCodes(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer mk" {
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"detail":"Invalid master key","error":{"message":"Invalid master key"}}`))
			return
		}
		switch r.URL.EscapedPath() {
		case "/v1/pricing/openrouter:openai/gpt%204o":
			w.Write([]byte(`{"ok":true}`))
		case "/v1/keys/a%2Fb":
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"detail":"API key with id 'a/b' not found"}`))
		case "/v1/users":
			w.WriteHeader(http.StatusConflict)
			w.Write([]byte(`{"error":{"message":"User with id 'x' already exists"}}`))
		default:
			w.WriteHeader(http.StatusBadGateway)
			w.Write([]byte("<html>proxy error</html>"))
		}
	}))
	t.Cleanup(srv.Close)

	tests := []struct {
		name, key, path string
		code            int
		message         string
	}{
		{"a model key keeps its slashes", "mk", "/v1/pricing/" + escapeID("openrouter:openai/gpt 4o", true), ExitOK, ""},
		{"an id's slash is escaped", "mk", "/v1/keys/" + escapeID("a/b", false), ExitNotFound, "API key with id 'a/b' not found"},
		{"a wrong key", "wrong", "/v1/users", ExitAuth, "refused the master key in GATEWAY_MASTER_KEY: Invalid master key"},
		{"a refusal", "mk", "/v1/users", ExitRefused, "(409): User with id 'x' already exists"},
		{"a body that is not the contract's", "mk", "/other", ExitRefused, "(502): <html>proxy error</html>"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := NewClient(srv.URL+"/", tc.key)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Do(context.Background(), http.MethodGet, tc.path, nil, nil)
			if tc.code == ExitOK {
				if err != nil {
					t.Fatalf("Do: %v", err)
				}
				return
			}
			var ce *Error
			if !errors.As(err, &ce) || ce.Code != tc.code || !strings.Contains(ce.Message, tc.message) {
				t.Fatalf("Do = %v, want exit %d with %q", err, tc.code, tc.message)
			}
		})
	}
}

func TestNewClientChecksURLAndKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		url, key string
		code     int
	}{
		{"localhost:8000", "mk", ExitUsage},
		{"ftp://x", "mk", ExitUsage},
		{"http://", "mk", ExitUsage},
		{"http://localhost:8000", "", ExitAuth},
	} {
		_, err := NewClient(tc.url, tc.key)
		var ce *Error
		if !errors.As(err, &ce) || ce.Code != tc.code {
			t.Errorf("NewClient(%q, %q) = %v, want exit %d", tc.url, tc.key, err, tc.code)
		}
	}
}

func TestUnreachableGatewayIsExit5(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	c, _ := NewClient(url, "mk")
	_, err := c.Do(context.Background(), http.MethodGet, "/v1/users", nil, nil)
	var ce *Error
	if !errors.As(err, &ce) || ce.Code != ExitUnreachable || !strings.Contains(ce.Message, "does not answer") {
		t.Fatalf("Do = %v, want exit 5", err)
	}
}

func TestTables(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	e := &env{out: &out}
	err := e.showList([]string{"id", "alias", "is_active", "allowed_models", "spend"}, "none")(
		[]byte(`[{"id":"k1","alias":null,"is_active":true,"allowed_models":["a:*","b:c"],"spend":0.000000001},
		{"id":"k2","alias":"x","is_active":false,"allowed_models":[],"spend":12}]`))
	if err != nil {
		t.Fatal(err)
	}
	want := "ID  ALIAS  IS_ACTIVE  ALLOWED_MODELS  SPEND\n" +
		"k1  -      yes        a:*,b:c         0.000000001\n" +
		"k2  x      no         -               12\n"
	if out.String() != want {
		t.Fatalf("table:\n%s\nwant:\n%s", out.String(), want)
	}

	out.Reset()
	if err := e.showList(nil, "No users.")([]byte(`[]`)); err != nil || out.String() != "No users.\n" {
		t.Fatalf("empty list printed %q, %v", out.String(), err)
	}

	out.Reset()
	err = e.showSummary([]byte(`[{"bucket":"2026-11-01T00:00:00Z","group":null,"requests":2,"errors":1,"prompt_tokens":3,"completion_tokens":4,"total_tokens":7,"cost":0.1},
		{"bucket":"2026-11-02T00:00:00Z","group":"m","requests":1,"errors":0,"prompt_tokens":1,"completion_tokens":1,"total_tokens":2,"cost":0.2}]`))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 || strings.Join(strings.Fields(lines[3]), " ") != "total 3 1 4 5 9 0.3" {
		t.Fatalf("summary table:\n%s", out.String())
	}

	out.Reset()
	if err := e.showObject([]string{"id"})([]byte(`{"z":1,"id":"k","a":"b"}`)); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "id  k\na   b\nz   1\n" {
		t.Fatalf("object:\n%q", got)
	}
}
