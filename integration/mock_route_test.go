package integration

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"syscall"
	"testing"
)

// flipMock is an OpenAI-compatible provider that answers 500 while failing
// is set, and as mockUpstream does otherwise: a provider that goes down
// and comes back, for the passive-health tests. It counts the requests
// it receives.
type flipMock struct {
	mockServer
	inner    *mockUpstream
	failing  atomic.Bool
	requests atomic.Int64
}

func newFlipMock(t *testing.T) *flipMock {
	t.Helper()
	m := &flipMock{inner: newMockUpstream(t)}
	m.mockServer = startMockServer(t, func(w http.ResponseWriter, r *http.Request) {
		m.requests.Add(1)
		if m.failing.Load() {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprint(w, `{"error":{"message":"flip mock is down","type":"server_error"}}`)
			return
		}
		m.inner.serve(w, r)
	}, nil)
	return m
}

// retryAfterMock answers 429 with Retry-After: 1 to its first request and
// as mockUpstream does to the others.
type retryAfterMock struct {
	mockServer
	inner    *mockUpstream
	requests atomic.Int64
}

func newRetryAfterMock(t *testing.T) *retryAfterMock {
	t.Helper()
	m := &retryAfterMock{inner: newMockUpstream(t)}
	m.mockServer = startMockServer(t, func(w http.ResponseWriter, r *http.Request) {
		if m.requests.Add(1) == 1 {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprint(w, `{"error":{"message":"slow down","type":"rate_limit_error"}}`)
			return
		}
		m.inner.serve(w, r)
	}, nil)
	return m
}

// refusingPort returns a local port that refuses connections for the
// whole test: a TCP socket bound to it but never listening (a port merely
// freed could be taken by another test's server in the meantime).
func refusingPort(t *testing.T) int {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return sa.(*syscall.SockaddrInet4).Port
}
