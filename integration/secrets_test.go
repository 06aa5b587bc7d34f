package integration

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoSecretLeaks runs Caddyfile.example (its provider pointed at the
// mock, Caddy's logs at debug) through the whole admin and inference flow
// with a known master key, virtual key and provider key, then looks for
// the three secrets in caddy's output, the access log, every file under
// the storage path, the config Caddy's admin API serves, and every
// response body.
func TestNoSecretLeaks(t *testing.T) {
	t.Parallel()
	mock := newMockUpstream(t)
	example, err := os.ReadFile(filepath.Join(repoRoot, "Caddyfile.example"))
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	g := &gateway{
		t:      t,
		port:   freePort(t),
		Dir:    filepath.Join(root, "llm_gateway_data"),
		home:   filepath.Join(root, "home"),
		output: &syncBuffer{},
	}
	g.admin = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	g.URL = fmt.Sprintf("http://127.0.0.1:%d", g.port)
	accessLog := filepath.Join(root, "access.log")

	cfg := string(example)
	for old, repl := range map[string]string{
		"{\n\t# Let in-flight":                fmt.Sprintf("{\n\tdebug\n\tadmin %s\n\tpersist_config off\n\t# Let in-flight", g.admin),
		":8000 {":                             fmt.Sprintf("http://127.0.0.1:%d {", g.port),
		"output stdout":                       "output file " + accessLog,
		"master_key {env.GATEWAY_MASTER_KEY}": "master_key {env.GATEWAY_MASTER_KEY}\n\t\tstorage_path " + g.Dir,
		"api_key {env.OPENAI_API_KEY}":        "api_key {env.OPENAI_API_KEY}\n\t\t\tbase_url " + mock.BaseURL(),
	} {
		if !strings.Contains(cfg, old) {
			t.Fatalf("Caddyfile.example no longer contains %q", old)
		}
		cfg = strings.Replace(cfg, old, repl, 1)
	}
	cfg += "\n" // the price of the mock models
	cfg = strings.Replace(cfg, "price openai:gpt-4o-mini", "price openai:ok 1 1\n\t\tprice openai:gpt-4o-mini", 1)
	g.cfgPath = filepath.Join(root, "Caddyfile")
	if err := os.WriteFile(g.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	g.env = caddyEnv(g.home, "OPENAI_API_KEY")
	g.start()
	t.Cleanup(g.stop)

	var bodies []string
	keep := func(r *response) *response {
		bodies = append(bodies, string(r.Body), fmt.Sprint(r.Header))
		return r
	}
	// Admin flow with the master key in each accepted header.
	keep(expect(t, g.do("POST", "/v1/users", map[string]any{"user_id": "alice"}, "X-AnyLLM-Key", "Bearer "+masterKey), 200))
	var k struct{ ID, Key string }
	// The one response that must carry the virtual key: its creation.
	expect(t, g.do("POST", "/v1/keys", map[string]any{"user_id": "alice"}, "Authorization", "Bearer "+masterKey), 200).JSON(t, &k)
	virtualKey := k.Key
	keep(expect(t, g.do("GET", "/v1/keys", nil, "x-api-key", masterKey), 200))
	keep(expect(t, g.do("GET", "/v1/keys/"+k.ID, nil, "AnyLLM-Key", "Bearer "+masterKey), 200))
	keep(expect(t, g.do("PATCH", "/v1/keys/"+k.ID, map[string]any{"key_name": "renamed"}, "X-AnyLLM-Key", "Bearer "+masterKey), 200))
	// Inference with the virtual key in each header, stream and not, and
	// failures whose provider error text carries the provider key.
	chat := `{"model":"openai:ok","messages":[{"role":"user","content":"hi"}]}`
	for _, h := range [][2]string{{"X-AnyLLM-Key", "Bearer " + virtualKey}, {"Authorization", "Bearer " + virtualKey}, {"x-api-key", virtualKey}} {
		keep(expect(t, g.do("POST", "/v1/chat/completions", chat, h[0], h[1]), 200))
	}
	keep(expect(t, g.do("POST", "/v1/chat/completions", `{"model":"openai:ok","stream":true,"messages":[{"role":"user","content":"hi"}]}`, "Authorization", "Bearer "+virtualKey), 200))
	keep(g.do("POST", "/v1/chat/completions", `{"model":"openai:err-401","messages":[]}`, "Authorization", "Bearer "+virtualKey))
	keep(g.do("POST", "/v1/chat/completions", `{"model":"openai:echo-key","messages":[]}`, "Authorization", "Bearer "+virtualKey))
	// Wrong and unknown keys are not echoed either.
	keep(g.do("GET", "/v1/users", nil, "Authorization", "Bearer "+virtualKey))
	keep(g.do("POST", "/v1/chat/completions", chat, "Authorization", "Bearer "+virtualKey[:len(virtualKey)-1]+"x"))
	keep(g.do("POST", "/v1/chat/completions", chat, "Authorization", "Bearer "+masterKey+"x"))
	keep(expect(t, g.do("GET", "/v1/usage?user_id=alice", nil, "X-AnyLLM-Key", "Bearer "+masterKey), 200))
	keep(expect(t, g.do("GET", "/v1/users/alice/usage", nil, "X-AnyLLM-Key", "Bearer "+masterKey), 200))

	resp, err := http.Get("http://" + g.admin + "/config/")
	if err != nil {
		t.Fatal(err)
	}
	config, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	g.stop() // flush logs and the store

	secrets := map[string]string{"master key": masterKey, "virtual key": virtualKey, "provider key": providerKey}
	check := func(where, text string) {
		t.Helper()
		for name, secret := range secrets {
			if strings.Contains(text, secret) {
				t.Errorf("the %s appears in %s", name, where)
			}
		}
	}
	check("caddy's stdout/stderr", g.output.String())
	logData, err := os.ReadFile(accessLog)
	if err != nil || len(logData) == 0 {
		t.Fatalf("no access log written: %v", err)
	}
	check("the access log", string(logData))
	check("GET /config/", string(config))
	for i, b := range bodies {
		check(fmt.Sprintf("response %d", i), b)
	}
	files := 0
	err = filepath.Walk(g.Dir, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		check(path, string(data))
		return nil
	})
	if err != nil || files == 0 {
		t.Fatalf("walking the storage path: %d files, %v", files, err)
	}
	if !strings.Contains(string(logData), "/v1/chat/completions") || !strings.Contains(g.output.String(), `"level":"debug"`) {
		t.Fatal("the logs do not show the flow at debug level; the check would prove nothing")
	}
}
