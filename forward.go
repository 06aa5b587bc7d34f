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
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

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
}

// forward sends the call to its provider and answers the client, failing
// over to the provider's next base URL when a connection cannot be made.
func (g *Gateway) forward(w http.ResponseWriter, r *http.Request, c *call) error {
	start := c.up.next.Add(1) - 1
	for try := uint64(0); ; try++ {
		a := &attempt{start: time.Now()}
		ctx, cancel := g.attemptContext(r.Context(), c.up.timeout)
		resp, err := g.send(ctx, r, c, try, start)
		if err != nil && r.Context().Err() != nil && !isTimeout(err) {
			// The client left while the provider was being asked: nobody
			// to answer, but the attempt is recorded as the client's doing.
			cancel()
			a.failed, a.statusCode, a.errorMessage = true, statusClientClosed, "client disconnected"
			return g.record(c, a, false)
		}
		if err != nil {
			cancel()
			canRetry := isDialError(err) && try+1 < uint64(len(c.up.baseURLs)) && r.Context().Err() == nil
			apiErr, cause := g.upstreamFailure(c, err)
			a.failed, a.statusCode, a.errorMessage = true, apiErr.Status, cause
			if canRetry {
				a.errorMessage = cause + "; retrying on the next base URL"
			}
			if rerr := g.record(c, a, canRetry); rerr != nil {
				return rerr
			}
			if canRetry {
				continue
			}
			return apiErr
		}
		err = g.respond(ctx, w, c, resp, a)
		resp.Body.Close()
		cancel()
		return err
	}
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
		detail := string(text)
		if msg := gjson.GetBytes(text, "error.message"); msg.Type == gjson.String {
			detail = msg.Str
		}
		g.warnProviderFailure(c, a.errorMessage, resp.StatusCode, detail)
		if err := g.record(c, a, false); err != nil {
			return err
		}
		return newError(http.StatusBadGateway, "provider_error", msgProviderError)
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
	a.errorMessage = "provider returned " + strconv.Itoa(resp.StatusCode)
	if msg := gjson.GetBytes(body, "error.message"); msg.Type == gjson.String {
		a.errorMessage += ": " + truncate(c.up.redact(msg.Str), 512)
	}
	if err := g.record(c, a, false); err != nil {
		return err
	}
	body = c.up.redactBytes(body)
	copyHeader(w.Header(), resp.Header, "Content-Type", "Retry-After")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(body)
	return nil
}

// failRead records an attempt whose response could not be read.
func (g *Gateway) failRead(c *call, a *attempt, err error) error {
	apiErr, cause := g.upstreamFailure(c, err)
	a.failed, a.statusCode, a.errorMessage = true, apiErr.Status, cause
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
