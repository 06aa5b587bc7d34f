package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestStreamFlags(t *testing.T) {
	cases := []struct {
		body          string
		stream, usage bool
		err           bool
	}{
		{`{"model":"m","messages":[]}`, false, false, false},
		{`{"model":"m","stream":true}`, true, false, false},
		{` { "stream" : true , "stream_options" : { "include_usage" : true } } `, true, true, false},
		{`{"stream":false,"stream_options":{"include_usage":true}}`, false, true, false},
		{`{"messages":[{"content":"\"stream\":true"}],"x":{"stream":true}}`, false, false, false},
		{`{"messages":[{"content":"a\\"}],"stream":true}`, true, false, false},
		{`{}`, false, false, false},
		{`[1]`, false, false, true},
		{`{"stream":}`, false, false, true},
		{`{"stream":true`, false, false, true},
	}
	for _, c := range cases {
		s, u, err := streamFlags([]byte(c.body))
		if (err != nil) != c.err || (err == nil && (s != c.stream || u != c.usage)) {
			t.Errorf("streamFlags(%s) = %v, %v, %v; want %v, %v, err %v", c.body, s, u, err, c.stream, c.usage, c.err)
		}
	}
	body := []byte(`{"model":"m","stream":true,"stream_options":{"include_usage":true}}`)
	if n := testing.AllocsPerRun(100, func() { _, _, _ = streamFlags(body) }); n != 0 {
		t.Errorf("streamFlags allocates %v times", n)
	}
}

func TestResponses(t *testing.T) {
	m := newMock(config{contentBytes: 100, chunks: 7, promptTokens: 5, embeddingDims: 8, model: "bench", maxBody: 1 << 20})

	rec := httptest.NewRecorder()
	m.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(`{"model":"x"}`)))
	var resp struct {
		Choices []struct {
			Message struct{ Content string }
		}
		Usage struct{ PromptTokens, CompletionTokens int } `json:"usage"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		t.Fatalf("non-stream body: %v", err)
	}
	if len(resp.Choices) != 1 || len(resp.Choices[0].Message.Content) != 100 {
		t.Errorf("non-stream content: %+v", resp.Choices)
	}

	for _, usage := range []bool{true, false} {
		body := `{"model":"x","stream":true}`
		if usage {
			body = `{"model":"x","stream":true,"stream_options":{"include_usage":true}}`
		}
		rec = httptest.NewRecorder()
		m.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(body)))
		if ct := rec.Header().Get("Content-Type"); ct != "text/event-stream" {
			t.Errorf("stream content type %q", ct)
		}
		var content strings.Builder
		events, sawUsage, done := 0, false, false
		sc := bufio.NewScanner(rec.Body)
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			events++
			if data == "[DONE]" {
				done = true
				continue
			}
			var ev struct {
				Choices []struct {
					Delta struct{ Content string }
				}
				Usage *struct{ CompletionTokens int } `json:"usage"`
			}
			if err := json.Unmarshal([]byte(data), &ev); err != nil {
				t.Fatalf("event %q: %v", data, err)
			}
			for _, c := range ev.Choices {
				content.WriteString(c.Delta.Content)
			}
			if ev.Usage != nil {
				sawUsage = true
			}
		}
		want := 7 + 3
		if usage {
			want++
		}
		if events != want || sawUsage != usage || !done || content.Len() != 100 {
			t.Errorf("include_usage %v: %d events, usage %v, done %v, %d content bytes", usage, events, sawUsage, done, content.Len())
		}
	}

	rec = httptest.NewRecorder()
	m.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/embeddings", strings.NewReader(`{"input":"x"}`)))
	var emb struct {
		Data []struct{ Embedding []float64 }
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &emb); err != nil || len(emb.Data) != 1 || len(emb.Data[0].Embedding) != 8 {
		t.Errorf("embeddings: %v %s", err, rec.Body.Bytes())
	}
}
