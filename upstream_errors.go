package llmgateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// The client's answer to a provider failure stays the contract's generic
// one ("LLM provider error"); the operator gets the cause, in the usage
// record's error_message and in a warning per provider.

// providerWarnInterval is how often at most a provider's failures with one
// cause are logged at warn level; the failures in between are counted in
// the next line, so an outage does not flood the log.
const providerWarnInterval = 30 * time.Second

// failureCause says, for the operator, why a round trip to the provider
// failed: e.g. "provider unreachable: DNS lookup failed" or "provider
// timeout after 10m". It never contains the provider key (the error text
// is not part of it).
func (u *upstream) failureCause(err error) string {
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var recordErr tls.RecordHeaderError
	var alert tls.AlertError
	var opErr *net.OpError
	switch {
	case errors.As(err, &dnsErr):
		return "provider unreachable: DNS lookup failed"
	case errors.As(err, &certErr), errors.As(err, &unknownAuth), errors.As(err, &hostErr):
		return "provider unreachable: TLS certificate not trusted"
	case errors.As(err, &recordErr), errors.As(err, &alert):
		return "provider unreachable: TLS handshake failed"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "provider unreachable: connection refused"
	case errors.As(err, &opErr) && opErr.Op == "dial" && opErr.Timeout():
		return "provider unreachable: connection timed out after " + shortDuration(u.dialTimeout)
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return "provider unreachable: connection failed"
	case strings.Contains(err.Error(), "timeout awaiting response headers"):
		return "provider timeout: no response headers after " + shortDuration(u.headerTimeout)
	case errors.Is(err, context.DeadlineExceeded):
		return "provider timeout after " + shortDuration(u.timeout)
	case isTimeout(err):
		return "provider timeout"
	case errors.Is(err, errResponseTooLarge):
		return "provider response larger than " + strconv.Itoa(maxResponseBody>>20) + " MiB"
	case errors.Is(err, errResponseNotJSON):
		return "provider answered with a body that is not JSON"
	case errors.Is(err, errResponseTranslation):
		return "provider answered with a response the gateway could not translate"
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, net.ErrClosed):
		return "provider closed the connection"
	}
	return "provider request failed"
}

// Failures of a response the gateway read, for failureCause.
var (
	errResponseTooLarge    = errors.New("response body too large")
	errResponseNotJSON     = errors.New("response body is not JSON")
	errResponseTranslation = errors.New("response could not be translated")
)

// statusCause says, for the operator, why a provider status was refused.
func statusCause(status int) string {
	code := strconv.Itoa(status)
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return "provider rejected the gateway's API key (" + code + ")"
	case status >= 300 && status < 400:
		return "provider answered with a redirect (" + code + "), which the gateway does not follow"
	}
	return "provider returned " + code
}

// shortDuration prints d as a person writes it: 10m, 1h30m, 2s, 500ms.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// warnLimiter lets through one warning per cause and interval, counting
// the rest. A provider has a few causes at most (its statuses, timeouts,
// connection errors), so the map stays small.
type warnLimiter struct {
	mu      sync.Mutex
	byCause map[string]*warnState
}

type warnState struct {
	last       time.Time
	suppressed int
}

// allow reports whether a warning with cause may be logged at now, and how
// many with that cause were held back since the last one.
func (l *warnLimiter) allow(cause string, now time.Time, interval time.Duration) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byCause == nil {
		l.byCause = make(map[string]*warnState)
	}
	st := l.byCause[cause]
	if st == nil {
		if len(l.byCause) >= 64 { // causes are few; never grow without bound
			clear(l.byCause)
		}
		st = new(warnState)
		l.byCause[cause] = st
	}
	if !st.last.IsZero() && now.Sub(st.last) < interval {
		st.suppressed++
		return false, 0
	}
	n := st.suppressed
	st.last, st.suppressed = now, 0
	return true, n
}

// warnProviderFailure logs a provider's failure at warn level, at most once
// per providerWarnInterval per provider and cause. detail is the provider's error
// text or the transport error, redacted here.
func (g *Gateway) warnProviderFailure(c *call, cause string, status int, detail string) {
	ok, suppressed := c.up.warns.allow(cause, g.now(), providerWarnInterval)
	if !ok {
		return
	}
	fields := []zap.Field{
		zap.String("provider", c.up.name),
		zap.String("model", c.model),
		zap.String("cause", cause),
		zap.String("request_id", c.requestID),
	}
	if status != 0 {
		fields = append(fields, zap.Int("status", status))
	}
	if detail != "" {
		fields = append(fields, zap.String("detail", truncate(c.up.redact(detail), 512)))
	}
	if suppressed > 0 {
		fields = append(fields, zap.Int("failures_not_logged", suppressed))
	}
	g.logger.Warn("provider request failed", fields...)
}
