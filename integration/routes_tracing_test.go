package integration

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// otlpReceiver is an OTLP/HTTP trace receiver the gateway exports to: it
// keeps every span it is sent.
type otlpReceiver struct {
	mockServer
	mu    sync.Mutex
	spans []*tracepb.Span
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	t.Helper()
	o := &otlpReceiver{}
	o.mockServer = startMockServer(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req collectortrace.ExportTraceServiceRequest
		if r.URL.Path != "/v1/traces" || proto.Unmarshal(body, &req) != nil {
			http.Error(w, "bad export", http.StatusBadRequest)
			return
		}
		o.mu.Lock()
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				o.spans = append(o.spans, ss.Spans...)
			}
		}
		o.mu.Unlock()
		out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}, nil)
	return o
}

// trace returns the spans of the trace with the given hex id.
func (o *otlpReceiver) trace(id string) []*tracepb.Span {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []*tracepb.Span
	for _, s := range o.spans {
		if hex.EncodeToString(s.TraceId) == id {
			out = append(out, s)
		}
	}
	return out
}

func spanAttrs(s *tracepb.Span) map[string]string {
	m := make(map[string]string)
	for _, kv := range s.Attributes {
		m[kv.Key] = attrString(kv.Value)
	}
	return m
}

func attrString(v *commonpb.AnyValue) string {
	switch x := v.Value.(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_IntValue:
		return fmt.Sprint(x.IntValue)
	case *commonpb.AnyValue_BoolValue:
		return fmt.Sprint(x.BoolValue)
	case *commonpb.AnyValue_DoubleValue:
		return fmt.Sprint(x.DoubleValue)
	}
	return v.String()
}

// TestRouteAttemptsAreSpans: with Caddy's tracing directive, each upstream
// attempt of a routed request is a child span of the request's span with
// the GenAI attributes and its outcome, stream or not; no span carries the
// prompt, the completion or a key.
func TestRouteAttemptsAreSpans(t *testing.T) {
	t.Parallel()
	otlp := newOTLPReceiver(t)
	rg := startRouteGateway(t, "route traced {\n to dead:ok\n fallback good:ok\n}", gatewayConfig{
		Site: "tracing {\n\t\tspan gateway\n\t}",
		Env: []string{
			"OTEL_TRACES_EXPORTER=otlp",
			"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
			"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=" + otlp.URL + "/v1/traces",
			"OTEL_BSP_SCHEDULE_DELAY=50",
			"OTEL_TRACES_SAMPLER=always_on",
		},
	})
	const secretPrompt = "the-secret-words-of-the-prompt"
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprintf("stream=%v", stream), func(t *testing.T) {
			// The client's own trace context: the gateway's spans join it.
			traceID := fmt.Sprintf("%032x", 0xabc0+map[bool]int{false: 1, true: 2}[stream])
			body := fmt.Sprintf(`{"model":"traced","stream":%v,"messages":[{"role":"user","content":%q}]}`, stream, secretPrompt)
			r := rg.do("POST", "/v1/chat/completions", body, append(bearer(rg.key), "Traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")...)
			expectServedBy(t, r, "good:ok", stream)

			var server *tracepb.Span
			var attempts []*tracepb.Span
			waitFor(t, "the request's spans", func() bool {
				server, attempts = nil, nil
				for _, s := range otlp.trace(traceID) {
					switch {
					case s.Kind == tracepb.Span_SPAN_KIND_SERVER:
						server = s
					case spanAttrs(s)["gen_ai.system"] != "":
						attempts = append(attempts, s)
					}
				}
				return server != nil && len(attempts) == 2
			})
			want := map[string]map[string]string{
				"dead": {"gen_ai.operation.name": "chat", "gen_ai.request.model": "ok", "llm_gateway.route": "traced",
					"llm_gateway.target": "dead:ok", "llm_gateway.outcome": "connection_error", "gen_ai.usage.input_tokens": "0", "gen_ai.usage.output_tokens": "0"},
				"good": {"gen_ai.operation.name": "chat", "gen_ai.request.model": "ok", "gen_ai.response.model": "ok", "llm_gateway.route": "traced",
					"llm_gateway.target": "good:ok", "llm_gateway.outcome": "served", "http.response.status_code": "200",
					"gen_ai.usage.input_tokens": fmt.Sprint(mockPromptTokens), "gen_ai.usage.output_tokens": fmt.Sprint(mockCompletionTokens)},
			}
			for _, s := range attempts {
				attrs := spanAttrs(s)
				if !bytes.Equal(s.ParentSpanId, server.SpanId) || s.Kind != tracepb.Span_SPAN_KIND_CLIENT || s.Name != "chat ok" {
					t.Errorf("attempt span %q kind %v: parent %x, want the request's span %x", s.Name, s.Kind, s.ParentSpanId, server.SpanId)
				}
				w := want[attrs["gen_ai.system"]]
				if w == nil {
					t.Fatalf("span of an unexpected system: %v", attrs)
				}
				for k, v := range w {
					if attrs[k] != v {
						t.Errorf("%s span: %s = %q, want %q", attrs["gen_ai.system"], k, attrs[k], v)
					}
				}
				if failed := s.Status.GetCode() == tracepb.Status_STATUS_CODE_ERROR; failed != (attrs["gen_ai.system"] == "dead") {
					t.Errorf("%s span status %v", attrs["gen_ai.system"], s.Status)
				}
			}
			for _, s := range otlp.trace(traceID) {
				var all strings.Builder
				all.WriteString(s.Name)
				for k, v := range spanAttrs(s) {
					all.WriteString(k + "=" + v + "\n")
				}
				for _, e := range s.Events {
					all.WriteString(e.String())
				}
				for _, secret := range []string{secretPrompt, "Hello", providerKey, masterKey, rg.key} {
					if strings.Contains(all.String(), secret) {
						t.Errorf("span %q carries %q:\n%s", s.Name, secret, all.String())
					}
				}
			}
		})
	}
}
