package llmgateway

import (
	"io"
	"iter"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Keys in Caddy's access log.
//
// Caddy's access log shows the request's headers, redacting only
// Authorization (Cookie and Proxy-Authorization too) unless log_credentials
// is set, and it logs a copy of the request taken before any handler runs:
// removing a header here would not reach it. So for a request carrying a
// key in any header the gateway reads one from, the gateway asks Caddy to
// skip its own entry (as log_skip does) and writes the same entry itself,
// to the same loggers, with those headers redacted. A plain `log`
// directive then logs no key, with no filter to configure. Fields added
// with log_append are not in the gateway's entries.

// credentialHeaders are the request headers the gateway reads a key from,
// canonicalised as in a header map.
var credentialHeaders = [...]string{"X-Anyllm-Key", "Anyllm-Key", "Authorization", "X-Api-Key"}

// accessLogModule names the logger Caddy writes access logs to
// ("http.log.access"), so the gateway's entries reach the same logs.
type accessLogModule struct{}

func (accessLogModule) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.log.access", New: func() caddy.Module { return accessLogModule{} }}
}

// newAccessLogger returns the logger Caddy's access log entries go to.
func newAccessLogger(ctx caddy.Context) *zap.Logger {
	return ctx.Logger(accessLogModule{}) //nolint:staticcheck // the only way to reach that logger's name
}

// accessEntry is one request's access log entry, written by the gateway
// instead of Caddy.
type accessEntry struct {
	loggers     []*zap.Logger
	request     *http.Request // a copy, with credentials redacted
	credentials bool          // log_credentials is on
	start       time.Time
	body        *countingReader
	rec         caddyhttp.ResponseRecorder
	repl        *caddy.Replacer
}

// takeOverAccessLog takes over the access log entry of r when r carries a
// key that Caddy would log. It returns the writer to answer through and the
// entry to write once the answer is complete, or nil when Caddy's own
// entry is safe (or there is none).
func (g *Gateway) takeOverAccessLog(w http.ResponseWriter, r *http.Request) (http.ResponseWriter, *accessEntry) {
	if g.accessLog == nil {
		return w, nil
	}
	srv, _ := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	if srv == nil || srv.Logs == nil || !carriesCredential(r.Header, srv.Logs.ShouldLogCredentials) {
		return w, nil // access logging is off, or Caddy's entry holds no key
	}
	if skip, _ := caddyhttp.GetVar(r.Context(), caddyhttp.LogSkipVar).(bool); skip || !logsHost(srv.Logs, r.Host) {
		return w, nil
	}
	caddyhttp.SetVar(r.Context(), caddyhttp.LogSkipVar, true)
	e := &accessEntry{
		loggers:     accessLoggers(g.accessLog, srv.Logs, r),
		request:     r.Clone(r.Context()),
		credentials: srv.Logs.ShouldLogCredentials,
		start:       time.Now(),
		rec:         caddyhttp.NewResponseRecorder(w, nil, nil),
	}
	if orig, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request); ok && orig.URL != nil {
		// As Caddy logs it: before any rewrite on the way to the gateway.
		e.request.Method, e.request.RequestURI, e.request.URL = orig.Method, orig.RequestURI, orig.URL
	}
	e.repl, _ = r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	for _, name := range credentialHeaders {
		if vals := e.request.Header[name]; len(vals) > 0 {
			e.request.Header[name] = []string{"REDACTED"}
		}
	}
	if r.Body != nil && r.Body != http.NoBody {
		e.body = &countingReader{ReadCloser: r.Body}
		r.Body = e.body
	}
	return e.rec, e
}

// write logs the entry as Caddy would have.
func (e *accessEntry) write() {
	status := e.rec.Status()
	level := zapcore.InfoLevel
	if status >= 500 {
		level = zapcore.ErrorLevel
	}
	if name, ok := caddyhttp.GetVar(e.request.Context(), caddyhttp.LogLevelVar).(string); ok {
		if l, err := zapcore.ParseLevel(name); err == nil && l >= zapcore.DebugLevel && l <= zapcore.ErrorLevel {
			level = l
		}
	}
	var fields []zapcore.Field
	for _, logger := range e.loggers {
		c := logger.Check(level, "handled request")
		if c == nil {
			continue
		}
		if fields == nil {
			userID := ""
			if e.repl != nil {
				userID, _ = e.repl.GetString("http.auth.user.id")
			}
			read := 0
			if e.body != nil {
				read = e.body.n
			}
			fields = []zapcore.Field{
				zap.Object("request", caddyhttp.LoggableHTTPRequest{Request: e.request, ShouldLogCredentials: e.credentials}),
				zap.Int("bytes_read", read),
				zap.String("user_id", userID),
				zap.Duration("duration", time.Since(e.start)),
				zap.Int("size", e.rec.Size()),
				zap.Int("status", status),
				zap.Object("resp_headers", caddyhttp.LoggableHTTPHeader{Header: e.rec.Header(), ShouldLogCredentials: e.credentials}),
			}
		}
		c.Write(fields...)
	}
}

// carriesCredential reports whether h holds a header the gateway reads a
// key from that Caddy would log: any but Authorization, which Caddy redacts
// by itself unless logCredentials.
func carriesCredential(h http.Header, logCredentials bool) bool {
	for _, name := range credentialHeaders {
		if len(h[name]) > 0 && (name != "Authorization" || logCredentials) {
			return true
		}
	}
	return false
}

// logsHost mirrors Caddy's choice of whether a host's requests are logged.
func logsHost(logs *caddyhttp.ServerLogConfig, hostport string) bool {
	host := hostOnly(hostport)
	for name := range logs.LoggerNames {
		if matchWildcard(host, name) {
			return true
		}
	}
	for _, skip := range logs.SkipHosts {
		if matchWildcard(host, skip) {
			return false
		}
	}
	return !logs.SkipUnmappedHosts
}

// accessLoggers mirrors Caddy's choice of the loggers a request's entry
// goes to: those named for the request (log_name), else those of its host,
// else the server's default.
func accessLoggers(base *zap.Logger, logs *caddyhttp.ServerLogConfig, r *http.Request) []*zap.Logger {
	names := []string{logs.DefaultLoggerName}
	if v, ok := caddyhttp.GetVar(r.Context(), caddyhttp.AccessLoggerNameVarKey).([]any); ok {
		names = names[:0]
		for _, n := range v {
			s, _ := n.(string)
			names = append(names, s)
		}
	} else if hosts := loggerNamesFor(logs, strings.ToLower(hostOnly(r.Host))); hosts != nil {
		names = hosts
	}
	loggers := make([]*zap.Logger, 0, len(names))
	for _, name := range names {
		if name == "" {
			loggers = append(loggers, base)
		} else {
			loggers = append(loggers, base.Named(name))
		}
	}
	return loggers
}

// loggerNamesFor finds the logger names of host: exact, then by wildcard.
func loggerNamesFor(logs *caddyhttp.ServerLogConfig, host string) []string {
	for pattern := range hostPatterns(host) {
		for name, hosts := range logs.LoggerNames {
			if strings.ToLower(name) == pattern {
				return hosts
			}
		}
	}
	return nil
}

func hostOnly(hostport string) string {
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		return host
	}
	return hostport
}

// matchWildcard reports whether subject matches a host name pattern whose
// leftmost labels may be "*" (as certmagic matches them).
func matchWildcard(subject, pattern string) bool {
	subject, pattern = strings.ToLower(subject), strings.ToLower(pattern)
	if !strings.Contains(pattern, "*") {
		return subject == pattern
	}
	for p := range hostPatterns(subject) {
		if p == pattern {
			return true
		}
	}
	return false
}

// hostPatterns yields the host name patterns host matches, most specific
// first: host itself, then host with its leftmost one, two, … labels as
// "*" (an empty label stays as it is).
func hostPatterns(host string) iter.Seq[string] {
	return func(yield func(string) bool) {
		if !yield(host) {
			return
		}
		labels := strings.Split(host, ".")
		for i := range labels {
			if labels[i] == "" {
				continue
			}
			labels[i] = "*"
			if !yield(strings.Join(labels, ".")) {
				return
			}
		}
	}
}

// countingReader counts the request body bytes the gateway read, for the
// entry's bytes_read.
type countingReader struct {
	io.ReadCloser
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n += n
	return n, err
}
