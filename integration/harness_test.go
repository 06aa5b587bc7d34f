// Package integration runs the real caddy binary, built from this
// repository, with the llm_gateway module and talks to it over HTTP.
package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// caddyBin is the binary under test, built once by TestMain.
var caddyBin string

// repoRoot is the repository's top directory.
var repoRoot string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	_, file, _, _ := runtime.Caller(0)
	repoRoot = filepath.Dir(filepath.Dir(file))
	dir, err := os.MkdirTemp("", "llmgw-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	caddyBin = filepath.Join(dir, "caddy")
	args := []string{"build", "-o", caddyBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "./cmd/caddy")
	cmd := exec.Command("go", args...)
	cmd.Dir = repoRoot
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building caddy:", err)
		return 1
	}
	return m.Run()
}

// Secrets used by every test; a test greps outputs for them.
const (
	masterKey   = "mk-test-Zx8Q_vKm3nR7wP2sT9yU5iO1eA6hD4fG0bN8cL3jM5k"
	providerKey = "sk-provider-test-7f3a9c2e1d4b6a8f0e2c4a6b8d0f1e3a"
)

// gateway is one running caddy process.
type gateway struct {
	t       *testing.T
	cmd     *exec.Cmd
	URL     string // http://127.0.0.1:<port>
	admin   string // caddy admin address host:port
	port    int
	Dir     string // storage_path
	home    string
	cfgPath string
	output  *syncBuffer
	exited  chan struct{}
	env     []string
}

// gatewayConfig describes the llm_gateway block of a test Caddyfile.
type gatewayConfig struct {
	// Extra lines inside the llm_gateway block.
	Block string
	// Extra site-level lines (e.g. other handlers).
	Site string
	// Global options to add.
	Global string
	// NoMaster leaves master_key out.
	NoMaster bool
	// StoragePath overrides the storage directory.
	StoragePath string
	// Env adds NAME=value pairs to the process's environment.
	Env []string
}

// caddyfile renders the config for this gateway.
func (g *gateway) caddyfile(c gatewayConfig) string {
	storage := g.Dir
	if c.StoragePath != "" {
		storage = c.StoragePath
	}
	master := "master_key {env.GATEWAY_MASTER_KEY}"
	if c.NoMaster {
		master = ""
	}
	return fmt.Sprintf(`{
	admin %s
	persist_config off
	auto_https off
	grace_period 10s
	%s
}

http://127.0.0.1:%d {
	%s
	# route keeps the written order: respond is ordered before llm_gateway.
	route {
		llm_gateway {
			%s
			storage_path %s
			%s
		}
		respond "fallthrough" 200
	}
}
`, g.admin, c.Global, g.port, c.Site, master, storage, c.Block)
}

// startGateway starts caddy with the given config and waits until it answers.
func startGateway(t *testing.T, c gatewayConfig) *gateway {
	t.Helper()
	g := newGateway(t, c)
	g.start()
	return g
}

// newGateway prepares a caddy process with the given config, stopped when
// the test ends; start (or launch and waitReady) runs it.
func newGateway(t *testing.T, c gatewayConfig) *gateway {
	t.Helper()
	root := t.TempDir()
	g := &gateway{
		t:      t,
		port:   freePort(t),
		admin:  fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		Dir:    filepath.Join(root, "data"),
		home:   filepath.Join(root, "home"),
		output: &syncBuffer{},
	}
	g.URL = fmt.Sprintf("http://127.0.0.1:%d", g.port)
	g.cfgPath = filepath.Join(root, "Caddyfile")
	g.env = caddyEnv(g.home, "PROVIDER_KEY")
	g.env = append(g.env, c.Env...)
	g.writeConfig(c)
	t.Cleanup(g.stop)
	return g
}

func (g *gateway) writeConfig(c gatewayConfig) {
	g.t.Helper()
	if err := os.WriteFile(g.cfgPath, []byte(g.caddyfile(c)), 0o600); err != nil {
		g.t.Fatal(err)
	}
}

// start runs the caddy process on the current config file and waits until
// it answers.
func (g *gateway) start() {
	g.t.Helper()
	g.launch()
	g.waitReady()
}

// launch runs the caddy process on the current config file.
func (g *gateway) launch() {
	g.t.Helper()
	g.cmd = exec.Command(caddyBin, "run", "--config", g.cfgPath, "--adapter", "caddyfile")
	g.cmd.Env = g.env
	g.cmd.Stdout, g.cmd.Stderr = g.output, g.output
	if err := g.cmd.Start(); err != nil {
		g.t.Fatal(err)
	}
	g.exited = make(chan struct{})
	go func() {
		_ = g.cmd.Wait()
		close(g.exited)
	}()
}

// waitReady polls /health until the gateway answers or the process exits.
func (g *gateway) waitReady() {
	g.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-g.exited:
			g.t.Fatalf("caddy exited during start-up:\n%s", g.output.String())
		default:
		}
		resp, err := http.Get(g.URL + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond) // polling for start-up, not synchronisation
	}
	g.t.Fatalf("caddy did not become ready:\n%s", g.output.String())
}

// stop ends the process gracefully (SIGINT) and waits for it.
func (g *gateway) stop() {
	if g.cmd == nil || g.cmd.Process == nil {
		return
	}
	select {
	case <-g.exited:
		return
	default:
	}
	_ = g.cmd.Process.Signal(os.Interrupt)
	select {
	case <-g.exited:
	case <-time.After(30 * time.Second):
		_ = g.cmd.Process.Kill()
		<-g.exited
		g.t.Errorf("caddy did not stop within 30s:\n%s", g.output.String())
	}
}

// restart stops the process and starts a new one on the same storage.
func (g *gateway) restart() {
	g.t.Helper()
	g.stop()
	g.start()
}

// reload loads a new config into the running process through the admin API.
func (g *gateway) reload(c gatewayConfig) error {
	g.writeConfig(c)
	cmd := exec.Command(caddyBin, "reload", "--config", g.cfgPath, "--adapter", "caddyfile", "--address", g.admin, "--force")
	cmd.Env = g.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("caddy reload: %v: %s", err, out)
	}
	return nil
}

// response is a finished HTTP exchange.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v, failing the test on error.
func (r *response) JSON(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decoding %q: %v", r.Body, err)
	}
}

// Map decodes the body as a JSON object.
func (r *response) Map(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	r.JSON(t, &m)
	return m
}

// do sends a request with optional body (a string is sent verbatim, any
// other value as JSON) and headers given as name, value pairs.
func (g *gateway) do(method, path string, body any, headers ...string) *response {
	g.t.Helper()
	r, err := g.tryDo(method, path, body, headers...)
	if err != nil {
		g.t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// tryDo is do returning the transport error instead of failing the test.
func (g *gateway) tryDo(method, path string, body any, headers ...string) (*response, error) {
	g.t.Helper()
	return g.tryDoWith(http.DefaultClient, method, path, body, headers...)
}

// tryDoWith is tryDo through client.
func (g *gateway) tryDoWith(client *http.Client, method, path string, body any, headers ...string) (*response, error) {
	g.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			g.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, g.URL+path, rd)
	if err != nil {
		g.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("reading body: %w", err)
	}
	return &response{Status: resp.StatusCode, Header: resp.Header, Body: data}, nil
}

// admin sends a request with the master key in X-AnyLLM-Key.
func (g *gateway) adminDo(method, path string, body any) *response {
	g.t.Helper()
	return g.do(method, path, body, "X-AnyLLM-Key", "Bearer "+masterKey)
}

// expect fails the test unless the response has the given status.
func expect(t *testing.T, r *response, status int) *response {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status = %d, want %d; body: %s", r.Status, status, r.Body)
	}
	return r
}

// expectError checks status and the contract's two error shapes.
func expectError(t *testing.T, r *response, status int, message string) {
	t.Helper()
	expect(t, r, status)
	var body errorBody
	r.JSON(t, &body)
	if body.Detail != message || body.Error.Message != message {
		t.Fatalf("error message = %q / %q, want %q", body.Detail, body.Error.Message, message)
	}
	if body.Error.Type == "" || body.Error.Code == "" {
		t.Fatalf("error type/code missing: %s", r.Body)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type = %q", ct)
	}
}

// caddyEnv is the environment caddy runs in: the master key, the provider
// key in the variable providerVar, and a HOME with its data and config
// directories under home.
func caddyEnv(home, providerVar string) []string {
	return append(os.Environ(),
		"GATEWAY_MASTER_KEY="+masterKey,
		providerVar+"="+providerKey,
		"HOME="+home,
		"XDG_DATA_HOME="+filepath.Join(home, "data"),
		"XDG_CONFIG_HOME="+filepath.Join(home, "config"),
	)
}

// handedOut holds every port freePort has returned in this process: the
// kernel may hand a port it just freed out again, and a test whose caddy
// got one port for its admin endpoint and for its site never became ready
// (its health probes reached the admin API).
var handedOut struct {
	sync.Mutex
	ports map[int]bool
}

// freePort returns a port that was free a moment ago and that no other
// call in this process has returned.
func freePort(t *testing.T) int {
	t.Helper()
	handedOut.Lock()
	defer handedOut.Unlock()
	if handedOut.ports == nil {
		handedOut.ports = make(map[int]bool)
	}
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !handedOut.ports[port] {
			handedOut.ports[port] = true
			return port
		}
	}
}

// syncBuffer collects a process's output from several goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
