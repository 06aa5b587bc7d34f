package integration

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// completed collects the request ids of responses a client received whole.
type completed struct {
	mu  sync.Mutex
	ids []string
}

func (c *completed) add(id string) {
	c.mu.Lock()
	c.ids = append(c.ids, id)
	c.mu.Unlock()
}

func (c *completed) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.ids)
}

// chatOnce sends one request and reports its id if the response arrived
// complete: a whole JSON body, or a stream through data: [DONE].
func chatOnce(ctx context.Context, url, key string, stream bool) (string, bool) {
	body := `{"model":"mock:ok","messages":[{"role":"user","content":"hi"}]}`
	if stream {
		body = `{"model":"mock:ok","stream":true,"messages":[{"role":"user","content":"hi"}]}`
	}
	req, _ := http.NewRequestWithContext(ctx, "POST", url+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", false
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		return "", false
	}
	if stream && !strings.Contains(string(data), "data: [DONE]") {
		return "", false
	}
	return resp.Header.Get("X-Request-Id"), true
}

// killAndRestart kills caddy with SIGKILL and starts it again on the same
// storage, which must open without repair.
func killAndRestart(t *testing.T, g *gateway) {
	t.Helper()
	if err := g.cmd.Process.Signal(os.Kill); err != nil {
		t.Fatal(err)
	}
	<-g.exited
	g.start()
}

// checkBilled asserts that every completed request has its usage record
// and that spend equals the sum of the records.
func checkBilled(t *testing.T, ig *inferenceGateway, done []string) {
	t.Helper()
	// Requests the clients gave up on may still be recording.
	waitFor(t, "no request in flight", func() bool {
		return ig.metrics(t)["gateway_active_requests"] == 0
	})
	byID := make(map[string]usageRecord)
	var sum float64
	for skip := 0; ; skip += 1000 {
		page := ig.usage(t, fmt.Sprintf("user_id=alice&limit=1000&skip=%d", skip))
		for _, r := range page {
			byID[r.RequestID] = r
			sum += r.Cost
		}
		if len(page) < 1000 {
			break
		}
	}
	for _, id := range done {
		if r, ok := byID[id]; !ok || r.Status != "success" {
			t.Fatalf("request %s was answered in full but its usage record is %+v (found %v)", id, r, ok)
		}
	}
	if spend := ig.spend(t, "/v1/users/alice"); math.Abs(spend-sum) > 1e-9 {
		t.Fatalf("user spend %v, records sum to %v", spend, sum)
	}
	if spend := ig.spend(t, "/v1/keys/"+ig.kid); math.Abs(spend-sum) > 1e-9 {
		t.Fatalf("key spend %v, records sum to %v", spend, sum)
	}
}

// TestKillDuringLoadLosesNoBilledRequest kills caddy with SIGKILL mid-burst
// (non-stream and stream requests in flight), mid-stream, and during admin
// writes. After each restart every response a client received whole is
// billed, spend equals the records, and every acknowledged write is there.
// It runs in both durability modes: a record in the operating system
// (the default) survives the process as surely as one on disk.
func TestKillDuringLoadLosesNoBilledRequest(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"", "durability fsync"} {
		name := "default (os)"
		if mode != "" {
			name = mode
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			killDuringLoad(t, startInferenceGateway(t, mode))
		})
	}
}

// killDuringLoad is TestKillDuringLoadLosesNoBilledRequest on one gateway.
func killDuringLoad(t *testing.T, ig *inferenceGateway) {
	var all []string

	t.Run("mid-burst", func(t *testing.T) {
		var done completed
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				for ctx.Err() == nil {
					if id, ok := chatOnce(ctx, ig.URL, ig.key, w%2 == 1); ok {
						done.add(id)
					}
				}
			})
		}
		waitFor(t, "40 completed requests", func() bool { return done.len() >= 40 })
		killAndRestart(t, ig.gateway)
		cancel()
		wg.Wait()
		all = append(all, done.ids...)
		checkBilled(t, ig, all)
	})

	t.Run("mid-stream", func(t *testing.T) {
		// Streams hold after their first chunk; kill while they are open.
		var bodies []io.Closer
		for range 4 {
			resp := ig.postStream(context.Background(), t, "/v1/chat/completions", gatedChat, ig.key)
			if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil {
				t.Fatal(err)
			}
			bodies = append(bodies, resp.Body)
		}
		killAndRestart(t, ig.gateway)
		for _, b := range bodies {
			b.Close()
		}
		checkBilled(t, ig, all)
	})

	t.Run("during admin writes", func(t *testing.T) {
		var mu sync.Mutex
		var acked []string
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				for i := 0; ctx.Err() == nil; i++ {
					id := fmt.Sprintf("crash-%d-%d", w, i)
					req, _ := http.NewRequestWithContext(ctx, "POST", ig.URL+"/v1/users", strings.NewReader(`{"user_id":"`+id+`"}`))
					req.Header.Set("X-AnyLLM-Key", "Bearer "+masterKey)
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						continue
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode == 200 {
						mu.Lock()
						acked = append(acked, id)
						mu.Unlock()
					}
				}
			})
		}
		waitFor(t, "40 acknowledged writes", func() bool { mu.Lock(); defer mu.Unlock(); return len(acked) >= 40 })
		killAndRestart(t, ig.gateway)
		cancel()
		wg.Wait()
		for _, id := range acked {
			expect(t, ig.adminDo("GET", "/v1/users/"+id, nil), 200)
		}
		checkBilled(t, ig, all)
	})
}

// TestGracefulStopDrainsStreams stops caddy (SIGINT, as `caddy stop` does)
// while a stream is in flight: the stream completes, and it is billed.
func TestGracefulStopDrainsStreams(t *testing.T) {
	t.Parallel()
	ig := startInferenceGateway(t, "")
	resp := ig.postStream(context.Background(), t, "/v1/chat/completions", gatedChat, ig.key)
	defer resp.Body.Close()
	id := resp.Header.Get("X-Request-Id")
	br := bufio.NewReader(resp.Body)
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}

	if err := ig.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	// Once the listener is closed the server is draining.
	waitFor(t, "the listener to close", func() bool {
		c, err := net.DialTimeout("tcp", strings.TrimPrefix(ig.URL, "http://"), time.Second)
		if err != nil {
			return true
		}
		c.Close()
		return false
	})
	ig.mock.release()
	rest, err := io.ReadAll(br)
	if err != nil || !strings.Contains(string(rest), "data: [DONE]") {
		t.Fatalf("stream cut by the stop: %v %q", err, rest)
	}
	select {
	case <-ig.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("caddy did not exit after draining")
	}
	ig.start()
	rec := ig.recordFor(t, id)
	if rec.Status != "success" || rec.UsageSource != "provider" {
		t.Fatalf("drained stream record = %+v", rec)
	}
}
