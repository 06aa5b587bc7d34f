package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// hostileUpstream is an OpenAI-compatible provider that misbehaves on
// purpose. The model name (after the gateway strips its provider prefix)
// selects how; "stream": true picks the streaming variant where there is one:
//
//	invalid-json     200 application/json whose body is cut mid-object
//	html             200 text/html (an error page from a proxy)
//	empty            200 application/json with no body
//	redirect         307 to /v1/stolen (which records that it was reached)
//	huge-headers     200 with 11 MiB of response headers
//	gigantic         200 application/json, 100 MiB, sent as fast as possible
//	gigantic-stream  SSE: one 100 MiB data line, then [DONE]
//	endless          SSE: a chunk every 20 ms, forever
//	headers-hang     200 and headers, then nothing until cancelled
//	no-headers       nothing at all until cancelled
//	cl-lie           Content-Length larger than what is sent, then closes
//	drip             200, then the body at 1 byte per second (stream: one
//	                 complete chunk first, then the next one dripped)
//	stall            SSE: one complete chunk, then half of the next one, then
//	                 nothing until cancelled
type hostileUpstream struct {
	mockServer
	requestLog
	closed chan struct{}
	once   sync.Once
}

func newHostileUpstream(t *testing.T) *hostileUpstream {
	t.Helper()
	h := &hostileUpstream{closed: make(chan struct{})}
	h.mockServer = startMockServer(t, h.serve, func() { h.once.Do(func() { close(h.closed) }) })
	return h
}

// Paths returns the paths requested so far.
func (h *hostileUpstream) Paths() []string {
	var paths []string
	for _, r := range h.Requests() {
		paths = append(paths, r.Path)
	}
	return paths
}

// hostileChunk is one chat completion chunk carrying content.
func hostileChunk(model, content string) string {
	return fmt.Sprintf(`data: {"id":"chatcmpl-h","object":"chat.completion.chunk","created":1700000000,"model":%q,"choices":[{"index":0,"delta":{"content":%q},"finish_reason":null}]}`+"\n\n", model, content)
}

func (h *hostileUpstream) serve(w http.ResponseWriter, r *http.Request) {
	body := h.record(r)
	var req struct {
		Model  string `json:"model"`
		Stream bool   `json:"stream"`
	}
	_ = json.Unmarshal(body, &req)
	ctx := r.Context()
	rc := http.NewResponseController(w)
	// wait blocks for d, or until the request or the server ends; it
	// reports whether the handler should go on.
	wait := func(d time.Duration) bool {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return true
		case <-ctx.Done():
		case <-h.closed:
		}
		return false
	}
	hang := func() {
		select {
		case <-ctx.Done():
		case <-h.closed:
		}
	}
	sse := func() {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		_ = rc.Flush()
	}
	jsonHeader := func() {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_ = rc.Flush()
	}
	closeConn := func() {
		_ = rc.Flush()
		if conn, _, err := rc.Hijack(); err == nil {
			conn.Close()
		}
	}
	const completion = `{"id":"chatcmpl-h","object":"chat.completion","created":1700000000,"model":"drip","choices":[{"index":0,"message":{"role":"assistant","content":"Hello"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}`

	if r.URL.Path == "/v1/stolen" {
		writeMockJSON(w, completion)
		return
	}
	switch req.Model {
	case "invalid-json":
		writeMockJSON(w, `{"id":"chatcmpl-h","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Hel`)
	case "html":
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, "<html><body><h1>502 Bad Gateway</h1></body></html>")
	case "empty":
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
	case "redirect":
		http.Redirect(w, r, "/v1/stolen", http.StatusTemporaryRedirect)
	case "huge-headers":
		for i := range 11 {
			w.Header().Set(fmt.Sprintf("X-Pad-%d", i), strings.Repeat("h", 1<<20))
		}
		writeMockJSON(w, completion)
	case "gigantic":
		jsonHeader()
		chunk := []byte(strings.Repeat("x", 1<<20))
		if _, err := io.WriteString(w, `{"id":"chatcmpl-h","pad":"`); err != nil {
			return
		}
		for range 100 {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
		_, _ = io.WriteString(w, `"}`)
	case "gigantic-stream":
		sse()
		chunk := []byte(strings.Repeat("x", 1<<20))
		if _, err := io.WriteString(w, `data: {"pad":"`); err != nil {
			return
		}
		for range 100 {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
		_, _ = io.WriteString(w, "\"}\n\ndata: [DONE]\n\n")
	case "endless":
		sse()
		for i := 0; ; i++ {
			if _, err := io.WriteString(w, hostileChunk(req.Model, fmt.Sprintf("tick %d ", i))); err != nil {
				return
			}
			if rc.Flush() != nil || !wait(20*time.Millisecond) {
				return
			}
		}
	case "headers-hang":
		if req.Stream {
			sse()
		} else {
			jsonHeader()
		}
		hang()
	case "no-headers":
		hang()
	case "cl-lie":
		if req.Stream {
			w.Header().Set("Content-Type", "text/event-stream")
			w.Header().Set("Content-Length", "100000")
			w.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(w, hostileChunk(req.Model, "Hello"))
		} else {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", "4096")
			w.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(w, completion[:60])
		}
		closeConn()
	case "stall":
		sse()
		_, _ = io.WriteString(w, hostileChunk(req.Model, "Hello"))
		next := hostileChunk(req.Model, " world")
		_, _ = io.WriteString(w, next[:len(next)/2])
		_ = rc.Flush()
		hang()
	case "drip":
		rest := completion
		if req.Stream {
			sse()
			_, _ = io.WriteString(w, hostileChunk(req.Model, "Hello"))
			_ = rc.Flush()
			rest = hostileChunk(req.Model, " world") + "data: [DONE]\n\n"
		} else {
			jsonHeader()
		}
		for i := 0; i < len(rest); i++ {
			if !wait(time.Second) {
				return
			}
			if _, err := w.Write([]byte{rest[i]}); err != nil || rc.Flush() != nil {
				return
			}
		}
	default:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"error":{"message":"unknown hostile model","type":"invalid_request_error"}}`)
	}
}
