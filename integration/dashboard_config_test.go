package integration

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDashboardTypoFailsAtLoad: a misspelt dashboard option is refused by
// `caddy adapt` and `caddy validate`, naming the Caddyfile line.
func TestDashboardTypoFailsAtLoad(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	cfg := ":8000 {\n\tllm_gateway {\n\t\tdashboard {\n\t\t\tsesion_idle 30m\n\t\t}\n\t}\n}\n"
	if err := os.WriteFile(filepath.Join(root, "Caddyfile"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"adapt", "validate"} {
		out, err := caddyCommand(t, root, cmd, "--config", "Caddyfile", "--adapter", "caddyfile")
		if err == nil || !strings.Contains(out, "dashboard: unrecognized subdirective 'sesion_idle'") || !strings.Contains(out, "Caddyfile:4") {
			t.Fatalf("caddy %s: %v, want an error naming Caddyfile:4 and the option:\n%s", cmd, err, out)
		}
	}
}

// TestDashboardOffLeavesUIToTheSite: without `dashboard`, /ui/ is the next
// handler's; with it, the gateway answers with its own headers and CSP.
func TestDashboardOffLeavesUIToTheSite(t *testing.T) {
	t.Parallel()
	off := startChecked(t, gatewayConfig{})
	r := off.do("GET", "/ui/", nil)
	if r.Status != http.StatusOK || string(r.Body) != "fallthrough" {
		t.Fatalf("/ui/ without the dashboard: %d %q, want the site's own answer", r.Status, r.Body)
	}

	on := startChecked(t, gatewayConfig{Block: "dashboard"})
	for _, path := range []string{"/ui/login", "/ui/assets/app.css", "/ui/nope"} {
		r := on.do("GET", path, nil)
		csp := r.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "default-src 'none'") {
			t.Errorf("%s: Content-Security-Policy %q", path, csp)
		}
		if r.Header.Get("X-Frame-Options") != "DENY" || r.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: security headers missing: %v", path, r.Header)
		}
	}
	if r := on.do("GET", "/ui/nope", nil); r.Status != http.StatusNotFound || !strings.Contains(r.Header.Get("Content-Type"), "text/html") {
		t.Errorf("/ui/nope: %d %s", r.Status, r.Header.Get("Content-Type"))
	}
	// No page carries inline script or style for the CSP to block.
	for _, path := range []string{"/ui/login"} {
		body := string(on.do("GET", path, nil).Body)
		for _, bad := range []string{"<script>", " style=", " onclick=", " onsubmit=", "javascript:", "<style"} {
			if strings.Contains(body, bad) {
				t.Errorf("%s contains %q", path, bad)
			}
		}
	}
}

// TestDashboardBehindBasicAuth: the README's basic_auth in front of /ui/*
// guards the dashboard and leaves /v1 to the keys.
func TestDashboardBehindBasicAuth(t *testing.T) {
	t.Parallel()
	out, err := exec.Command(caddyBin, "hash-password", "--plaintext", "correct horse").CombinedOutput()
	if err != nil {
		t.Fatalf("caddy hash-password: %v: %s", err, out)
	}
	g := startChecked(t, gatewayConfig{
		Block: "dashboard",
		Site:  "basic_auth /ui/* {\n\t\tadmin " + strings.TrimSpace(string(out)) + "\n\t}",
	})
	if r := g.do("GET", "/ui/login", nil); r.Status != http.StatusUnauthorized {
		t.Fatalf("/ui/login without the password: %d, want 401", r.Status)
	}
	if r := g.do("GET", "/ui/login", nil, "Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("admin:correct horse"))); r.Status != http.StatusOK {
		t.Fatalf("/ui/login with the password: %d, want 200", r.Status)
	}
	expect(t, g.adminDo("GET", "/v1/users", nil), http.StatusOK)
}

// signInHTTP signs in to the dashboard through net/http and returns the
// session cookie's value.
func signInHTTP(t *testing.T, g *gateway, key string) string {
	t.Helper()
	req, err := http.NewRequest("POST", g.URL+"/ui/login", strings.NewReader(url.Values{"master_key": {key}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: status %d, want 303", resp.StatusCode)
	}
	for _, c := range resp.Cookies() {
		if c.Name == "llmgw_session" && c.Value != "" {
			if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Secure || c.MaxAge <= 0 {
				t.Fatalf("session cookie %+v", c)
			}
			return c.Value
		}
	}
	t.Fatal("sign-in set no session cookie")
	return ""
}

// TestDashboardSessionSurvivesReloadEndsWithOldMasterKey: a config reload
// keeps the sessions, but once the master key changes, a session opened
// with the old one is refused by the admin API and ends.
func TestDashboardSessionSurvivesReloadEndsWithOldMasterKey(t *testing.T) {
	t.Parallel()
	oldKey, newKey := masterKey, masterKey+"-rotated"
	cfg := func(key string) gatewayConfig {
		return gatewayConfig{NoMaster: true, Block: "master_key " + key + "\n\t\t\tdashboard"}
	}
	g := startChecked(t, cfg(oldKey))
	session := signInHTTP(t, g, oldKey)
	if resp := dashboardRequest(t, "GET", g.URL+"/ui/keys", session, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("signed in: /ui/keys answers %d", resp.StatusCode)
	}

	// The same key after a reload: still signed in.
	c := cfg(oldKey)
	c.Block += "\n\t\t\trate_limit_rpm 1000"
	if err := g.reload(c); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the reloaded config", func() bool {
		return dashboardRequest(t, "GET", g.URL+"/ui/keys", session, nil).StatusCode == http.StatusOK
	})

	// A new master key: the old session is sent to sign in, and stays dead.
	if err := g.reload(cfg(newKey)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the old master key refused", func() bool {
		return g.do("GET", "/v1/users", nil, bearer(oldKey)...).Status == http.StatusUnauthorized
	})
	resp := dashboardRequest(t, "GET", g.URL+"/ui/keys", session, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/login" {
		t.Fatalf("old session after the key changed: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp := dashboardRequest(t, "GET", g.URL+"/ui/budgets", session, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the ended session came back: %d", resp.StatusCode)
	}
	newSession := signInHTTP(t, g, newKey)
	if resp := dashboardRequest(t, "GET", g.URL+"/ui/keys", newSession, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("signed in with the new key: %d", resp.StatusCode)
	}
}
