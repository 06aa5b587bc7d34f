package integration

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// mockServer is what every mock provider shares: the HTTP server and the
// provider base URL to put in a gateway config.
type mockServer struct{ *httptest.Server }

// startMockServer serves handler until t ends. When t ends, stop (if not
// nil) lets handlers that wait on the mock return, then the connections
// still open are cut and the server is closed.
func startMockServer(t *testing.T, handler http.HandlerFunc, stop func()) mockServer {
	t.Helper()
	s := httptest.NewServer(handler)
	t.Cleanup(func() {
		if stop != nil {
			stop()
		}
		s.CloseClientConnections()
		s.Close()
	})
	return mockServer{s}
}

// BaseURL is the provider base URL to put in a gateway config.
func (s mockServer) BaseURL() string { return s.URL + "/v1" }

// mockRequest is what a mock received.
type mockRequest struct {
	Path   string
	Query  string
	Header http.Header
	Body   []byte
}

// requestLog keeps what a mock received.
type requestLog struct {
	mu       sync.Mutex
	requests []mockRequest
}

// record reads r's body, keeps the request and returns the body.
func (l *requestLog) record(r *http.Request) []byte {
	body, _ := io.ReadAll(r.Body)
	l.mu.Lock()
	l.requests = append(l.requests, mockRequest{Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: body})
	l.mu.Unlock()
	return body
}

// Requests returns a copy of what the mock received so far.
func (l *requestLog) Requests() []mockRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]mockRequest(nil), l.requests...)
}

// sseEvents returns a function that writes one named server-sent event to
// w and flushes it; the caller sets the Content-Type.
func sseEvents(w http.ResponseWriter) func(name, data string) {
	rc := http.NewResponseController(w)
	return func(name, data string) {
		fmt.Fprintf(w, "event: %s\ndata: %s\n\n", name, data)
		_ = rc.Flush()
	}
}

func writeMockJSON(w http.ResponseWriter, body string) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, body)
}
