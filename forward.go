package llmgateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/llmgateway/caddy-llm-gateway/internal/routing"
	"github.com/llmgateway/caddy-llm-gateway/internal/translate"
)

// Limits on what the gateway reads from a provider.
const (
	maxResponseBody = 64 << 20 // a non-stream response
	maxErrorBody    = 1 << 20  // a 4xx body passed through
	maxLoggedError  = 2 << 10  // provider error text kept for the debug log
	recordTimeout   = 10 * time.Second
)

// statusClientClosed is recorded when the client left before an answer
// (nginx's 499: no response was sent).
const statusClientClosed = 499

// Messages of the contract for upstream failures.
const (
	msgProviderError   = "LLM provider error"
	msgProviderTimeout = "LLM provider timeout"
)

// attempt is the outcome of one upstream call, turned into a usage record.
type attempt struct {
	start            time.Time
	statusCode       int // what the client received
	failed           bool
	errorMessage     string
	usageSeen        bool
	usageInvalid     string // why the provider's usage cannot be billed
	promptTokens     int64
	completionTokens int64
	completionBytes  int  // content forwarded, for an estimate
	billEstimate     bool // a failure after the provider did the work
	// billedPrompt and billedCompletion are the record's token counts.
	billedPrompt     int64
	billedCompletion int64
	outcome          routing.Outcome
	retryAfter       time.Duration // a 429's Retry-After
	// failedOver is set when the attempt failed in a way the call's route
	// moves on from: nothing was answered and nothing recorded yet (the
	// route records it, knowing whether a target is left); answer is what
	// the client gets if none is.
	failedOver    bool
	answerErr     error
	answerPassed  *passedAnswer
	span          trace.Span // nil unless the request is traced
	responseModel string     // the provider's model name in its answer (traced only)
}

// passedAnswer is a provider 4xx passed through to the client.
type passedAnswer struct {
	status                  int
	body                    []byte
	contentType, retryAfter string
}

// errFailedOver is what forward returns for an attempt its route fails
// over from (attempt.failedOver): nothing was written to the client.
var errFailedOver = errors.New("attempt failed over")

// forward sends the call to its provider and answers the client, failing
// over to the provider's next base URL when a connection cannot be made.
// It returns the last attempt; for an attempt the call's route fails over
// from (c.failover), it returns errFailedOver having answered nothing.
func (g *Gateway) forward(w http.ResponseWriter, r *http.Request, c *call) (*attempt, error) {
	start := c.up.next.Add(1) - 1
	for try := uint64(0); ; try++ {
		a := &attempt{start: time.Now()}
		g.startAttemptSpan(r.Context(), c, a)
		ctx, cancel := g.attemptContext(r.Context(), c.up.timeout)
		resp, err := g.sendWithin(ctx, r, c, try, start)
		if err != nil && r.Context().Err() != nil && !isTimeout(err) {
			// The client left while the provider was being asked: nobody
			// to answer, but the attempt is recorded as the client's doing.
			cancel()
			a.failed, a.statusCode, a.errorMessage, a.outcome = true, statusClientClosed, "client disconnected", routing.Abandoned
			err = g.record(c, a, false)
			g.endAttempt(c, a)
			return a, err
		}
		if err != nil {
			cancel()
			canRetry := isDialError(err) && try+1 < uint64(len(c.up.baseURLs)) && r.Context().Err() == nil
			apiErr, cause := g.upstreamFailure(c, err)
			if errors.Is(err, errAttemptTimeout) {
				cause = "provider timeout: no response after " + shortDuration(c.attemptTimeout) + " (the route's attempt_timeout)"
			}
			a.failed, a.statusCode, a.errorMessage = true, apiErr.Status, cause
			a.outcome = routing.Connection
			if isTimeout(err) {
				a.outcome = routing.Timeout
			}
			if canRetry {
				a.errorMessage = cause + "; retrying on the next base URL"
			} else if c.failover.Has(a.outcome) {
				a.failedOver, a.answerErr = true, apiErr
				g.endAttempt(c, a)
				return a, errFailedOver
			}
			rerr := g.record(c, a, canRetry)
			g.endAttempt(c, a)
			if rerr != nil {
				return a, rerr
			}
			if canRetry {
				continue
			}
			return a, apiErr
		}
		err = g.respond(ctx, w, c, resp, a)
		resp.Body.Close()
		cancel()
		g.endAttempt(c, a)
		return a, err
	}
}

// errAttemptTimeout cuts an attempt whose response has not started within
// its route's attempt_timeout.
var errAttemptTimeout = fmt.Errorf("route attempt_timeout: %w", context.DeadlineExceeded)

// sendWithin is send bounded, until the response headers, by the call's
// attempt timeout (a route's attempt_timeout) when it has one.
func (g *Gateway) sendWithin(ctx context.Context, r *http.Request, c *call, try, start uint64) (*http.Response, error) {
	if c.attemptTimeout <= 0 {
		return g.send(ctx, r, c, try, start)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	timer := time.AfterFunc(c.attemptTimeout, func() { cancel(errAttemptTimeout) })
	resp, err := g.send(ctx, r, c, try, start)
	if !timer.Stop() {
		// The timer fired: whatever arrived is cut.
		if err == nil {
			resp.Body.Close()
		}
		return nil, errAttemptTimeout
	}
	if err != nil {
		cancel(err)
		return nil, err
	}
	// The response's body is read under ctx: cancel it with the body.
	resp.Body = cancelOnClose{resp.Body, func() { cancel(context.Canceled) }}
	return resp, nil
}

// cancelOnClose is a response body that ends its context when closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel func()
}

func (b cancelOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// errShuttingDown is the cause of an attempt cut because the gateway stops.
var errShuttingDown = errors.New("gateway shutting down")

// attemptContext bounds one upstream attempt by the client's request, the
// provider timeout and the gateway's shutdown (cause errShuttingDown).
func (g *Gateway) attemptContext(parent context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancelCause := context.WithCancelCause(parent)
	stopWatch := func() bool { return true }
	if g.state != nil && g.state.stopping != nil {
		stopWatch = context.AfterFunc(g.state.stopping, func() { cancelCause(errShuttingDown) })
	}
	ctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	return ctx, func() {
		stopWatch()
		cancelTimeout()
		cancelCause(context.Canceled)
	}
}

// cutByShutdown reports whether ctx ended because the gateway stops.
func cutByShutdown(ctx context.Context) bool {
	return errors.Is(context.Cause(ctx), errShuttingDown)
}

// msgCutByShutdown is the usage record's error_message of such a stream.
const msgCutByShutdown = "stream cut by gateway shutdown"

// send makes one HTTP request to the provider.
func (g *Gateway) send(ctx context.Context, r *http.Request, c *call, try, start uint64) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.up.endpoint(c.upstreamPath, c.upstreamQuery, try, start), bytes.NewReader(c.body))
	if err != nil {
		return nil, err
	}
	req.ContentLength = int64(len(c.body))
	req.Header.Set("Content-Type", "application/json")
	if accept := r.Header.Get("Accept"); accept != "" {
		req.Header.Set("Accept", accept)
	}
	if ua := r.Header.Get("User-Agent"); ua != "" {
		req.Header.Set("User-Agent", ua)
	}
	c.up.setAuth(req.Header, r.Header)
	sent := time.Now()
	resp, err := c.up.client.Do(req)
	if err == nil {
		gatewayMetrics.upstreamLatency.WithLabelValues(c.up.name).Observe(time.Since(sent).Seconds())
	}
	return resp, err
}

// upstreamFailure maps a failed round trip to the contract's error and to
// the cause the operator sees (in the usage record, and in a warning
// limited per provider; see upstream_errors.go).
func (g *Gateway) upstreamFailure(c *call, err error) (*apiError, string) {
	if ce := g.logger.Check(zapcore.DebugLevel, "provider request failed"); ce != nil {
		ce.Write(zap.String("error", c.up.redact(err.Error())))
	}
	cause := c.up.failureCause(err)
	g.warnProviderFailure(c, cause, 0, err.Error())
	if isTimeout(err) {
		return newError(http.StatusGatewayTimeout, "provider_timeout", msgProviderTimeout), cause
	}
	return newError(http.StatusBadGateway, "provider_error", msgProviderError), cause
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// respond answers the client from the provider's response and records the
// attempt.
func (g *Gateway) respond(ctx context.Context, w http.ResponseWriter, c *call, resp *http.Response, a *attempt) error {
	switch {
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden || resp.StatusCode < 200 || (resp.StatusCode >= 300 && resp.StatusCode < 400):
		text, _ := io.ReadAll(io.LimitReader(resp.Body, maxLoggedError))
		if ce := g.logger.Check(zapcore.DebugLevel, "provider error response"); ce != nil {
			ce.Write(zap.String("provider", c.provider), zap.Int("status", resp.StatusCode),
				zap.String("body", c.up.redact(string(text))))
		}
		a.failed, a.statusCode = true, http.StatusBadGateway
		a.errorMessage = statusCause(resp.StatusCode)
		a.outcome = routing.OutcomeOfStatus(resp.StatusCode)
		detail := string(text)
		if msg := gjson.GetBytes(text, "error.message"); msg.Type == gjson.String {
			detail = msg.Str
		}
		g.warnProviderFailure(c, a.errorMessage, resp.StatusCode, detail)
		apiErr := newError(http.StatusBadGateway, "provider_error", msgProviderError)
		if c.failover.Has(a.outcome) {
			a.failedOver, a.answerErr = true, apiErr
			return errFailedOver
		}
		if err := g.record(c, a, false); err != nil {
			return err
		}
		return apiErr
	case resp.StatusCode >= 400:
		return g.passThroughError(w, c, resp, a)
	case c.stream && strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream"):
		return g.relayStream(ctx, w, c, resp, a)
	}
	return g.relayBody(w, c, resp, a)
}

// passThroughError forwards a provider 4xx (bad request, rate limit, not
// found) with its status and body.
func (g *Gateway) passThroughError(w http.ResponseWriter, c *call, resp *http.Response, a *attempt) error {
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if err != nil {
		return g.failRead(c, a, err)
	}
	a.failed, a.statusCode = true, resp.StatusCode
	a.outcome = routing.OutcomeOfStatus(resp.StatusCode)
	a.errorMessage = "provider returned " + strconv.Itoa(resp.StatusCode)
	if msg := gjson.GetBytes(body, "error.message"); msg.Type == gjson.String {
		a.errorMessage += ": " + truncate(c.up.redact(msg.Str), 512)
	}
	answer := &passedAnswer{
		status:      resp.StatusCode,
		body:        c.up.redactBytes(body),
		contentType: resp.Header.Get("Content-Type"),
		retryAfter:  resp.Header.Get("Retry-After"),
	}
	if a.outcome == routing.RateLimited {
		a.retryAfter = retryAfterDuration(answer.retryAfter, g.now())
	}
	if c.failover.Has(a.outcome) {
		a.failedOver, a.answerPassed = true, answer
		return errFailedOver
	}
	if err := g.record(c, a, false); err != nil {
		return err
	}
	answer.write(w)
	return nil
}

// write answers the client with the provider's 4xx.
func (p *passedAnswer) write(w http.ResponseWriter) {
	h := w.Header()
	if p.contentType != "" {
		h.Set("Content-Type", p.contentType)
	}
	if p.retryAfter != "" {
		h.Set("Retry-After", p.retryAfter)
	}
	h.Set("Content-Length", strconv.Itoa(len(p.body)))
	w.WriteHeader(p.status)
	_, _ = w.Write(p.body)
}

// retryAfterDuration reads a Retry-After header (seconds or an HTTP date);
// 0 when absent or unreadable.
func retryAfterDuration(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		return time.Duration(min(n, 86400)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), 24*time.Hour)
	}
	return 0
}

// failRead records an attempt whose response could not be read; a
// connection that broke or timed out before any of it reached the client
// fails over as a connection error or a timeout would.
func (g *Gateway) failRead(c *call, a *attempt, err error) error {
	apiErr, cause := g.upstreamFailure(c, err)
	a.failed, a.statusCode, a.errorMessage = true, apiErr.Status, cause
	switch {
	case a.billEstimate || errors.Is(err, errResponseNotJSON) || errors.Is(err, errResponseTranslation):
		a.outcome = routing.ServerError
	case isTimeout(err):
		a.outcome = routing.Timeout
	default:
		a.outcome = routing.Connection
	}
	if !a.billEstimate && (a.outcome == routing.Timeout || a.outcome == routing.Connection) && c.failover.Has(a.outcome) {
		a.failedOver, a.answerErr = true, apiErr
		return errFailedOver
	}
	if rerr := g.record(c, a, false); rerr != nil {
		return rerr
	}
	return apiErr
}

// failOversized records a response too large to relay. The provider did
// the work, so the estimate is billed: the prompt's, and as many completion
// tokens as the body could hold, at most what the request allowed.
func (g *Gateway) failOversized(c *call, a *attempt, size int64) error {
	a.billEstimate = true
	a.completionBytes = int(min(size, c.completionBound*translate.BytesPerToken))
	return g.failRead(c, a, fmt.Errorf("%w: %d bytes, over %d", errResponseTooLarge, size, maxResponseBody))
}

func copyHeader(dst, src http.Header, names ...string) {
	for _, name := range names {
		if v := src.Get(name); v != "" {
			dst.Set(name, v)
		}
	}
}
