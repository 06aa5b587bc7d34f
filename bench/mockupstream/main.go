// Command mockupstream is a fast OpenAI-compatible upstream for benchmarks.
//
// It answers POST /v1/chat/completions (JSON, or SSE when the body has
// "stream": true) and POST /v1/embeddings with responses built once at start,
// so a request costs little more than reading its body and writing
// precomputed bytes. Usage is always part of a non-stream response; a stream
// ends with a usage-only chunk when stream_options.include_usage is true,
// as OpenAI does. GET /health answers 200 for readiness checks.
//
//	mockupstream -addr 127.0.0.1:18400 -content-bytes 1000 -chunks 20 -chunk-delay 0
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18400", "listen address")
	contentBytes := flag.Int("content-bytes", 1000, "bytes of assistant content per chat completion")
	chunks := flag.Int("chunks", 20, "content chunks per stream (plus a role chunk, a finish chunk, the usage chunk and [DONE])")
	chunkDelay := flag.Duration("chunk-delay", 0, "delay before each content chunk of a stream (e.g. 20ms); 0 writes the stream at once")
	promptTokens := flag.Int("prompt-tokens", 12, "prompt_tokens reported in usage")
	embeddingDims := flag.Int("embedding-dims", 256, "dimensions of each embedding vector")
	model := flag.String("model", "bench", "model name written in responses")
	maxBody := flag.Int64("max-body", 16<<20, "largest request body accepted")
	flag.Parse()

	if *contentBytes < 0 || *chunks < 1 || *promptTokens < 0 || *embeddingDims < 1 {
		fmt.Fprintln(os.Stderr, "mockupstream: -content-bytes >= 0, -chunks >= 1, -prompt-tokens >= 0, -embedding-dims >= 1")
		os.Exit(2)
	}

	m := newMock(config{
		contentBytes:  *contentBytes,
		chunks:        *chunks,
		chunkDelay:    *chunkDelay,
		promptTokens:  *promptTokens,
		embeddingDims: *embeddingDims,
		model:         *model,
		maxBody:       *maxBody,
	})

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("mockupstream: %v", err)
	}
	srv := &http.Server{
		Handler:           m,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       5 * time.Minute,
		ErrorLog:          log.New(io.Discard, "", 0), // connection resets are expected under load
	}
	done := make(chan struct{})
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
		<-sig
		_ = srv.Close()
		close(done)
	}()
	log.Printf("mockupstream: listening on %s (content %d bytes, %d chunks, chunk delay %s)",
		ln.Addr(), *contentBytes, *chunks, *chunkDelay)
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatalf("mockupstream: %v", err)
	}
	<-done
}

type config struct {
	contentBytes  int
	chunks        int
	chunkDelay    time.Duration
	promptTokens  int
	embeddingDims int
	model         string
	maxBody       int64
}

// mock holds every response, encoded once.
type mock struct {
	chunkDelay time.Duration
	maxBody    int64

	chat       []byte // non-stream chat completion
	chatLen    []string
	streamHead []byte   // role chunk
	streamBody [][]byte // content chunks
	streamTail []byte   // finish chunk
	streamUse  []byte   // usage-only chunk
	streamDone []byte
	// Whole streams for chunkDelay == 0, written with one Write.
	streamAll        []byte
	streamAllNoUsage []byte
	embed            []byte
	embedLen         []string

	bufs sync.Pool // *[]byte, request bodies
}

// Header values shared by all responses; net/http only reads them.
var (
	hdrJSON    = []string{"application/json"}
	hdrSSE     = []string{"text/event-stream"}
	hdrNoCache = []string{"no-cache"}
)

func newMock(c config) *mock {
	created := time.Now().Unix()
	content := makeContent(c.contentBytes)
	completionTokens := (c.contentBytes + 3) / 4
	usage := fmt.Sprintf(`{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}`,
		c.promptTokens, completionTokens, c.promptTokens+completionTokens)
	modelJSON := strconv.Quote(c.model)

	m := &mock{chunkDelay: c.chunkDelay, maxBody: c.maxBody}
	m.bufs.New = func() any { b := make([]byte, 0, 4096); return &b }

	m.chat = []byte(fmt.Sprintf(`{"id":"chatcmpl-bench","object":"chat.completion","created":%d,"model":%s,`+
		`"choices":[{"index":0,"message":{"role":"assistant","content":%q},"logprobs":null,"finish_reason":"stop"}],`+
		`"usage":%s,"system_fingerprint":"fp_bench"}`, created, modelJSON, content, usage))
	m.chatLen = []string{strconv.Itoa(len(m.chat))}

	chunk := func(delta, finish, extra string) []byte {
		return []byte(fmt.Sprintf(`data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":%d,"model":%s,`+
			`"system_fingerprint":"fp_bench","choices":[{"index":0,"delta":%s,"logprobs":null,"finish_reason":%s}]%s}`+"\n\n",
			created, modelJSON, delta, finish, extra))
	}
	m.streamHead = chunk(`{"role":"assistant","content":""}`, "null", "")
	for _, part := range split(content, c.chunks) {
		m.streamBody = append(m.streamBody, chunk(fmt.Sprintf(`{"content":%q}`, part), "null", ""))
	}
	m.streamTail = chunk(`{}`, `"stop"`, "")
	m.streamUse = []byte(fmt.Sprintf(`data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":%d,"model":%s,`+
		`"system_fingerprint":"fp_bench","choices":[],"usage":%s}`+"\n\n", created, modelJSON, usage))
	m.streamDone = []byte("data: [DONE]\n\n")

	var all bytes.Buffer
	all.Write(m.streamHead)
	for _, b := range m.streamBody {
		all.Write(b)
	}
	all.Write(m.streamTail)
	noUsage := all.Len()
	all.Write(m.streamUse)
	all.Write(m.streamDone)
	m.streamAll = all.Bytes()
	m.streamAllNoUsage = append(append([]byte(nil), m.streamAll[:noUsage]...), m.streamDone...)

	var emb strings.Builder
	emb.WriteString(`{"object":"list","data":[{"object":"embedding","index":0,"embedding":[`)
	for i := 0; i < c.embeddingDims; i++ {
		if i > 0 {
			emb.WriteByte(',')
		}
		// Deterministic values in (-1, 1) with the length of real ones.
		v := float64((i*7919)%2000-1000) / 1000.0123
		emb.WriteString(strconv.FormatFloat(v, 'f', 9, 64))
	}
	fmt.Fprintf(&emb, `]}],"model":%s,"usage":{"prompt_tokens":%d,"total_tokens":%d}}`, modelJSON, c.promptTokens, c.promptTokens)
	m.embed = []byte(emb.String())
	m.embedLen = []string{strconv.Itoa(len(m.embed))}
	return m
}

// makeContent returns n bytes of plain ASCII words (no JSON escapes).
func makeContent(n int) string {
	const words = "The quick brown fox jumps over the lazy dog while the gateway counts tokens. "
	var b strings.Builder
	b.Grow(n)
	for b.Len() < n {
		rest := n - b.Len()
		if rest >= len(words) {
			b.WriteString(words)
		} else {
			b.WriteString(words[:rest])
		}
	}
	return b.String()
}

// split cuts s into n nearly equal parts (some empty when s is short).
func split(s string, n int) []string {
	parts := make([]string, n)
	for i := range n {
		parts[i] = s[len(s)*i/n : len(s)*(i+1)/n]
	}
	return parts
}

func (m *mock) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/v1/chat/completions", "/chat/completions":
		if r.Method != http.MethodPost {
			http.Error(w, `{"error":{"message":"method not allowed","type":"invalid_request_error"}}`, http.StatusMethodNotAllowed)
			return
		}
		m.chatCompletion(w, r)
	case "/v1/embeddings", "/embeddings":
		if r.Method != http.MethodPost {
			http.Error(w, `{"error":{"message":"method not allowed","type":"invalid_request_error"}}`, http.StatusMethodNotAllowed)
			return
		}
		if !m.drain(w, r) {
			return
		}
		h := w.Header()
		h["Content-Type"] = hdrJSON
		h["Content-Length"] = m.embedLen
		_, _ = w.Write(m.embed)
	case "/health":
		w.WriteHeader(http.StatusOK)
	default:
		http.Error(w, `{"error":{"message":"not found","type":"invalid_request_error"}}`, http.StatusNotFound)
	}
}

// drain reads and discards the body; false when it answered an error.
func (m *mock) drain(w http.ResponseWriter, r *http.Request) bool {
	bp := m.bufs.Get().(*[]byte)
	defer m.bufs.Put(bp)
	_, err := readBody(r.Body, bp, m.maxBody)
	if err != nil {
		badRequest(w, err)
		return false
	}
	return true
}

func (m *mock) chatCompletion(w http.ResponseWriter, r *http.Request) {
	bp := m.bufs.Get().(*[]byte)
	body, err := readBody(r.Body, bp, m.maxBody)
	if err != nil {
		m.bufs.Put(bp)
		badRequest(w, err)
		return
	}
	stream, includeUsage, err := streamFlags(body)
	m.bufs.Put(bp)
	if err != nil {
		badRequest(w, err)
		return
	}
	h := w.Header()
	if !stream {
		h["Content-Type"] = hdrJSON
		h["Content-Length"] = m.chatLen
		_, _ = w.Write(m.chat)
		return
	}

	h["Content-Type"] = hdrSSE
	h["Cache-Control"] = hdrNoCache
	if m.chunkDelay <= 0 {
		if includeUsage {
			_, _ = w.Write(m.streamAll)
		} else {
			_, _ = w.Write(m.streamAllNoUsage)
		}
		return
	}
	rc := http.NewResponseController(w)
	if _, err := w.Write(m.streamHead); err != nil {
		return
	}
	_ = rc.Flush()
	timer := time.NewTimer(m.chunkDelay)
	defer timer.Stop()
	for i, c := range m.streamBody {
		if i > 0 {
			timer.Reset(m.chunkDelay)
		}
		select {
		case <-timer.C:
		case <-r.Context().Done():
			return
		}
		if _, err := w.Write(c); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
	_, _ = w.Write(m.streamTail)
	if includeUsage {
		_, _ = w.Write(m.streamUse)
	}
	_, _ = w.Write(m.streamDone)
}

func badRequest(w http.ResponseWriter, err error) {
	w.Header()["Content-Type"] = hdrJSON
	w.WriteHeader(http.StatusBadRequest)
	fmt.Fprintf(w, `{"error":{"message":%q,"type":"invalid_request_error"}}`, err.Error())
}

// readBody reads r into *bp (grown as needed, kept for reuse), up to max
// bytes.
func readBody(r io.Reader, bp *[]byte, max int64) ([]byte, error) {
	b := (*bp)[:0]
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if int64(len(b)) > max {
			*bp = b[:0]
			return nil, fmt.Errorf("request body over %d bytes", max)
		}
		if err == io.EOF {
			*bp = b[:0]
			return b, nil
		}
		if err != nil {
			*bp = b[:0]
			return nil, err
		}
	}
}
