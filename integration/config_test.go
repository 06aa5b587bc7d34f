package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Config that does what it says (issue 12, items 2, 3, 6, 9; issue 11,
// item 8): validation writes nothing, typos fail at load with their line,
// a config price is the truth for its model, and the start-up log says
// what runs.

// logHas reports whether one line of a caddy log contains msg as its
// message and every one of parts.
func logHas(out, msg string, parts ...string) bool {
	for _, line := range strings.Split(out, "\n") {
		if !strings.Contains(line, `"msg":"`+msg+`"`) {
			continue
		}
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return true
		}
	}
	return false
}

// caddyCommand runs the caddy binary with a fresh HOME and data and config
// directories under root, and returns its combined output and error.
func caddyCommand(t *testing.T, root string, args ...string) (string, error) {
	t.Helper()
	home := filepath.Join(root, "home")
	cmd := exec.Command(caddyBin, args...)
	cmd.Env = caddyEnv(home, "PROVIDER_KEY")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// filesUnder lists every file and directory under root except except.
func filesUnder(t *testing.T, root string, except ...string) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		for _, e := range except {
			if rel == e {
				return nil
			}
		}
		if rel != "." {
			found = append(found, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// TestValidateWritesNothing runs `caddy validate` on configs with and
// without a storage_path: it creates no store, no data directory, nothing.
// The first real start then stores the config's prices.
func TestValidateWritesNothing(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, storage string }{
		{"storage_path", "storage_path %s/store"},
		{"default storage", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			storage := tc.storage
			if storage != "" {
				storage = fmt.Sprintf(storage, root)
			}
			cfg := fmt.Sprintf(`{
	admin off
	persist_config off
}
http://127.0.0.1:%d {
	llm_gateway {
		master_key {env.GATEWAY_MASTER_KEY}
		%s
		provider mock {
			api_key {env.PROVIDER_KEY}
			base_url http://127.0.0.1:1/v1
		}
		price mock:ok 0.25 2.00
	}
}
`, freePort(t), storage)
			if err := os.WriteFile(filepath.Join(root, "Caddyfile"), []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := caddyCommand(t, root, "validate", "--config", "Caddyfile", "--adapter", "caddyfile")
			if err != nil || !strings.Contains(out, "Valid configuration") {
				t.Fatalf("caddy validate: %v\n%s", err, out)
			}
			if files := filesUnder(t, root, "Caddyfile"); len(files) != 0 {
				t.Fatalf("caddy validate wrote %v\n%s", files, out)
			}
		})
	}
}

// TestConfigTyposFailAtLoad: a price for a provider that is not configured
// and a relative storage_path are refused by `caddy adapt` and `caddy
// validate`, naming the Caddyfile line.
func TestConfigTyposFailAtLoad(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, line, want string }{
		{"price of a provider not configured", "price opnai:gpt-4o 1 2",
			`price opnai:gpt-4o: provider "opnai" is not configured in this llm_gateway block`},
		{"relative storage_path", "storage_path ./llm_gateway_data",
			`storage_path "./llm_gateway_data" is relative`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			cfg := ":8000 {\n\tllm_gateway {\n\t\tprovider openai\n\t\tprice openai:gpt-4o 2.5 10\n\t\t" + tc.line + "\n\t}\n}\n"
			if err := os.WriteFile(filepath.Join(root, "Caddyfile"), []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			for _, cmd := range []string{"adapt", "validate"} {
				out, err := caddyCommand(t, root, cmd, "--config", "Caddyfile", "--adapter", "caddyfile")
				out = strings.ReplaceAll(out, `\"`, `"`) // the error is in a JSON log line
				if err == nil || !strings.Contains(out, tc.want) || !strings.Contains(out, "Caddyfile:5") {
					t.Fatalf("caddy %s: %v, want an error naming Caddyfile:5 and %q:\n%s", cmd, err, tc.want, out)
				}
			}
			if files := filesUnder(t, root, "Caddyfile"); len(files) != 0 {
				t.Fatalf("a refused config wrote %v", files)
			}
		})
	}
}

// TestBadJSONConfigStoresNothing loads JSON configs that only the module's
// own checks can refuse (the Caddyfile parser would have refused them
// first) into a running gateway: each is refused, the old config keeps
// serving, and none of its prices reached the store.
func TestBadJSONConfigStoresNothing(t *testing.T) {
	t.Parallel()
	mock := newMockUpstream(t)
	g := startChecked(t, gatewayConfig{Block: mockProvider(mock)})
	cmd := exec.Command(caddyBin, "adapt", "--config", g.cfgPath, "--adapter", "caddyfile")
	cmd.Env = g.env
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("caddy adapt: %v", err)
	}
	adapted := string(bytes.TrimSpace(stdout))
	for _, tc := range []struct{ name, price, want string }{
		{"negative price", `"mock:neg":{"input_price_per_million":-1,"output_price_per_million":1}`, "must not be negative"},
		{"provider not configured", `"opnai:typo":{"input_price_per_million":1,"output_price_per_million":1}`, `provider \"opnai\" is not configured`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := g.on(t)
			bad := strings.Replace(adapted, `"pricing":{`, `"pricing":{`+tc.price+`,`, 1)
			if bad == adapted {
				t.Fatalf("no pricing object in the adapted config:\n%s", adapted)
			}
			resp, err := http.Post("http://"+g.admin+"/load", "application/json", strings.NewReader(bad))
			if err != nil {
				t.Fatal(err)
			}
			var body bytes.Buffer
			_, _ = body.ReadFrom(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || !strings.Contains(body.String(), tc.want) {
				t.Fatalf("POST /load = %d %s, want a refusal containing %q", resp.StatusCode, body.String(), tc.want)
			}
			key := strings.Split(strings.Trim(tc.price, `"`), `"`)[0]
			expect(t, g.adminDo("GET", "/v1/pricing/"+key, nil), http.StatusNotFound)
			expect(t, g.adminDo("GET", "/v1/pricing/mock:ok", nil), http.StatusOK)
		})
	}
}

// TestConfigPriceWinsOnReload: a changed price line takes effect at
// `caddy reload`, the log says so, requests are billed at the new price,
// and the API refuses to change a config price; a price line removed from
// the config leaves its last price, which the API may then change.
func TestConfigPriceWinsOnReload(t *testing.T) {
	t.Parallel()
	mock := newMockUpstream(t)
	cfg := func(price string) gatewayConfig {
		return gatewayConfig{Block: fmt.Sprintf(`provider mock {
			api_key {env.PROVIDER_KEY}
			base_url %s
		}
		%s`, mock.BaseURL(), price)}
	}
	g := startChecked(t, cfg("price mock:ok 0.25 2.00"))
	key := g.newKey(`{"user_id": "payer"}`)
	price := func() map[string]any {
		t.Helper()
		return expect(t, g.adminDo("GET", "/v1/pricing/mock:ok", nil), http.StatusOK).Map(t)
	}
	wantPrice := func(in, out float64, source string) {
		t.Helper()
		p := price()
		if p["input_price_per_million"] != in || p["output_price_per_million"] != out || p["source"] != source {
			t.Fatalf("price of mock:ok = %v, want %v / %v from %s", p, in, out, source)
		}
	}
	spend := func() float64 {
		t.Helper()
		return expect(t, g.adminDo("GET", "/v1/users/payer", nil), http.StatusOK).Map(t)["spend"].(float64)
	}
	cost := func(in, out float64) float64 {
		return float64(mockPromptTokens)/1e6*in + float64(mockCompletionTokens)/1e6*out
	}

	wantPrice(0.25, 2, "config")
	expect(t, g.adminDo("POST", "/v1/pricing", `{"model_key": "mock:ok", "input_price_per_million": 9, "output_price_per_million": 9}`), http.StatusConflict)
	g.chat(key.Key)
	if s := spend(); math.Abs(s-cost(0.25, 2)) > 1e-12 {
		t.Fatalf("spend = %v, want %v", s, cost(0.25, 2))
	}

	if err := g.reload(cfg("price mock:ok 0.50 4.00")); err != nil {
		t.Fatal(err)
	}
	wantPrice(0.5, 4, "config")
	if !logHas(g.output.String(), "config price replaces the stored price", `"model_key":"mock:ok"`, `"old_input_price_per_million":0.25`, `"input_price_per_million":0.5`) {
		t.Fatalf("the reload did not log the changed price:\n%s", g.output.String())
	}
	g.chat(key.Key)
	if s := spend(); math.Abs(s-cost(0.25, 2)-cost(0.5, 4)) > 1e-12 {
		t.Fatalf("spend after the reload = %v, want %v", s, cost(0.25, 2)+cost(0.5, 4))
	}

	// The line removed: the price stays, and is the API's to change.
	if err := g.reload(cfg("")); err != nil {
		t.Fatal(err)
	}
	wantPrice(0.5, 4, "api")
	expect(t, g.adminDo("POST", "/v1/pricing", `{"model_key": "mock:ok", "input_price_per_million": 1, "output_price_per_million": 3}`), http.StatusOK)
	wantPrice(1, 3, "api")
	// And a config that names it again takes it back.
	if err := g.reload(cfg("price mock:ok 0.25 2.00")); err != nil {
		t.Fatal(err)
	}
	wantPrice(0.25, 2, "config")
}

// TestStartupLog: one info line at start per llm_gateway says where the
// store is, which providers are configured and whether a master key is
// set, without any secret; a short master key and a provider whose
// api_key resolves to nothing are warned about.
func TestStartupLog(t *testing.T) {
	t.Parallel()
	mock := newMockUpstream(t)
	g := startChecked(t, gatewayConfig{Block: mockProvider(mock) + `
		provider emptykey {
			api_key {env.NOT_SET_ANYWHERE}
			base_url http://127.0.0.1:1/v1
		}`})
	// /health answers once Caddy serves, which may be before the store is
	// open and the start-up line written (the config's prices are written,
	// each synced to disk, first).
	waitFor(t, "the start-up line", func() bool { return logHas(g.output.String(), "llm_gateway started") })
	out := g.output.String()
	dir, _ := json.Marshal(g.Dir)
	if !logHas(out, "llm_gateway started", `"storage_path":`+string(dir), `"providers":["emptykey","mock","stuck"]`, `"master_key_set":true`) {
		t.Fatalf("no start-up line with the storage path, the providers and the master key flag:\n%s", out)
	}
	if !logHas(out, "provider api_key resolves to an empty value: the provider will likely refuse every request", `"provider":"emptykey"`, `"api_key":"{env.NOT_SET_ANYWHERE}"`) {
		t.Fatalf("no warning about the empty api_key:\n%s", out)
	}
	if logHas(out, "the master key is short: use at least 32 random characters, e.g. `openssl rand -base64 32`") {
		t.Fatalf("a %d-character master key was called short:\n%s", len(masterKey), out)
	}
	assertNoSecret(t, "the gateway's log", []byte(out), masterKey, providerKey)

	const short = "short-master-key-1234"
	s := startChecked(t, gatewayConfig{NoMaster: true, Block: "master_key " + short})
	out = s.output.String()
	if !logHas(out, "the master key is short: use at least 32 random characters, e.g. `openssl rand -base64 32`", `"length":21`) {
		t.Fatalf("no warning about a %d-character master key:\n%s", len(short), out)
	}
	assertNoSecret(t, "the gateway's log", []byte(out), short)
}

// TestUpstreamErrorsExplainThemselves: the client gets the contract's
// generic error, while the usage record's error_message and a warning per
// failing provider (limited, without the provider key) say what went wrong.
func TestUpstreamErrorsExplainThemselves(t *testing.T) {
	t.Parallel()
	ig := startInferenceGateway(t, `provider down {
			api_key {env.PROVIDER_KEY}
			base_url http://127.0.0.1:1/v1
		}`)
	for _, tc := range []struct {
		model, message, cause string
		status                int
	}{
		{"down:any", "LLM provider error", "provider unreachable: connection refused", http.StatusBadGateway},
		{"mock:err-401", "LLM provider error", "provider rejected the gateway's API key (401)", http.StatusBadGateway},
		{"mock:err-503", "LLM provider error", "provider returned 503", http.StatusBadGateway},
		{"stuck:hang", "LLM provider timeout", "provider timeout after 2s", http.StatusGatewayTimeout},
	} {
		t.Run(tc.model, func(t *testing.T) {
			g := ig.on(t)
			r := g.do("POST", "/v1/chat/completions", `{"model":"`+tc.model+`","messages":[{"role":"user","content":"hi"}]}`, bearer(ig.key)...)
			expectError(t, r, tc.status, tc.message)
			rec := ig.recordFor(t, r.Header.Get("X-Request-Id"))
			if rec.ErrorMessage == nil || *rec.ErrorMessage != tc.cause {
				t.Fatalf("error_message = %v, want %q (record %+v)", rec.ErrorMessage, tc.cause, rec)
			}
			provider := strings.SplitN(tc.model, ":", 2)[0]
			if !logHas(g.output.String(), "provider request failed", `"provider":"`+provider+`"`, `"cause":"`+tc.cause+`"`) {
				t.Fatalf("no warning naming provider %s and the cause %q:\n%s", provider, tc.cause, g.output.String())
			}
		})
	}

	// An outage does not flood the log: more failures, still one line per
	// provider and cause every 30 s (the requests take milliseconds).
	for range 5 {
		expect(t, ig.do("POST", "/v1/chat/completions", `{"model":"down:any","messages":[{"role":"user","content":"hi"}]}`, bearer(ig.key)...), http.StatusBadGateway)
	}
	lines := 0
	for _, line := range strings.Split(ig.output.String(), "\n") {
		if strings.Contains(line, `"msg":"provider request failed"`) && strings.Contains(line, `"provider":"down"`) {
			lines++
		}
	}
	if lines == 0 || lines >= 6 {
		t.Fatalf("%d warnings for 6 failures of provider down, want fewer (one per 30 s)", lines)
	}
	assertNoSecret(t, "the gateway's log", []byte(ig.output.String()), providerKey, masterKey, ig.key)
}

// TestExampleServerTimeouts: Caddyfile.example's server timeouts (scaled
// down to seconds here) cut silent sockets, slow headers and trickled
// bodies, and do not cut a stream that lasts longer than all of them.
func TestExampleServerTimeouts(t *testing.T) {
	t.Parallel()
	example, err := os.ReadFile(filepath.Join(repoRoot, "Caddyfile.example"))
	if err != nil {
		t.Fatal(err)
	}
	servers := regexp.MustCompile(`(?s)\n\tservers \{\n\t\ttimeouts \{\n(.*?)\n\t\t\}\n\t\}`).FindSubmatch(example)
	if servers == nil {
		t.Fatal("Caddyfile.example has no servers { timeouts { … } } block")
	}
	scaled := map[string]string{"read_header": "1s", "read_body": "2s", "idle": "2s"}
	var lines []string
	for _, line := range strings.Split(string(servers[1]), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 || scaled[f[0]] == "" {
			t.Fatalf("unexpected timeout line %q in Caddyfile.example (a write timeout would cut long streams)", line)
		}
		lines = append(lines, f[0]+" "+scaled[f[0]])
		delete(scaled, f[0])
	}
	if len(scaled) != 0 {
		t.Fatalf("Caddyfile.example sets no %v timeout", scaled)
	}
	mock := newMockUpstream(t)
	g := startChecked(t, gatewayConfig{
		Global: "servers {\n\t\ttimeouts {\n\t\t\t" + strings.Join(lines, "\n\t\t\t") + "\n\t\t}\n\t}",
		Block:  mockProvider(mock) + "\n\t\tprice mock:gated 1 2",
	})
	key := g.newKey(`{"user_id": "streamer"}`)

	// closedBy sends parts with pause between them, then reads: the server
	// must close the connection (the 30 s bound only turns a hang into a
	// failure).
	closedBy := func(t *testing.T, what string, parts [][]byte, pause time.Duration) {
		t.Helper()
		conn, err := net.Dial("tcp", strings.TrimPrefix(g.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
		for _, p := range parts {
			if _, err := conn.Write(p); err != nil {
				return // closed by the server
			}
			time.Sleep(pause) // the client's slowness under test
		}
		// EOF or a reset: either way the server closed it.
		if _, err := io.ReadAll(conn); errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("%s: the server did not close the connection: %v", what, err)
		}
	}
	head := "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\nX-AnyLLM-Key: Bearer " + key.Key + "\r\n\r\n"
	var slowHead, slowBody [][]byte
	for i := range 30 {
		slowHead = append(slowHead, []byte{head[i]})
		slowBody = append(slowBody, []byte("{"))
	}
	closedBy(t, "a silent socket", nil, 0)
	closedBy(t, "headers at 2 bytes a second", slowHead, 500*time.Millisecond)
	closedBy(t, "a body at 2 bytes a second", append([][]byte{[]byte(head)}, slowBody...), 500*time.Millisecond)

	// A stream that lasts longer than every timeout completes.
	resp := g.postStream(context.Background(), t, "/v1/chat/completions", gatedChat, key.Key)
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); err != nil || !strings.Contains(line, "Hello") {
		t.Fatalf("first line %q, %v", line, err)
	}
	time.Sleep(4 * time.Second) // the stream's length under test: longer than every timeout
	mock.release()
	rest, err := io.ReadAll(br)
	if err != nil || !strings.Contains(string(rest), "data: [DONE]") {
		t.Fatalf("a 4 s stream was cut by the server timeouts: %v %q", err, rest)
	}
}

// TestMasterKeyRotatesWithFileAndReload: a master key read with
// {file.…} is rotated by writing the file and running `caddy reload
// --force` (the config text is unchanged, hence --force): the new key
// works at once, the old one stops.
func TestMasterKeyRotatesWithFileAndReload(t *testing.T) {
	t.Parallel()
	keyFile := filepath.Join(t.TempDir(), "master_key")
	oldKey, newKey := strings.Repeat("o", 40), strings.Repeat("n", 40)
	if err := os.WriteFile(keyFile, []byte(oldKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := gatewayConfig{NoMaster: true, Block: "master_key {file." + keyFile + "}"}
	g := startChecked(t, cfg)
	expect(t, g.do("GET", "/v1/users", nil, bearer(oldKey)...), http.StatusOK)
	if err := os.WriteFile(keyFile, []byte(newKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := g.reload(cfg); err != nil {
		t.Fatal(err)
	}
	expect(t, g.do("GET", "/v1/users", nil, bearer(newKey)...), http.StatusOK)
	expect(t, g.do("GET", "/v1/users", nil, bearer(oldKey)...), http.StatusUnauthorized)
	assertNoSecret(t, "the gateway's log", []byte(g.output.String()), oldKey, newKey)
}
