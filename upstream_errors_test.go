package llmgateway

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"syscall"
	"testing"
	"time"
)

func TestFailureCauseNamesWhatWentWrong(t *testing.T) {
	t.Parallel()
	u := &upstream{timeout: 10 * time.Minute, dialTimeout: 10 * time.Second, headerTimeout: 30 * time.Second}
	wrap := func(err error) error {
		return &url.Error{Op: "Post", URL: "https://api.example.com/v1/chat/completions", Err: err}
	}

	// A provider that sends headers only once the test ends: only the
	// transport's header timeout can end the request.
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-hang }))
	defer srv.Close()
	defer close(hang)
	client := &http.Client{Transport: &http.Transport{ResponseHeaderTimeout: time.Millisecond}}
	_, headerErr := client.Get(srv.URL)
	if headerErr == nil {
		t.Fatal("no error from a provider that never answers")
	}

	tests := []struct {
		name string
		err  error
		want string
	}{
		{"dns", wrap(&net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "api.openai.com", IsNotFound: true}}),
			"provider unreachable: DNS lookup failed"},
		{"refused", wrap(&net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}),
			"provider unreachable: connection refused"},
		{"dial timeout", wrap(&net.OpError{Op: "dial", Net: "tcp", Err: timeoutError{}}),
			"provider unreachable: connection timed out after 10s"},
		{"whole-call timeout", wrap(context.DeadlineExceeded), "provider timeout after 10m"},
		{"header timeout", headerErr, "provider timeout: no response headers after 30s"},
		{"too large", fmt.Errorf("%w: over 1 bytes", errResponseTooLarge), "provider response larger than 64 MiB"},
		{"not JSON", fmt.Errorf("%w: provider answered 200", errResponseNotJSON), "provider answered with a body that is not JSON"},
		{"cut", wrap(fmt.Errorf("reading: %w", syscall.ECONNRESET)), "provider closed the connection"},
		{"other", wrap(fmt.Errorf("something else")), "provider request failed"},
	}
	for _, tt := range tests {
		if got := u.failureCause(tt.err); got != tt.want {
			t.Errorf("%s: failureCause(%v) = %q, want %q", tt.name, tt.err, got, tt.want)
		}
	}
}

type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

func TestStatusCause(t *testing.T) {
	t.Parallel()
	for status, want := range map[int]string{
		401: "provider rejected the gateway's API key (401)",
		403: "provider rejected the gateway's API key (403)",
		307: "provider answered with a redirect (307), which the gateway does not follow",
		503: "provider returned 503",
	} {
		if got := statusCause(status); got != want {
			t.Errorf("statusCause(%d) = %q, want %q", status, got, want)
		}
	}
}

func TestShortDuration(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		10 * time.Minute:                "10m",
		90 * time.Minute:                "1h30m",
		2 * time.Hour:                   "2h",
		2 * time.Second:                 "2s",
		500 * time.Millisecond:          "500ms",
		time.Minute + 30*time.Second:    "1m30s",
		10*time.Minute + 10*time.Second: "10m10s",
	} {
		if got := shortDuration(d); got != want {
			t.Errorf("shortDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestWarnLimiterLogsOncePerCauseAndInterval(t *testing.T) {
	t.Parallel()
	var l warnLimiter
	start := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	steps := []struct {
		cause      string
		at         time.Duration
		ok         bool
		suppressed int
	}{
		{"refused", 0, true, 0},
		{"refused", time.Second, false, 0},
		{"401", time.Second, true, 0}, // another cause has its own interval
		{"refused", 29 * time.Second, false, 0},
		{"refused", 30 * time.Second, true, 2},
		{"401", 31 * time.Second, true, 0},
		{"refused", 31 * time.Second, false, 0},
		{"refused", 2 * time.Minute, true, 1},
		{"refused", 3 * time.Minute, true, 0},
	}
	for _, s := range steps {
		ok, n := l.allow(s.cause, start.Add(s.at), 30*time.Second)
		if ok != s.ok || n != s.suppressed {
			t.Fatalf("%s at %s: allow = %v, %d; want %v, %d", s.cause, s.at, ok, n, s.ok, s.suppressed)
		}
	}
}
