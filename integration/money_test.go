package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// moneyUpstream is an OpenAI- and Anthropic-compatible provider whose
// usage reports are chosen by the model name, for the billing tests:
//
//	usage-<p>-<c>  reports p prompt and c completion tokens
//	raw-<p>_<c>    reports p and c verbatim, as JSON text ("-2", "1e30";
//	               c "str" is the string "7")
//	endless        a stream that sends its first events, then nothing until
//	               the request ends (chat: no usage; Messages: message_start
//	               with input_tokens 9)
//	huge-cl        announces a 1 GiB body, sends a few bytes, then waits
//	               until the request ends
//	huge           sends a 65 MiB JSON body, chunked (no length announced)
//	block-<p>-<c>  the same as usage-<p>-<c>, once the test has been told the request
//	               arrived (arrived) and has let it go on (proceed)
//	worst          the honest worst case: as many prompt tokens as the body
//	               it received has bytes, and as many completion tokens as
//	               the largest max-tokens field it was sent (times n)
//
// Any model name answers; streams carry their usage in the final chunk
// when include_usage is set (chat), in response.completed (Responses) or
// in message_start and message_delta (Messages).
type moneyUpstream struct {
	mockServer
	mu       sync.Mutex
	requests int
	arrived  chan string   // the model of each blocked request, as it arrives
	proceed  chan struct{} // closed to let blocked requests answer
}

func newMoneyUpstream(t *testing.T) *moneyUpstream {
	t.Helper()
	m := &moneyUpstream{arrived: make(chan string, 1000), proceed: make(chan struct{})}
	m.mockServer = startMockServer(t, m.serve, nil)
	return m
}

// Requests is how many requests reached the provider.
func (m *moneyUpstream) Requests() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.requests
}

// moneyRequest is what the mock reads of a request.
type moneyRequest struct {
	Model               string `json:"model"`
	Stream              bool   `json:"stream"`
	MaxTokens           int64  `json:"max_tokens"`
	MaxCompletionTokens int64  `json:"max_completion_tokens"`
	MaxOutputTokens     int64  `json:"max_output_tokens"`
	N                   int64  `json:"n"`
	StreamOptions       *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
}

// usageFor is what the mock reports for a request of len bytes.
func (req *moneyRequest) usageFor(path string, size int) (prompt, completion string) {
	if raw, ok := strings.CutPrefix(req.Model, "raw-"); ok {
		p, c, _ := strings.Cut(raw, "_")
		if c == "str" {
			c = `"7"`
		}
		return p, c
	}
	var p, c int64
	if _, err := fmt.Sscanf(strings.Replace(req.Model, "block-", "usage-", 1), "usage-%d-%d", &p, &c); err == nil {
		return fmt.Sprint(p), fmt.Sprint(c)
	}
	switch path {
	case "/v1/responses":
		c = req.MaxOutputTokens
	case "/v1/messages":
		c = req.MaxTokens
	default:
		c = max(req.MaxTokens, req.MaxCompletionTokens) * max(req.N, 1)
	}
	return fmt.Sprint(size), fmt.Sprint(c)
}

func (m *moneyUpstream) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	m.mu.Lock()
	m.requests++
	m.mu.Unlock()
	var req moneyRequest
	_ = json.Unmarshal(body, &req)
	prompt, completion := req.usageFor(r.URL.Path, len(body))
	if strings.HasPrefix(req.Model, "block-") {
		m.arrived <- req.Model
		select {
		case <-m.proceed:
		case <-r.Context().Done():
			return
		}
	}
	rc := http.NewResponseController(w)
	switch req.Model {
	case "endless":
		w.Header().Set("Content-Type", "text/event-stream")
		switch r.URL.Path {
		case "/v1/messages":
			_, _ = io.WriteString(w, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"m\",\"content\":[],\"usage\":{\"input_tokens\":9,\"output_tokens\":1}}}\n\n"+
				"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"+
				"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Once upon a time\"}}\n\n")
		case "/v1/responses":
			_, _ = io.WriteString(w, "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"Once upon a time\"}\n\n")
		default:
			_, _ = io.WriteString(w, `data: {"id":"c1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"content":"Once upon a time"}}]}`+"\n\n")
		}
		_ = rc.Flush()
		<-r.Context().Done()
		return
	case "huge-cl":
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", fmt.Sprint(1<<30))
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, `{"id":"c1",`)
		_ = rc.Flush()
		<-r.Context().Done()
		return
	case "huge":
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"c1","pad":"`)
		chunk := []byte(strings.Repeat("x", 1<<20))
		for range 65 {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
		_, _ = io.WriteString(w, `"}`)
		return
	}
	sse := func(events ...string) {
		w.Header().Set("Content-Type", "text/event-stream")
		for _, e := range events {
			_, _ = io.WriteString(w, e+"\n\n")
			_ = rc.Flush()
		}
	}
	switch r.URL.Path {
	case "/v1/embeddings":
		writeMockJSON(w, `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1]}],"model":"m","usage":{"prompt_tokens":`+prompt+`,"total_tokens":`+prompt+`}}`)
	case "/v1/responses":
		object := `{"id":"resp_1","object":"response","status":"completed","model":"m","output":[{"type":"message","id":"msg_1","role":"assistant","content":[{"type":"output_text","text":"Hi"}]}],"usage":{"input_tokens":` + prompt + `,"output_tokens":` + completion + `}}`
		if !req.Stream {
			writeMockJSON(w, object)
			return
		}
		sse(`event: response.output_text.delta`+"\n"+`data: {"type":"response.output_text.delta","delta":"Hi"}`,
			`event: response.completed`+"\n"+`data: {"type":"response.completed","response":`+object+`}`)
	case "/v1/messages":
		if !req.Stream {
			writeMockJSON(w, `{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[{"type":"text","text":"Hi"}],"stop_reason":"end_turn","usage":{"input_tokens":`+prompt+`,"output_tokens":`+completion+`}}`)
			return
		}
		sse(`event: message_start`+"\n"+`data: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[],"usage":{"input_tokens":`+prompt+`,"output_tokens":1}}}`,
			`event: content_block_start`+"\n"+`data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`,
			`event: content_block_delta`+"\n"+`data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}`,
			`event: content_block_stop`+"\n"+`data: {"type":"content_block_stop","index":0}`,
			`event: message_delta`+"\n"+`data: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":`+completion+`}}`,
			`event: message_stop`+"\n"+`data: {"type":"message_stop"}`)
	case "/v1/chat/completions":
		usage := `{"prompt_tokens":` + prompt + `,"completion_tokens":` + completion + `}`
		if !req.Stream {
			writeMockJSON(w, `{"id":"c1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}],"usage":`+usage+`}`)
			return
		}
		events := []string{`data: {"id":"c1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":"stop"}]}`}
		if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
			events = append(events, `data: {"id":"c1","object":"chat.completion.chunk","model":"m","choices":[],"usage":`+usage+`}`)
		}
		sse(append(events, "data: [DONE]")...)
	default:
		http.NotFound(w, r)
	}
}

// moneyGateway is a gateway in front of a moneyUpstream named "mock" (an
// OpenAI-compatible provider with the Responses API) and the same mock as
// "claude" (an Anthropic-format provider).
type moneyGateway struct {
	*gateway
	mock *moneyUpstream
}

func startMoneyGateway(t *testing.T, prices string) *moneyGateway {
	t.Helper()
	mock := newMoneyUpstream(t)
	// The providers keep the default timeout (10 min): requests held at the
	// mock while the test gathers them must not race a clock.
	g := startChecked(t, gatewayConfig{Block: fmt.Sprintf(`provider mock {
			base_url %s
			responses_api
		}
		provider claude {
			api_format anthropic
			api_key {env.PROVIDER_KEY}
			base_url %s
		}
		%s`, mock.BaseURL(), mock.BaseURL(), prices)})
	return &moneyGateway{gateway: g, mock: mock}
}

// TestDuplicateKeysAreRefusedBeforeAnythingIsBilledOrSent replays the
// attack of issue #10: the gateway read the first of two equal keys and the
// provider the last, so a key allowed only a free model was served a paid
// one, a reservation was made for 1 token and 16 were served, and usage or
// the stream flag was switched behind the gateway's back.
func TestDuplicateKeysAreRefusedBeforeAnythingIsBilledOrSent(t *testing.T) {
	t.Parallel()
	mg := startMoneyGateway(t, `price mock:free 0 0
		price mock:usage-1000000-1000000 1 1
		price claude:free 0 0`)
	key := mg.userOnBudget(t, "mallory", 0, map[string]any{"allowed_models": []string{"mock:free", "claude:free"}})
	msgs := `"messages":[{"role":"user","content":"hi"}]`
	cases := []struct {
		name, path, body, key string
	}{
		{"model", "/v1/chat/completions", `{"model":"mock:free",` + msgs + `,"model":"mock:usage-1000000-1000000"}`, "model"},
		{"escaped model", "/v1/chat/completions", `{"model":"mock:free",` + msgs + `,"mod\u0065l":"mock:usage-1000000-1000000"}`, "model"},
		{"model in another case", "/v1/chat/completions", `{"model":"mock:free",` + msgs + `,"Model":"mock:usage-1000000-1000000"}`, "Model"},
		{"max_tokens", "/v1/chat/completions", `{"model":"mock:free","max_tokens":1,` + msgs + `,"max_tokens":16}`, "max_tokens"},
		{"include_usage", "/v1/chat/completions", `{"model":"mock:free","stream":true,"stream_options":{"include_usage":true,"include_usage":false},` + msgs + `}`, "stream_options.include_usage"},
		{"stream", "/v1/chat/completions", `{"model":"mock:free","stream":false,` + msgs + `,"stream":true}`, "stream"},
		{"user", "/v1/chat/completions", `{"model":"mock:free","user":"mallory",` + msgs + `,"user":"victim"}`, "user"},
		{"nested in a message", "/v1/chat/completions", `{"model":"mock:free","messages":[{"role":"user","content":"hi","role":"system"}]}`, "messages[0].role"},
		{"embeddings", "/v1/embeddings", `{"model":"mock:free","input":"hi","model":"mock:usage-1000000-1000000"}`, "model"},
		{"responses", "/v1/responses", `{"model":"mock:free","input":"hi","max_output_tokens":1,"max_output_tokens":4096}`, "max_output_tokens"},
		{"messages", "/v1/messages", `{"model":"claude:free","max_tokens":1,` + msgs + `,"max_tokens":4096}`, "max_tokens"},
		{"messages metadata", "/v1/messages", `{"model":"claude:free","max_tokens":1,"metadata":{"user_id":"a","user_id":"b"},` + msgs + `}`, "metadata.user_id"},
		{"completions", "/v1/completions", `{"model":"mock:free","prompt":"hi","max_tokens":1,"max_tokens":16}`, "max_tokens"},
		{"count_tokens passed through", "/v1/messages/count_tokens", `{"model":"claude:free",` + msgs + `,"model":"claude:usage-1000000-1000000"}`, "model"},
		{"count_tokens estimated", "/v1/messages/count_tokens?beta=true", `{"model":"mock:free",` + msgs + `,"mod\u0065l":"mock:usage-1000000-1000000"}`, "model"},
	}
	for _, tc := range cases {
		r := mg.do("POST", tc.path, tc.body, "Authorization", "Bearer "+key)
		expectValidation(t, r, "Duplicate key '"+tc.key+"'")
	}
	if n := mg.mock.Requests(); n != 0 {
		t.Fatalf("%d requests reached the provider", n)
	}
	if recs := list(t, mg.adminDo("GET", "/v1/usage?user_id=mallory", nil)); len(recs) != 0 {
		t.Fatalf("refused requests wrote records: %v", recs)
	}
	// The same bodies without the duplicate go through.
	expect(t, mg.do("POST", "/v1/chat/completions", `{"model":"mock:free",`+msgs+`}`, "Authorization", "Bearer "+key), 200)
	expect(t, mg.do("POST", "/v1/messages", `{"model":"claude:free","max_tokens":1,`+msgs+`}`, "Authorization", "Bearer "+key), 200)
}

// moneyRecord is a usage record with the fields the money tests check.
type moneyRecord struct {
	usageRecord
	UsageExceededReservation bool `json:"usage_exceeded_reservation"`
}

func (mg *moneyGateway) records(t *testing.T, query string) []moneyRecord {
	t.Helper()
	var out []moneyRecord
	expect(t, mg.adminDo("GET", "/v1/usage?limit=1000&"+query, nil), 200).JSON(t, &out)
	return out
}

// TestHonestWorstCaseNeverOverspends: 200 parallel requests on a $1
// budget, to a provider that bills the most an honest provider can (a
// token per byte of the request, every completion token allowed), over
// chat, streams, Responses and Messages, never spend more than $1. When
// the reservation was a 4-bytes-per-token estimate and read max_tokens
// where the provider obeyed max_completion_tokens, 16 requests were
// admitted and spent $3.23.
func TestHonestWorstCaseNeverOverspends(t *testing.T) {
	t.Parallel()
	mg := startMoneyGateway(t, `price mock:worst 100 400
		price claude:worst 100 400`)
	key := mg.userOnBudget(t, "wendy", 1, nil)
	text := strings.Repeat("tell me more ", 5)
	bodies := []struct{ path, body string }{
		{"/v1/chat/completions", `{"model":"mock:worst","max_tokens":20,"max_completion_tokens":100,"messages":[{"role":"user","content":"` + text + `"}]}`},
		{"/v1/chat/completions", `{"model":"mock:worst","stream":true,"stream_options":{"include_usage":true},"max_tokens":100,"messages":[{"role":"user","content":"` + text + `"}]}`},
		{"/v1/responses", `{"model":"mock:worst","max_output_tokens":100,"max_tokens":1,"input":"` + text + `"}`},
		{"/v1/messages", `{"model":"claude:worst","max_tokens":100,"max_completion_tokens":1,"messages":[{"role":"user","content":"` + text + `"}]}`},
	}
	successes := concurrently(200, func(i int) *response {
		b := bodies[i%len(bodies)]
		return mg.do("POST", b.path, b.body, "Authorization", "Bearer "+key)
	}, func(i int, r *response) {
		if r.Status != 403 {
			t.Errorf("%s: status %d: %s", bodies[i%len(bodies)].path, r.Status, r.Body)
		}
	})
	spend := mg.spend(t, "/v1/users/wendy")
	var sum float64
	recs := mg.records(t, "user_id=wendy")
	for _, rec := range recs {
		sum += rec.Cost
		if rec.UsageExceededReservation || rec.UsageSource != "provider" {
			t.Errorf("record %+v", rec)
		}
	}
	t.Logf("%d admitted, spend $%.4f", successes, spend)
	if successes == 0 || len(recs) != successes {
		t.Fatalf("%d successes, %d records", successes, len(recs))
	}
	if spend > 1+1e-9 || math.Abs(sum-spend) > 1e-9 {
		t.Fatalf("spend $%v (records $%v) on a $1 budget", spend, sum)
	}
}

// TestUsageBeyondTheRequestIsBilledAndFlagged: a provider that reports
// more than the request allowed is billed what it reported, and the
// record says so.
func TestUsageBeyondTheRequestIsBilledAndFlagged(t *testing.T) {
	t.Parallel()
	mg := startMoneyGateway(t, `price mock:usage-100000-5 1 1
		price mock:usage-10-5 1 1
		price mock:usage-10-50 1 1`)
	key := mg.newKey(map[string]any{"user_id": "olga"}).Key
	for _, tc := range []struct {
		model    string
		flagged  bool
		wantCost float64
	}{
		{"usage-10-5", false, 15e-6},
		{"usage-100000-5", true, 100005e-6},
		{"usage-10-50", true, 60e-6},
	} {
		r := expect(t, mg.do("POST", "/v1/chat/completions", `{"model":"mock:`+tc.model+`","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`, "Authorization", "Bearer "+key), 200)
		id := r.Header.Get("X-Request-Id")
		var rec *moneyRecord
		for _, x := range mg.records(t, "user_id=olga") {
			if x.RequestID == id {
				rec = &x
			}
		}
		if rec == nil || rec.UsageExceededReservation != tc.flagged || math.Abs(rec.Cost-tc.wantCost) > 1e-12 || rec.UsageSource != "provider" {
			t.Fatalf("%s: record %+v", tc.model, rec)
		}
	}
}

// TestPriceAtAdmissionIsThePriceBilled: requests in flight when a price
// is raised a hundredfold, or deleted, are billed at the price they were
// admitted (and reserved) under. Billing at settlement let a $1 budget
// spend $80, and a deleted price serve everything at cost 0.
func TestPriceAtAdmissionIsThePriceBilled(t *testing.T) {
	t.Parallel()
	// Prices set through the API: a config price cannot be changed there.
	mg := startMoneyGateway(t, "")
	for _, model := range []string{"mock:block-1000-1000", "mock:block-2000-1000"} {
		expect(t, mg.adminDo("POST", "/v1/pricing", map[string]any{"model_key": model, "input_price_per_million": 100, "output_price_per_million": 100}), 200)
	}
	key := mg.userOnBudget(t, "petra", 10, nil)
	const perModel = 10
	want := map[string]float64{ // per request, at the admission price
		"block-1000-1000": 2000 * 100 / 1e6,
		"block-2000-1000": 3000 * 100 / 1e6,
	}
	var wg sync.WaitGroup
	for i := range 2 * perModel {
		model := "block-1000-1000"
		if i%2 == 1 {
			model = "block-2000-1000"
		}
		wg.Go(func() {
			r := mg.do("POST", "/v1/chat/completions", `{"model":"mock:`+model+`","max_tokens":1000,"stream":`+fmt.Sprint(i%4 < 2)+`,"messages":[{"role":"user","content":"`+strings.Repeat("x", 2000)+`"}]}`, "Authorization", "Bearer "+key)
			if r.Status != 200 {
				t.Errorf("status %d: %s", r.Status, r.Body)
			}
		})
	}
	for range 2 * perModel {
		<-mg.mock.arrived // every request is admitted and at the provider
	}
	expect(t, mg.adminDo("POST", "/v1/pricing", map[string]any{"model_key": "mock:block-1000-1000", "input_price_per_million": 10000, "output_price_per_million": 10000}), 200)
	expectNoContent(t, mg.adminDo("DELETE", "/v1/pricing/mock:block-2000-1000", nil))
	close(mg.mock.proceed)
	wg.Wait()

	var total float64
	recs := mg.records(t, "user_id=petra")
	if len(recs) != 2*perModel {
		t.Fatalf("%d records", len(recs))
	}
	for _, rec := range recs {
		if math.Abs(rec.Cost-want[rec.Model]) > 1e-9 {
			t.Errorf("%s billed %v, admitted at %v", rec.Model, rec.Cost, want[rec.Model])
		}
		total += rec.Cost
	}
	if spend := mg.spend(t, "/v1/users/petra"); math.Abs(spend-total) > 1e-9 || math.Abs(total-perModel*(0.2+0.3)) > 1e-9 {
		t.Fatalf("spend %v, records %v", spend, total)
	}
}

// TestImpossibleProviderUsageIsBilledAsAnEstimate: a negative count once
// gave a user a credit, and prompt_tokens 1e30 a spend of 9.2e12. Counts
// that are negative, fractional or beyond any context window are logged,
// the estimate is billed instead, and the record says why.
func TestImpossibleProviderUsageIsBilledAsAnEstimate(t *testing.T) {
	t.Parallel()
	var prices strings.Builder
	models := []string{"raw--2_7", "raw-5_-1000000", "raw-1e30_7", "raw-1.5_7", "raw-5_100000001", "raw-5_str", "raw-5_7"}
	for _, m := range models {
		fmt.Fprintf(&prices, "price mock:%s 1 1\nprice claude:%s 1 1\n", m, m)
	}
	mg := startMoneyGateway(t, prices.String())
	key := mg.userOnBudget(t, "ivan", 1, nil)
	body := func(model string, stream bool) string {
		return `{"model":"` + model + `","max_tokens":5,"stream":` + fmt.Sprint(stream) + `,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`
	}
	type call struct{ path, body string }
	var calls []call
	for _, m := range models {
		calls = append(calls,
			call{"/v1/chat/completions", body("mock:"+m, false)},
			call{"/v1/chat/completions", body("mock:"+m, true)},
			call{"/v1/chat/completions", body("claude:"+m, false)}, // translated
			call{"/v1/messages", strings.Replace(body("claude:"+m, true), `"stream_options":{"include_usage":true},`, "", 1)},
			call{"/v1/responses", `{"model":"mock:` + m + `","max_output_tokens":5,"input":"hi"}`},
		)
	}
	for _, c := range calls {
		r := mg.do("POST", c.path, c.body, "Authorization", "Bearer "+key)
		expect(t, r, 200)
		id := r.Header.Get("X-Request-Id")
		var rec *moneyRecord
		for _, x := range mg.records(t, "user_id=ivan") {
			if x.RequestID == id {
				rec = &x
			}
		}
		if rec == nil {
			t.Fatalf("%s %s: no record", c.path, c.body)
		}
		honest := strings.Contains(c.body, "raw-5_7\"")
		switch {
		case honest && (rec.UsageSource != "provider" || rec.PromptTokens != 5 || rec.CompletionTokens != 7 || rec.ErrorMessage != nil):
			t.Errorf("%s %s: honest usage recorded as %+v", c.path, c.body, rec)
		case !honest && (rec.UsageSource != "estimated" || rec.ErrorMessage == nil || !strings.Contains(*rec.ErrorMessage, "provider usage rejected") ||
			rec.PromptTokens < 0 || rec.PromptTokens > 1000 || rec.CompletionTokens < 0 || rec.CompletionTokens > 1000 || rec.Status != "success"):
			t.Errorf("%s %s: impossible usage recorded as %+v (error %v)", c.path, c.body, rec, rec.ErrorMessage)
		}
	}
	spend := mg.spend(t, "/v1/users/ivan")
	if spend < 0 || spend > 0.01 {
		t.Fatalf("spend %v", spend)
	}
	if !strings.Contains(mg.output.String(), "provider reported impossible usage") {
		t.Fatal("no warning logged")
	}
}

// TestBackgroundResponsesAreRefused: a background response answers a queued
// object at once and does the work later, out of the gateway's sight (it
// was billed an estimate of the queued object); it is refused with a 400.
func TestBackgroundResponsesAreRefused(t *testing.T) {
	t.Parallel()
	mg := startMoneyGateway(t, `price mock:usage-10-5 1 1`)
	key := mg.userOnBudget(t, "bea", 1, nil)
	expectError(t, mg.do("POST", "/v1/responses", `{"model":"mock:usage-10-5","input":"hi","background":true}`, "Authorization", "Bearer "+key),
		400, "Background responses are not supported: the gateway cannot meter work done after the response; send 'background': false")
	if n := mg.mock.Requests(); n != 0 {
		t.Fatalf("%d requests reached the provider", n)
	}
	if recs := mg.records(t, "user_id=bea"); len(recs) != 0 {
		t.Fatalf("records %+v", recs)
	}
	// A lenient provider reads "true" and 1 as true; so does the gateway's
	// refusal, for background and for stream alike.
	for _, tc := range []struct{ path, body, field string }{
		{"/v1/responses", `{"model":"mock:usage-10-5","input":"hi","background":"true"}`, "background"},
		{"/v1/responses", `{"model":"mock:usage-10-5","input":"hi","background":1}`, "background"},
		{"/v1/responses", `{"model":"mock:usage-10-5","input":"hi","stream":"true"}`, "stream"},
		{"/v1/chat/completions", `{"model":"mock:usage-10-5","messages":[{"role":"user","content":"hi"}],"stream":1}`, "stream"},
	} {
		expectError(t, mg.do("POST", tc.path, tc.body, "Authorization", "Bearer "+key), 422, "Field '"+tc.field+"' must be a boolean")
	}
	if n := mg.mock.Requests(); n != 0 {
		t.Fatalf("%d requests reached the provider", n)
	}
	expect(t, mg.do("POST", "/v1/responses", `{"model":"mock:usage-10-5","input":"hi","background":false}`, "Authorization", "Bearer "+key), 200)
}

// TestOversizedResponsesAreRefusedAndBilled: a response over the 64 MiB cap
// is refused on its Content-Length without being read (else this waits for
// the provider timeout and answers 504), or once the cap is passed when no
// length is announced; either way the provider did the work, so the
// estimate is billed (it was cost 0).
func TestOversizedResponsesAreRefusedAndBilled(t *testing.T) {
	t.Parallel()
	mg := startMoneyGateway(t, `price mock:huge-cl 1000 1000
		price mock:huge 1000 1000`)
	key := mg.userOnBudget(t, "hugo", 10, nil)
	for _, model := range []string{"huge-cl", "huge"} {
		r := mg.do("POST", "/v1/chat/completions", `{"model":"mock:`+model+`","max_tokens":50,"messages":[{"role":"user","content":"hi"}]}`, "Authorization", "Bearer "+key)
		expectError(t, r, 502, "LLM provider error")
		id := r.Header.Get("X-Request-Id")
		var rec *moneyRecord
		for _, x := range mg.records(t, "user_id=hugo") {
			if x.RequestID == id {
				rec = &x
			}
		}
		if rec == nil || rec.Status != "error" || rec.StatusCode != 502 || rec.UsageSource != "estimated" ||
			rec.PromptTokens <= 0 || rec.CompletionTokens != 50 || rec.Cost <= 0 || rec.ErrorMessage == nil {
			t.Fatalf("%s: record %+v", model, rec)
		}
	}
	var sum float64
	for _, x := range mg.records(t, "user_id=hugo") {
		sum += x.Cost
	}
	if spend := mg.spend(t, "/v1/users/hugo"); math.Abs(spend-sum) > 1e-9 {
		t.Fatalf("spend %v, records %v", spend, sum)
	}
}

// TestStopBillsStreamsCutByShutdown: streams still running when Caddy's
// grace_period ends are cut by the gateway, the client gets the stream
// error event, and each is billed like a stream the client cut (provider
// usage if seen, else the estimate) and committed before the process exits.
// They used to be cut by the exit with no error event and no record.
func TestStopBillsStreamsCutByShutdown(t *testing.T) {
	t.Parallel()
	mg := startMoneyGateway(t, `price mock:endless 1000 1000
		price claude:endless 1000 1000`)
	key := mg.userOnBudget(t, "sam", 100, nil)
	streams := []struct{ path, body, errorEvent string }{
		{"/v1/chat/completions", `{"model":"mock:endless","stream":true,"max_tokens":100,"messages":[{"role":"user","content":"tell a story"}]}`, `data: {"error"`},
		{"/v1/chat/completions", `{"model":"claude:endless","stream":true,"max_tokens":100,"messages":[{"role":"user","content":"tell a story"}]}`, `data: {"error"`},
		{"/v1/messages", `{"model":"claude:endless","stream":true,"max_tokens":100,"messages":[{"role":"user","content":"tell a story"}]}`, "event: error"},
		{"/v1/responses", `{"model":"mock:endless","stream":true,"max_output_tokens":100,"input":"tell a story"}`, `data: {"error"`},
	}
	type open struct {
		id   string
		br   *bufio.Reader
		body io.Closer
	}
	var opened []open
	for _, s := range streams {
		resp := mg.postStream(context.Background(), t, s.path, s.body, key)
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: status %d", s.path, resp.StatusCode)
		}
		br := bufio.NewReader(resp.Body)
		if _, err := br.ReadString('\n'); err != nil { // the stream is running
			t.Fatal(err)
		}
		opened = append(opened, open{resp.Header.Get("X-Request-Id"), br, resp.Body})
	}

	if err := mg.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for i, o := range opened {
		rest, _ := io.ReadAll(o.br) // the stream ends when the gateway cuts it
		if !strings.Contains(string(rest), streams[i].errorEvent) {
			t.Errorf("%s: the client got no error event: %q", streams[i].path, rest)
		}
	}
	select {
	case <-mg.exited:
	case <-time.After(60 * time.Second):
		t.Fatal("caddy did not exit")
	}
	if out := mg.output.String(); strings.Contains(out, "closing store with requests still in flight") {
		t.Fatalf("the store closed under requests:\n%s", out)
	}

	mg.start() // the same store
	byID := map[string]moneyRecord{}
	var sum float64
	for _, rec := range mg.records(t, "user_id=sam") {
		byID[rec.RequestID] = rec
		sum += rec.Cost
	}
	for i, o := range opened {
		rec, ok := byID[o.id]
		if !ok {
			t.Errorf("%s: no usage record after the restart", streams[i].path)
			continue
		}
		if rec.Status != "error" || rec.ErrorMessage == nil || *rec.ErrorMessage != "stream cut by gateway shutdown" || rec.Cost <= 0 || rec.PromptTokens <= 0 {
			t.Errorf("%s: record %+v", streams[i].path, rec)
		}
	}
	if spend := mg.spend(t, "/v1/users/sam"); math.Abs(spend-sum) > 1e-9 || sum <= 0 {
		t.Fatalf("spend %v, records %v", spend, sum)
	}
}
