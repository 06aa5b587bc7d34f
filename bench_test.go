package llmgateway

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/llmgateway/caddy-llm-gateway/internal/metering"
	"github.com/llmgateway/caddy-llm-gateway/storage"
)

// benchKeys is how many keys the authentication benchmark stores:
// BENCH_KEYS, default 1,000,000 (CI sets a small number to run it once).
func benchKeys(b *testing.B) int {
	if v := os.Getenv("BENCH_KEYS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			b.Fatal(err)
		}
		return n
	}
	return 1_000_000
}

// BenchmarkAuthenticateCacheHit measures credential extraction, the
// master-key comparison, the format check and the key lookup (a cache hit)
// with many keys in the store.
func BenchmarkAuthenticateCacheHit(b *testing.B) {
	store, err := storage.Open(storage.Options{InMemory: true})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	now := time.Now().UTC()
	if err := store.CreateUser(&storage.User{UserID: "u", CreatedAt: now, UpdatedAt: now}); err != nil {
		b.Fatal(err)
	}
	n := benchKeys(b)
	var secret string
	var wg sync.WaitGroup
	const workers = 8
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				s, hash, err := generateKey()
				if err != nil {
					b.Error(err)
					return
				}
				if i == 0 {
					secret = s
				}
				k := &storage.APIKey{ID: fmt.Sprintf("k%08d", i), KeyHash: hash, UserID: "u", CreatedAt: now, IsActive: true}
				if err := store.CreateKey(k, nil); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()

	g := &Gateway{hasMaster: true, masterHash: sha256Sum("the-master-key")}
	g.state = &gatewayState{store: store, cache: newCaches(), touch: newTouchQueue()}
	req := httptest.NewRequest("POST", "/v1/chat/completions", nil)
	req.Header.Set("Authorization", "Bearer "+secret)
	if _, err := g.authenticate(req); err != nil { // fills the cache
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := g.authenticate(req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReserveAndSettle measures one request's reservation against a
// user and a key budget and its settlement, through the meter over the
// store.
func BenchmarkReserveAndSettle(b *testing.B) {
	store, err := storage.Open(storage.Options{InMemory: true})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	var m metering.Meter = metering.NewMemory(storeSpend{store})
	maxBudget := storage.Dollars(1e9)
	budgets := []metering.Budget{
		{Account: userAccount("u"), Max: &maxBudget},
		{Account: keyAccount("k"), Max: &maxBudget},
	}
	b.ReportAllocs()
	for b.Loop() {
		h, err := m.Admit(b.Context(), metering.Request{Budgets: budgets, Cost: storage.Dollars(0.001)})
		if err != nil {
			b.Fatal(err)
		}
		m.Settle(h, storage.Dollars(0.0005), 0)
	}
}

// BenchmarkRecordUsage measures committing one usage record (group commit,
// in memory: the encoding and the transaction, not the disk).
func BenchmarkRecordUsage(b *testing.B) {
	store, err := storage.Open(storage.Options{InMemory: true})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	start := time.Now().UTC()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		rec := &storage.UsageRecord{
			ID: fmt.Sprintf("r%09d", i), RequestID: "req", UserID: "u", APIKeyID: "k",
			Timestamp: start.Add(time.Duration(i)), Model: "gpt-4o-mini", Provider: "openai",
			Endpoint: "/v1/chat/completions", PromptTokens: 11, CompletionTokens: 7, TotalTokens: 18,
			Cost: storage.Dollars(0.0000123), Status: "success", StatusCode: 200, UsageSource: "provider",
		}
		if err := store.RecordUsage(ctx, rec); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkServeChatCompletion measures one non-stream chat completion
// through ServeHTTP with what the bench's (c) row has on: a virtual key
// of a user on a budget, a price, metering and a usage record on disk
// (durability os), against an in-process provider. Serial waits for each
// record on its own; parallel lets the usage writer batch them. Its
// allocations are the gateway's and the in-process provider's together:
// run it with -memprofile and read the gateway's own under ServeHTTP.
func BenchmarkServeChatCompletion(b *testing.B) {
	tg := newTestGateway(b)
	master := tg.g.MasterKey
	_, budget := tg.serve(b, "POST", "/v1/budgets", `{"max_budget":1000000000}`, master)
	if status, _ := tg.serve(b, "POST", "/v1/users", fmt.Sprintf(`{"user_id":"u","budget_id":%q}`, budget["budget_id"]), master); status != 200 {
		b.Fatalf("POST /v1/users: %d", status)
	}
	_, created := tg.serve(b, "POST", "/v1/keys", `{"user_id":"u"}`, master)
	key, _ := created["key"].(string)
	if key == "" {
		b.Fatalf("POST /v1/keys returned no key: %v", created)
	}
	const body = `{"model":"mock:m","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Write a haiku about Jupiter and explain each line."}],"max_tokens":300,"temperature":0.7}`
	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })
	serve := func() error {
		req := httptest.NewRequest("POST", "/v1/chat/completions", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		if err := tg.g.ServeHTTP(w, req, next); err != nil {
			return err
		}
		if w.Code != http.StatusOK {
			return fmt.Errorf("status %d: %s", w.Code, w.Body.Bytes())
		}
		return nil
	}
	if err := serve(); err != nil {
		b.Fatal(err)
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := serve(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(32)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := serve(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
