package llmgateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/tidwall/gjson"
	"go.uber.org/zap"

	"github.com/llmgateway/caddy-llm-gateway/internal/routing"
	"github.com/llmgateway/caddy-llm-gateway/internal/translate"
)

// relayBody answers a non-stream response once its usage is recorded.
func (g *Gateway) relayBody(w http.ResponseWriter, c *call, resp *http.Response, a *attempt) error {
	if resp.ContentLength > maxResponseBody {
		// Refused on the announced length, before reading any of it.
		return g.failOversized(c, a, resp.ContentLength)
	}
	body, err := readAllSized(resp.Body, resp.ContentLength, maxResponseBody)
	if errors.Is(err, errOverLimit) {
		return g.failOversized(c, a, maxResponseBody+1)
	}
	if err != nil {
		return g.failRead(c, a, err)
	}
	if !gjson.ValidBytes(body) {
		return g.failRead(c, a, fmt.Errorf("%w: provider answered %d", errResponseNotJSON, resp.StatusCode))
	}
	a.statusCode, a.outcome = resp.StatusCode, routing.Served
	if a.span != nil {
		a.responseModel = gjson.GetBytes(body, "model").Str
	}
	out, err := c.tr.Response(body)
	if err != nil {
		return g.failRead(c, a, fmt.Errorf("%w: %w", errResponseTranslation, err))
	}
	a.setUsage(out.Usage, out.ContentBytes)
	if err := g.record(c, a, false); err != nil {
		return err
	}
	if out.ContentType != "" {
		w.Header().Set("Content-Type", out.ContentType)
	} else {
		copyHeader(w.Header(), resp.Header, "Content-Type")
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(out.Body)))
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(out.Body)
	return nil
}

// setUsage takes what the provider reported, and the content seen for an
// estimate.
func (a *attempt) setUsage(u translate.Usage, contentBytes int) {
	a.usageSeen, a.usageInvalid = u.Seen, u.Invalid
	a.promptTokens, a.completionTokens = u.Prompt, u.Completion
	a.completionBytes = contentBytes
}

// relayStream forwards a provider's stream in the client's format, every
// format through this one loop: the call's translator says what each piece
// of the provider's stream becomes, this loop writes and flushes it, times
// the first token, notices a client that left and bills the stream. The
// usage record is committed before the client sees the stream's end.
func (g *Gateway) relayStream(ctx context.Context, w http.ResponseWriter, c *call, resp *http.Response, a *attempt) error {
	events := translate.NewReader(resp.Body)
	// A route can still fail over while nothing has reached the client, so
	// its stream is answered once the provider's first bytes are in: a
	// provider that sends its 200 and dies before any event is failed over
	// from like one that refused. A call without a route answers at once.
	var first translate.Piece
	var firstErr error
	prefetched := c.failover != 0
	if prefetched {
		first, firstErr = events.Next()
		if len(first.Data) == 0 && firstErr != nil && (ctx.Err() == nil || isTimeout(ctx.Err())) && !cutByShutdown(ctx) {
			outcome, cause := routing.Connection, "the provider closed the stream before its first event"
			if !errors.Is(firstErr, io.EOF) {
				_, cause = g.upstreamFailure(c, firstErr)
				if isTimeout(firstErr) || isTimeout(ctx.Err()) {
					outcome = routing.Timeout
				}
			}
			if c.failover.Has(outcome) {
				a.failed, a.statusCode, a.errorMessage, a.outcome = true, http.StatusBadGateway, "stream failed before its first event: "+cause, outcome
				a.failedOver, a.answerErr = true, newError(http.StatusBadGateway, "provider_error", msgProviderError)
				return errFailedOver
			}
		}
	}
	status, contentType := c.tr.StreamHeader(resp.StatusCode, resp.Header.Get("Content-Type"))
	h := w.Header()
	if contentType != "" {
		h.Set("Content-Type", contentType)
	}
	h.Set("X-Accel-Buffering", "no")
	h.Del("Content-Length")
	a.statusCode, a.outcome = status, routing.Served
	w.WriteHeader(status)
	rc := http.NewResponseController(w)
	_ = rc.Flush()

	st := c.tr.Stream()
	recorded := false
	firstWrite, midLine := true, false
	// recordOnce records the attempt the first time it is called and
	// reports whether its record was stored.
	recordOnce := func() bool {
		if recorded {
			return true
		}
		recorded = true
		return g.recordStream(c, a, st)
	}
	// endUnrecorded ends a stream whose record could not be stored with
	// the dialect's error event instead of its final events: a client
	// never gets a complete stream that is not billed.
	endUnrecorded := func() {
		if midLine {
			_, _ = w.Write([]byte("\n\n"))
		}
		_, _ = w.Write(c.dialect.StreamError())
		_ = rc.Flush()
	}
	// send writes out, flushing at the end of an event or of what has
	// arrived; false means the client is gone.
	send := func(out []byte, flush bool) bool {
		if len(out) == 0 {
			return true
		}
		if firstWrite {
			firstWrite = false
			gatewayMetrics.firstToken.WithLabelValues(c.up.name).Observe(time.Since(a.start).Seconds())
		}
		midLine = out[len(out)-1] != '\n'
		if _, err := w.Write(out); err != nil {
			return false
		}
		return !flush || rc.Flush() == nil
	}

	clientGone := false
	for {
		var p translate.Piece
		var err error
		if prefetched {
			p, err, prefetched = first, firstErr, false
		} else {
			p, err = events.Next()
		}
		if a.span != nil && a.responseModel == "" && len(p.Data) > 0 {
			a.responseModel = streamModel(p.Data)
		}
		if len(p.Data) > 0 {
			out, final, terr := st.Feed(p)
			if terr != nil {
				err = terr
			} else {
				if final && !recordOnce() {
					// Commit before the client sees the end: a client that
					// got a complete stream finds it billed.
					endUnrecorded()
					break
				}
				if !send(out, p.Blank() || !events.Buffered()) {
					clientGone = true
					break
				}
			}
		}
		if err == nil {
			continue
		}
		if errors.Is(err, io.EOF) {
			out, ferr := st.Finish()
			if ferr == nil {
				if recordOnce() {
					clientGone = !send(out, true)
				} else {
					endUnrecorded()
				}
				break
			}
			err = ferr
		}
		// The provider failed after the stream started, reported an error
		// event, or the gateway stops, or the client left.
		if ctx.Err() != nil && !isTimeout(ctx.Err()) && !cutByShutdown(ctx) {
			clientGone = true
			break
		}
		if cutByShutdown(ctx) {
			a.failed, a.errorMessage, a.outcome = true, msgCutByShutdown, routing.Abandoned
		} else {
			_, cause := g.upstreamFailure(c, err)
			a.failed, a.errorMessage, a.outcome = true, "stream interrupted: "+cause, routing.Interrupted
		}
		recordOnce()
		endUnrecorded()
		break
	}
	if clientGone {
		a.failed, a.errorMessage, a.outcome = true, "client disconnected", routing.Abandoned
	}
	recordOnce()
	return nil
}

// recordStream records a stream's attempt from what its translator saw
// and reports whether the record was stored. The response has started,
// so a failure is logged, and the stream ends with an error event rather
// than its final events.
func (g *Gateway) recordStream(c *call, a *attempt, st translate.Stream) bool {
	a.setUsage(st.Usage())
	if err := g.record(c, a, false); err != nil {
		g.logger.Error("recording stream usage failed; the stream ends with an error event",
			zap.String("request_id", c.requestID), zap.Error(err))
		return false
	}
	return true
}

// streamModel reads the model a stream event names: chat chunks and the
// legacy Completions carry it at the top, Anthropic's message_start in
// its message, the Responses API in its response.
func streamModel(data []byte) string {
	r := gjson.GetManyBytes(data, "model", "message.model", "response.model")
	for _, v := range r {
		if v.Type == gjson.String {
			return v.Str
		}
	}
	return ""
}
