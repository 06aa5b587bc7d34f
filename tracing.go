package llmgateway

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/llmgateway/caddy-llm-gateway/internal/routing"
)

// tracerName names the gateway's spans' instrumentation scope.
const tracerName = "github.com/llmgateway/caddy-llm-gateway"

// startAttemptSpan starts a child span of the request's span for one
// upstream attempt, when the request is traced (Caddy's `tracing`
// directive, which puts a recording span in the request's context): the
// attempt's provider and model, with the OpenTelemetry GenAI semantic
// conventions' names. It never carries a prompt, a completion or a key.
func (g *Gateway) startAttemptSpan(ctx context.Context, c *call, a *attempt) {
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		return
	}
	op := genAIOperation(c.endpoint.kind)
	attrs := []attribute.KeyValue{
		attribute.String("gen_ai.operation.name", op),
		attribute.String("gen_ai.system", c.provider),
		attribute.String("gen_ai.request.model", c.model),
		attribute.String("llm_gateway.target", c.provider+":"+c.model),
	}
	if c.route != nil {
		attrs = append(attrs, attribute.String("llm_gateway.route", c.route.route.name))
	}
	_, a.span = parent.TracerProvider().Tracer(tracerName).Start(ctx, op+" "+c.model,
		trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
}

// endAttempt counts the attempt and ends its span with what it did.
func (g *Gateway) endAttempt(c *call, a *attempt) {
	gatewayMetrics.attempts.WithLabelValues(c.provider, a.outcome.String()).Inc()
	if a.span == nil {
		return
	}
	a.span.SetAttributes(
		attribute.String("llm_gateway.outcome", a.outcome.String()),
		attribute.Int("http.response.status_code", a.statusCode),
		attribute.Int64("gen_ai.usage.input_tokens", a.billedPrompt),
		attribute.Int64("gen_ai.usage.output_tokens", a.billedCompletion),
	)
	if a.responseModel != "" {
		a.span.SetAttributes(attribute.String("gen_ai.response.model", a.responseModel))
	}
	if a.outcome != routing.Served && a.outcome != routing.Refused {
		// The cause is the gateway's own wording (failureCause), never the
		// provider's text, which could quote the request.
		a.span.SetStatus(codes.Error, a.outcome.String())
	}
	a.span.End()
}

// genAIOperation is the GenAI operation name of an endpoint.
func genAIOperation(k endpointKind) string {
	switch k {
	case kindEmbeddings:
		return "embeddings"
	case kindCompletions:
		return "text_completion"
	case kindResponses, kindMessages:
		return "chat"
	}
	return "chat"
}
