// Command loadgen sends one request over and over from a fixed number of
// workers, for a fixed duration or request count, and reports throughput
// and latency percentiles.
//
//	loadgen -url http://127.0.0.1:18402/v1/chat/completions -c 64 -d 10s \
//	    -body-file chat.json -H 'Authorization: Bearer gw-…' [-stream] [-json]
//
// Each worker keeps one connection (keep-alive) and sends its next request
// as soon as the previous response has been read to the end. Latency is
// from just before the request is written to the end of the response body;
// with -stream the time to first byte (TTFB) is also measured, up to the
// first SSE "data:" line. Only successful responses (2xx, and for streams a
// final "data: [DONE]" and no error event) enter the latency histograms;
// the others are counted as errors by cause.
//
// With -keys-file (one virtual key per line), worker i sends its requests
// with the key on line i mod N as its bearer token, so that N accounts
// share the load.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type headerFlag []string

func (h *headerFlag) String() string     { return strings.Join(*h, ", ") }
func (h *headerFlag) Set(v string) error { *h = append(*h, v); return nil }

type options struct {
	url         string
	method      string
	body        []byte
	header      http.Header
	keyHeaders  []http.Header // -keys-file: one header set per key
	concurrency int
	duration    time.Duration
	requests    int64
	warmup      time.Duration
	timeout     time.Duration
	stream      bool
	pid         int
	metrics     string
}

func main() {
	var (
		o        options
		headers  headerFlag
		body     = flag.String("body", "", "request body (inline)")
		bodyFile = flag.String("body-file", "", "file holding the request body")
		jsonOut  = flag.Bool("json", false, "print the result as JSON")
		keysFile = flag.String("keys-file", "", "file of bearer keys, one a line: worker i uses key i mod N")
	)
	flag.StringVar(&o.url, "url", "", "target URL (required)")
	flag.StringVar(&o.method, "method", "", "HTTP method (default POST with a body, GET without)")
	flag.Var(&headers, "H", "request header 'Name: value' (repeatable)")
	flag.IntVar(&o.concurrency, "c", 1, "concurrent workers (one connection each)")
	flag.DurationVar(&o.duration, "d", 10*time.Second, "measured duration (ignored with -n)")
	flag.Int64Var(&o.requests, "n", 0, "total measured requests instead of a duration")
	flag.DurationVar(&o.warmup, "warmup", 0, "unmeasured warm-up before the measurement")
	flag.DurationVar(&o.timeout, "timeout", 60*time.Second, "per-request timeout")
	flag.BoolVar(&o.stream, "stream", false, "read the response as SSE: measure TTFB and require a final [DONE]")
	flag.IntVar(&o.pid, "pid", 0, "also report the CPU time this process (the server) used during the measurement (Linux)")
	flag.StringVar(&o.metrics, "metrics", "", "Prometheus URL of the server (caddy's admin /metrics): also report its heap allocations per request")
	flag.Parse()

	fail := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "loadgen: "+format+"\n", args...)
		os.Exit(2)
	}
	if o.url == "" {
		fail("-url is required")
	}
	if _, err := url.ParseRequestURI(o.url); err != nil {
		fail("-url: %v", err)
	}
	if o.concurrency < 1 {
		fail("-c must be at least 1")
	}
	if o.requests <= 0 && o.duration <= 0 {
		fail("give -d > 0 or -n > 0")
	}
	switch {
	case *body != "" && *bodyFile != "":
		fail("give -body or -body-file, not both")
	case *bodyFile != "":
		b, err := os.ReadFile(*bodyFile)
		if err != nil {
			fail("%v", err)
		}
		o.body = b
	case *body != "":
		o.body = []byte(*body)
	}
	if o.method == "" {
		o.method = http.MethodGet
		if o.body != nil {
			o.method = http.MethodPost
		}
	}
	o.header = http.Header{}
	for _, h := range headers {
		name, value, ok := strings.Cut(h, ":")
		if !ok || strings.TrimSpace(name) == "" {
			fail("-H %q: want 'Name: value'", h)
		}
		o.header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	if o.body != nil && o.header.Get("Content-Type") == "" {
		o.header.Set("Content-Type", "application/json")
	}
	if o.header.Get("User-Agent") == "" {
		o.header.Set("User-Agent", "llm-gateway-loadgen/1")
	}
	if *keysFile != "" {
		b, err := os.ReadFile(*keysFile)
		if err != nil {
			fail("%v", err)
		}
		for _, k := range strings.Fields(string(b)) {
			h := o.header.Clone()
			h.Set("Authorization", "Bearer "+k)
			o.keyHeaders = append(o.keyHeaders, h)
		}
		if len(o.keyHeaders) == 0 {
			fail("-keys-file %s: no keys", *keysFile)
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res := run(ctx, o)
	if *jsonOut {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(res)
	} else {
		res.print(os.Stdout)
	}
	if res.Requests == 0 {
		os.Exit(1)
	}
}

// worker is one client loop; its counters are merged at the end.
type worker struct {
	latency histogram
	ttfb    histogram
	ok      int64
	bytes   int64
	errs    map[string]int64
	sample  []string // first few distinct error descriptions
	br      *bufio.Reader
	header  http.Header // the request headers of this worker
}

func (w *worker) fail(kind, detail string) {
	w.errs[kind]++
	if len(w.sample) < 3 && detail != "" {
		for _, s := range w.sample {
			if s == detail {
				return
			}
		}
		w.sample = append(w.sample, detail)
	}
}

func newTransport(concurrency int, timeout time.Duration) *http.Transport {
	return &http.Transport{
		Proxy: nil,
		DialContext: (&net.Dialer{
			Timeout:   10 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:          concurrency,
		MaxIdleConnsPerHost:   concurrency,
		IdleConnTimeout:       5 * time.Minute,
		DisableCompression:    true,
		ForceAttemptHTTP2:     false,
		ResponseHeaderTimeout: timeout,
		WriteBufferSize:       16 << 10,
		ReadBufferSize:        16 << 10,
	}
}

func run(ctx context.Context, o options) *result {
	tr := newTransport(o.concurrency, o.timeout)
	defer tr.CloseIdleConnections()

	start := time.Now()
	measureStart := start.Add(o.warmup)
	var deadline time.Time
	if o.requests <= 0 {
		deadline = measureStart.Add(o.duration)
	}
	var (
		issued  atomic.Int64 // measured requests started, for -n
		wg      sync.WaitGroup
		workers = make([]*worker, o.concurrency)
	)
	for i := range workers {
		w := &worker{errs: map[string]int64{}, br: bufio.NewReaderSize(nil, 64<<10), header: o.header}
		if len(o.keyHeaders) > 0 {
			w.header = o.keyHeaders[i%len(o.keyHeaders)]
		}
		workers[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				now := time.Now()
				measured := !now.Before(measureStart)
				if measured {
					if o.requests > 0 {
						if issued.Add(1) > o.requests {
							return
						}
					} else if !now.Before(deadline) {
						return
					}
				}
				w.do(ctx, tr, o, measured)
			}
		}()
	}
	var cpuStart, cpuEnd, mallocStart, mallocEnd float64
	cpuErr, mallocErr := errors.New("no -pid"), errors.New("no -metrics")
	if o.pid > 0 || o.metrics != "" {
		time.Sleep(time.Until(measureStart))
	}
	if o.pid > 0 {
		cpuStart, cpuErr = cpuSeconds(o.pid)
	}
	if o.metrics != "" {
		mallocStart, mallocErr = mallocs(o.metrics)
	}
	wg.Wait()
	if o.pid > 0 && cpuErr == nil {
		cpuEnd, cpuErr = cpuSeconds(o.pid)
	}
	if o.metrics != "" && mallocErr == nil {
		mallocEnd, mallocErr = mallocs(o.metrics)
	}
	elapsed := time.Since(measureStart)
	if elapsed < 0 {
		elapsed = 0
	}

	res := &result{
		URL:         o.url,
		Method:      o.method,
		Stream:      o.stream,
		Concurrency: o.concurrency,
		Seconds:     elapsed.Seconds(),
		ErrorKinds:  map[string]int64{},
	}
	var lat, ttfb histogram
	for _, w := range workers {
		lat.merge(&w.latency)
		ttfb.merge(&w.ttfb)
		res.Requests += w.ok
		res.Bytes += w.bytes
		for k, v := range w.errs {
			res.Errors += v
			res.ErrorKinds[k] += v
		}
		for _, s := range w.sample {
			if len(res.ErrorSamples) < 5 {
				res.ErrorSamples = append(res.ErrorSamples, s)
			}
		}
	}
	if elapsed > 0 {
		res.RPS = float64(res.Requests) / elapsed.Seconds()
	}
	res.Latency = summarize(&lat)
	if o.stream {
		t := summarize(&ttfb)
		res.TTFB = &t
	}
	if len(res.ErrorKinds) == 0 {
		res.ErrorKinds = nil
	}
	if o.pid > 0 {
		if cpuErr != nil {
			fmt.Fprintf(os.Stderr, "loadgen: CPU time of pid %d: %v\n", o.pid, cpuErr)
		} else {
			res.CPUSeconds = cpuEnd - cpuStart
			if res.Requests > 0 {
				res.CPUPerRequestUS = res.CPUSeconds / float64(res.Requests) * 1e6
			}
		}
	}
	if o.metrics != "" {
		if mallocErr != nil {
			fmt.Fprintf(os.Stderr, "loadgen: allocations from %s: %v\n", o.metrics, mallocErr)
		} else if res.Requests > 0 {
			res.AllocsPerRequest = (mallocEnd - mallocStart) / float64(res.Requests)
		}
	}
	return res
}

var (
	dataPrefix = []byte("data:")
	doneLine   = []byte("[DONE]")
	errorEvent = []byte(`{"error"`)
)

// do sends one request and, when measured, records its outcome.
func (w *worker) do(ctx context.Context, tr *http.Transport, o options, measured bool) {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	var body io.Reader
	if o.body != nil {
		body = bytes.NewReader(o.body)
	}
	req, err := http.NewRequestWithContext(ctx, o.method, o.url, body)
	if err != nil {
		w.fail("request", err.Error())
		return
	}
	req.Header = w.header // read-only for the transport; shared between workers

	t0 := time.Now()
	resp, err := tr.RoundTrip(req)
	if err != nil {
		// A cancelled parent (Ctrl-C) is not the server's fault.
		if measured && !errors.Is(ctx.Err(), context.Canceled) {
			w.fail("transport", err.Error())
		}
		return
	}
	defer resp.Body.Close()

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		_, _ = io.Copy(io.Discard, resp.Body)
		if measured {
			w.fail(fmt.Sprintf("status %d", resp.StatusCode),
				fmt.Sprintf("status %d: %s", resp.StatusCode, bytes.TrimSpace(snippet)))
		}
		return
	}

	if !o.stream {
		n, err := io.Copy(io.Discard, resp.Body)
		total := time.Since(t0)
		if !measured {
			return
		}
		if err != nil {
			w.fail("read", err.Error())
			return
		}
		w.ok++
		w.bytes += n
		w.latency.record(int64(total))
		return
	}

	// SSE: TTFB at the first data line; success needs [DONE] and no error event.
	w.br.Reset(resp.Body)
	var (
		first   time.Duration
		n       int64
		done    bool
		errored bool
		sawData bool
	)
	lineStart := true
	for {
		line, err := w.br.ReadSlice('\n')
		n += int64(len(line))
		if lineStart && len(line) > 0 {
			if payload, ok := bytes.CutPrefix(line, dataPrefix); ok {
				if !sawData {
					first = time.Since(t0)
					sawData = true
				}
				payload = bytes.TrimSpace(payload)
				switch {
				case bytes.Equal(payload, doneLine):
					done = true
				case bytes.HasPrefix(payload, errorEvent):
					errored = true
				}
			}
		}
		lineStart = err == nil
		if err == nil || errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		total := time.Since(t0)
		w.br.Reset(nil)
		if !measured {
			return
		}
		switch {
		case !errors.Is(err, io.EOF):
			w.fail("read", err.Error())
		case errored:
			w.fail("stream error event", "an SSE error event was received")
		case !done:
			w.fail("stream without [DONE]", "the stream ended without data: [DONE]")
		default:
			w.ok++
			w.bytes += n
			w.latency.record(int64(total))
			w.ttfb.record(int64(first))
		}
		return
	}
}

// summary is a latency distribution in milliseconds.
type summary struct {
	Count uint64  `json:"count"`
	Mean  float64 `json:"mean_ms"`
	Min   float64 `json:"min_ms"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
}

func summarize(h *histogram) summary {
	const ms = 1e6
	return summary{
		Count: h.n,
		Mean:  h.mean() / ms,
		Min:   float64(h.min) / ms,
		P50:   h.quantile(0.50) / ms,
		P90:   h.quantile(0.90) / ms,
		P99:   h.quantile(0.99) / ms,
		P999:  h.quantile(0.999) / ms,
		Max:   float64(h.max) / ms,
	}
}

type result struct {
	URL          string           `json:"url"`
	Method       string           `json:"method"`
	Stream       bool             `json:"stream"`
	Concurrency  int              `json:"concurrency"`
	Seconds      float64          `json:"seconds"`
	Requests     int64            `json:"requests"` // successful, measured
	Errors       int64            `json:"errors"`
	ErrorKinds   map[string]int64 `json:"error_kinds,omitempty"`
	ErrorSamples []string         `json:"error_samples,omitempty"`
	RPS          float64          `json:"rps"`
	Bytes        int64            `json:"bytes_read"`
	Latency      summary          `json:"latency"`
	TTFB         *summary         `json:"ttfb,omitempty"`
	// CPU time (user + system) of -pid during the measurement, and per
	// successful request.
	CPUSeconds      float64 `json:"server_cpu_seconds,omitempty"`
	CPUPerRequestUS float64 `json:"server_cpu_us_per_request,omitempty"`
	// AllocsPerRequest is the server's heap allocations (Go's
	// go_memstats_mallocs_total) during the measurement per successful
	// request; with -metrics.
	AllocsPerRequest float64 `json:"server_allocs_per_request,omitempty"`
}

func (r *result) print(out io.Writer) {
	fmt.Fprintf(out, "%s %s  concurrency %d  stream %v\n", r.Method, r.URL, r.Concurrency, r.Stream)
	fmt.Fprintf(out, "  %d requests in %.2fs: %.1f req/s, %.2f MB read, %d errors\n",
		r.Requests, r.Seconds, r.RPS, float64(r.Bytes)/1e6, r.Errors)
	p := func(name string, s summary) {
		fmt.Fprintf(out, "  %-8s mean %.3f  p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f ms\n",
			name, s.Mean, s.P50, s.P90, s.P99, s.P999, s.Max)
	}
	p("latency", r.Latency)
	if r.TTFB != nil {
		p("ttfb", *r.TTFB)
	}
	if r.CPUSeconds > 0 {
		fmt.Fprintf(out, "  server CPU %.2fs, %.0f µs per request\n", r.CPUSeconds, r.CPUPerRequestUS)
	}
	if len(r.ErrorKinds) > 0 {
		kinds := make([]string, 0, len(r.ErrorKinds))
		for k := range r.ErrorKinds {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		for _, k := range kinds {
			fmt.Fprintf(out, "  error %-24s %d\n", k, r.ErrorKinds[k])
		}
		for _, s := range r.ErrorSamples {
			fmt.Fprintf(out, "  e.g. %s\n", s)
		}
	}
}
