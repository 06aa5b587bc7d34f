package integration

import (
	"bufio"
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// TestReloadUnderLoadLosesNothing reloads a changed config while admin
// writes, inference requests and a stream are in flight: no request fails,
// there is no lock error, the stream begun under the old config is billed,
// and data written before and after the reload is all there.
func TestReloadUnderLoadLosesNothing(t *testing.T) {
	t.Parallel()
	ig := startInferenceGateway(t, "")
	cfg := func(extra string) gatewayConfig {
		return gatewayConfig{Block: fmt.Sprintf(`provider mock {
			api_key {env.PROVIDER_KEY}
			base_url %s
		}
		price mock:ok %v %v
		price mock:gated %v %v
		%s`, ig.mock.BaseURL(), inputPrice, outputPrice, inputPrice, outputPrice, extra)}
	}

	// A stream that stays open across the reloads.
	stream := ig.postStream(context.Background(), t, "/v1/chat/completions", gatedChat, ig.key)
	defer stream.Body.Close()
	streamID := stream.Header.Get("X-Request-Id")
	br := bufio.NewReader(stream.Body)
	if line, err := br.ReadString('\n'); err != nil || !strings.Contains(line, "Hello") {
		t.Fatalf("first stream line %q, %v", line, err)
	}

	var failures atomic.Int64
	var users atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				// Clients resend on connection errors, as the SDKs do:
				// a reload resets connections the gateway never read.
				var r *response
				if w%2 == 0 {
					r = ig.doLikeSDK("POST", "/v1/users", map[string]any{"user_id": fmt.Sprintf("u-%d-%d", w, i)},
						"X-AnyLLM-Key", "Bearer "+masterKey)
					if r.Status == 200 {
						users.Add(1)
					}
				} else {
					r = ig.doLikeSDK("POST", "/v1/chat/completions", `{"model":"mock:ok","messages":[{"role":"user","content":"hi"}]}`,
						"Authorization", "Bearer "+ig.key)
				}
				if r.Status != 200 {
					failures.Add(1)
					t.Errorf("request failed during reload: %d %s", r.Status, r.Body)
				}
			}
		}()
	}
	for i := range 5 {
		if err := ig.reload(cfg(fmt.Sprintf("price mock:extra-%d 1 1", i))); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
	}
	close(stop)
	wg.Wait()
	if strings.Contains(ig.output.String(), "Cannot acquire directory lock") {
		t.Fatalf("lock error in caddy's output:\n%s", ig.output.String())
	}

	ig.mock.release()
	var rest strings.Builder
	for {
		line, err := br.ReadString('\n')
		rest.WriteString(line)
		if err != nil {
			break
		}
	}
	if !strings.Contains(rest.String(), "data: [DONE]") {
		t.Fatalf("stream begun before the reloads did not complete: %q", rest.String())
	}
	rec := ig.recordFor(t, streamID)
	if rec.Status != "success" || rec.UsageSource != "provider" {
		t.Fatalf("stream record = %+v", rec)
	}

	// Everything written before and during the reloads is there, and the
	// new config is live (its price is listed).
	listed := 0
	for skip := 0; ; skip += 1000 {
		var page []map[string]any
		expect(t, ig.adminDo("GET", fmt.Sprintf("/v1/users?limit=1000&skip=%d", skip), nil), 200).JSON(t, &page)
		listed += len(page)
		if len(page) < 1000 {
			break
		}
	}
	if int64(listed) != users.Load()+1 { // +1: alice
		t.Fatalf("%d users listed, %d created (+alice)", listed, users.Load())
	}
	expect(t, ig.adminDo("GET", "/v1/pricing/mock:extra-4", nil), 200)
	if failures.Load() != 0 {
		t.Fatalf("%d requests failed", failures.Load())
	}
}
