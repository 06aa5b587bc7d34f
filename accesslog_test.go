package llmgateway

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func TestCarriesCredential(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		header         string
		logCredentials bool
		want           bool
	}{
		{"X-Anyllm-Key", false, true},
		{"Anyllm-Key", false, true},
		{"X-Api-Key", false, true},
		{"Authorization", false, false}, // Caddy redacts it itself
		{"Authorization", true, true},
		{"Cookie", true, false},
	} {
		h := http.Header{tc.header: {"secret"}}
		if got := carriesCredential(h, tc.logCredentials); got != tc.want {
			t.Errorf("%s (log_credentials %v): %v, want %v", tc.header, tc.logCredentials, got, tc.want)
		}
	}
}

func TestMatchWildcard(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		subject, pattern string
		want             bool
	}{
		{"api.example.com", "api.example.com", true},
		{"API.example.com", "api.example.COM", true},
		{"api.example.com", "*.example.com", true},
		{"a.b.example.com", "*.example.com", false},
		{"example.com", "*.example.com", false},
		{"api.example.com", "other.example.com", false},
	} {
		if got := matchWildcard(tc.subject, tc.pattern); got != tc.want {
			t.Errorf("matchWildcard(%q, %q) = %v", tc.subject, tc.pattern, got)
		}
	}
}

func TestAccessLoggersFollowCaddysChoice(t *testing.T) {
	t.Parallel()
	logs := &caddyhttp.ServerLogConfig{
		DefaultLoggerName: "default",
		LoggerNames:       map[string]caddyhttp.StringArray{"api.example.com": {"log0"}, "*.example.org": {"log1", ""}},
	}
	core, seen := observer.New(zap.InfoLevel)
	base := zap.New(core).Named("http.log.access")
	for _, tc := range []struct {
		host string
		want []string
	}{
		{"api.example.com:8443", []string{"http.log.access.log0"}},
		{"x.example.org", []string{"http.log.access.log1", "http.log.access"}},
		{"other.test", []string{"http.log.access.default"}},
	} {
		r := httptest.NewRequest("GET", "http://"+tc.host+"/v1/models", nil)
		for _, l := range accessLoggers(base, logs, r) {
			l.Info("x")
		}
		var got []string
		for _, e := range seen.TakeAll() {
			got = append(got, e.LoggerName)
		}
		if len(got) != len(tc.want) || (len(got) > 0 && got[0] != tc.want[0]) || (len(got) > 1 && got[1] != tc.want[1]) {
			t.Errorf("%s: loggers %v, want %v", tc.host, got, tc.want)
		}
	}
	// log_name wins.
	r := httptest.NewRequest("GET", "http://api.example.com/v1/models", nil)
	ctx := context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{caddyhttp.AccessLoggerNameVarKey: []any{"named"}})
	for _, l := range accessLoggers(base, logs, r.WithContext(ctx)) {
		l.Info("x")
	}
	if e := seen.TakeAll(); len(e) != 1 || e[0].LoggerName != "http.log.access.named" {
		t.Errorf("log_name: %v", e)
	}
	if !logsHost(logs, "api.example.com") || !logsHost(&caddyhttp.ServerLogConfig{}, "x") ||
		logsHost(&caddyhttp.ServerLogConfig{SkipHosts: []string{"x"}}, "x:80") || logsHost(&caddyhttp.ServerLogConfig{SkipUnmappedHosts: true}, "x") {
		t.Error("logsHost does not follow Caddy's rules")
	}
}
