package llmgateway

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/llmgateway/caddy-llm-gateway/storage"
)

// faultyStore fails every write while broken, as a store on a full or
// read-only disk does; reads keep working.
type faultyStore struct {
	gatewayStore
	mu     sync.Mutex
	broken bool
}

var errDiskFull = errors.New("write /data/000001.vlog: no space left on device")

func (f *faultyStore) setBroken(b bool) {
	f.mu.Lock()
	f.broken = b
	f.mu.Unlock()
}

func (f *faultyStore) fail() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.broken {
		return errDiskFull
	}
	return nil
}

func (f *faultyStore) Probe() error {
	if err := f.fail(); err != nil {
		return err
	}
	return f.gatewayStore.Probe()
}

func (f *faultyStore) CreateUser(u *storage.User) error {
	if err := f.fail(); err != nil {
		return err
	}
	return f.gatewayStore.CreateUser(u)
}

func (f *faultyStore) CreateKey(k *storage.APIKey, u *storage.User) error {
	if err := f.fail(); err != nil {
		return err
	}
	return f.gatewayStore.CreateKey(k, u)
}

func (f *faultyStore) RecordUsage(ctx context.Context, rec *storage.UsageRecord) error {
	if err := f.fail(); err != nil {
		return err
	}
	return f.gatewayStore.RecordUsage(ctx, rec)
}

// testGateway is a provisioned Gateway in front of a mock provider,
// driven through ServeHTTP.
type testGateway struct {
	g        *Gateway
	store    *faultyStore
	upstream atomic.Int64 // requests the provider received
	now      atomic.Int64 // the gateway's clock, Unix nanoseconds
}

func newTestGateway(t testing.TB) *testGateway {
	t.Helper()
	tg := &testGateway{}
	tg.now.Store(time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	provider := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tg.upstream.Add(1)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"c","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi"}}],"usage":{"prompt_tokens":3,"completion_tokens":2}}`)
	}))
	t.Cleanup(provider.Close)
	tg.g = &Gateway{
		MasterKey:   "master-key-for-tests",
		StoragePath: t.TempDir(),
		Providers:   map[string]*ProviderConfig{"mock": {BaseURLs: []string{provider.URL + "/v1"}}},
		Pricing:     map[string]PriceConfig{"mock:m": {InputPricePerMillion: 1, OutputPricePerMillion: 2}},
		clock:       func() time.Time { return time.Unix(0, tg.now.Load()) },
	}
	provisionAndStart(t, tg.g)
	tg.store = &faultyStore{gatewayStore: tg.g.state.store}
	tg.g.state.store = tg.store
	tg.g.state.meter = newMemoryMeter(tg.store)
	return tg
}

// provisionAndStart provisions g in a config context, as Caddy does, and
// starts it, as the llm_gateway app does when the config starts; g is
// cleaned up with the test.
func provisionAndStart(t testing.TB, g *Gateway) {
	t.Helper()
	ctx, err := caddy.ProvisionContext(&caddy.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := g.Cleanup(); err != nil {
			t.Error(err)
		}
	})
	if err := g.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := g.start(); err != nil {
		t.Fatal(err)
	}
}

func (tg *testGateway) advance(d time.Duration) { tg.now.Add(int64(d)) }

// serve sends a request through the handler and returns status and body.
func (tg *testGateway) serve(t testing.TB, method, path, body, key string) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	w := httptest.NewRecorder()
	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })
	if err := tg.g.ServeHTTP(w, req, next); err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if w.Body.Len() > 0 && json.Unmarshal(w.Body.Bytes(), &out) != nil {
		t.Fatalf("%s %s: body is not JSON: %q", method, path, w.Body.String())
	}
	return w.Code, out
}

// served is a finished request.
type served struct {
	status int
	body   map[string]any
}

func expectUnavailable(t *testing.T, r served) {
	t.Helper()
	status, body := r.status, r.body
	errObj, _ := body["error"].(map[string]any)
	if status != http.StatusServiceUnavailable || body["detail"] != "Database unavailable" || errObj["type"] != "server_error" {
		t.Fatalf("got %d %v, want 503 Database unavailable", status, body)
	}
	if strings.Contains(body["detail"].(string), "no space") {
		t.Fatal("the store's error text reached the client")
	}
}

const chatBody = `{"model":"mock:m","messages":[{"role":"user","content":"hi"}]}`

func TestStoreWriteFailureRefusesUnbilledTrafficAndRecovers(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t)
	master := tg.g.MasterKey
	status, _ := tg.serve(t, "POST", "/v1/users", `{"user_id":"alice"}`, master)
	if status != 200 {
		t.Fatalf("create user: %d", status)
	}
	_, created := tg.serve(t, "POST", "/v1/keys", `{"user_id":"alice"}`, master)
	key := created["key"].(string)

	tg.store.setBroken(true)

	// The first call cannot be billed: the provider answered, but the
	// client gets a 503 rather than an unbilled answer.
	expectUnavailable(t, tg.result(t, "POST", "/v1/chat/completions", chatBody, key))
	if n := tg.upstream.Load(); n != 1 {
		t.Fatalf("provider saw %d requests, want 1", n)
	}
	// From then on new calls are refused before reaching the provider.
	for range 3 {
		expectUnavailable(t, tg.result(t, "POST", "/v1/chat/completions", chatBody, key))
		tg.advance(2 * probeInterval) // each refusal probes the store again
	}
	if n := tg.upstream.Load(); n != 1 {
		t.Fatalf("provider saw %d requests while the store was failing, want 1", n)
	}
	// Admin writes answer the contract's 503; reads still work.
	expectUnavailable(t, tg.result(t, "POST", "/v1/users", `{"user_id":"bob"}`, master))
	if status, _ := tg.serve(t, "GET", "/v1/users/alice", "", master); status != 200 {
		t.Fatalf("reading a user while writes fail: %d", status)
	}

	// The store recovers: the next request after the probe interval goes through.
	tg.store.setBroken(false)
	tg.advance(2 * probeInterval)
	if status, body := tg.serve(t, "POST", "/v1/chat/completions", chatBody, key); status != 200 {
		t.Fatalf("after recovery: %d %v", status, body)
	}
	if status, _ := tg.serve(t, "POST", "/v1/users", `{"user_id":"bob"}`, master); status != 200 {
		t.Fatalf("admin write after recovery: %d", status)
	}
	// Only the billed call is in the records.
	records, err := tg.g.state.store.ListUsage(storage.UsageFilter{UserID: "alice"}, 0, 10)
	if err != nil || len(records) != 1 || records[0].Status != "success" {
		t.Fatalf("records = %+v, %v", records, err)
	}
}

func (tg *testGateway) result(t *testing.T, method, path, body, key string) served {
	t.Helper()
	status, out := tg.serve(t, method, path, body, key)
	return served{status, out}
}

func TestClosedStoreAnswersUnavailable(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t)
	master := tg.g.MasterKey
	if err := tg.store.gatewayStore.Close(); err != nil {
		t.Fatal(err)
	}
	expectUnavailable(t, tg.result(t, "POST", "/v1/users", `{"user_id":"carol"}`, master))
	expectUnavailable(t, tg.result(t, "GET", "/v1/users", "", master))
	status, body := tg.serve(t, "GET", "/health/readiness", "", "")
	detail, _ := body["detail"].(map[string]any)
	if status != 503 || detail["database"] != "unavailable" || strings.Contains(strings.ToLower(jsonString(body)), "closed") {
		t.Fatalf("readiness with a closed store: %d %v", status, body)
	}
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestKeyOfDeletedUserCannotBeReactivated(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t)
	master := tg.g.MasterKey
	tg.serve(t, "POST", "/v1/users", `{"user_id":"dora"}`, master)
	_, created := tg.serve(t, "POST", "/v1/keys", `{"user_id":"dora"}`, master)
	id := created["id"].(string)
	if status, _ := tg.serve(t, "DELETE", "/v1/users/dora", "", master); status != 204 {
		t.Fatalf("delete user: %d", status)
	}
	status, body := tg.serve(t, "PATCH", "/v1/keys/"+id, `{"is_active":true}`, master)
	if status != 404 || body["detail"] != "User 'dora' has been deleted. Recreate via POST /v1/users first." {
		t.Fatalf("reactivating: %d %v", status, body)
	}
	// Re-creating the user lets the key be reactivated.
	tg.serve(t, "POST", "/v1/users", `{"user_id":"dora"}`, master)
	if status, body := tg.serve(t, "PATCH", "/v1/keys/"+id, `{"is_active":true}`, master); status != 200 || body["is_active"] != true {
		t.Fatalf("reactivating after re-creation: %d %v", status, body)
	}
}
