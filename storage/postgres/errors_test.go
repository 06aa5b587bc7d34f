package postgres

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/storage"
)

const secret = "s3cr3t-p@ss"

// closedPort returns a local TCP address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// The database password appears in no error: not when the URL does not
// parse, not when the server does not answer, not when it refuses the
// login.
func TestErrorsNeverCarryThePassword(t *testing.T) {
	escaped := url.UserPassword("gw", secret).String()
	urls := map[string]string{
		"unreachable":  "postgres://" + escaped + "@" + closedPort(t) + "/db?sslmode=disable&connect_timeout=2",
		"bad port":     "postgres://gw:" + secret + "@127.0.0.1:notaport/db",
		"bad query":    "postgres://" + escaped + "@127.0.0.1/db?sslmode=bogus",
		"key=value":    "host=127.0.0.1 port=1 user=gw password=" + secret + " dbname=db connect_timeout=2 sslmode=disable",
		"unparsable":   "postgres://gw:" + secret + "@[::1/db",
		"query secret": "postgres://gw@" + closedPort(t) + "/db?sslmode=disable&password=" + url.QueryEscape(secret),
	}
	if real := probeTestDatabase(); real != "" {
		// The real server with a wrong user and a password: refused login.
		u, _ := url.Parse(real)
		u.User = url.UserPassword("no_such_role", secret)
		urls["refused login"] = u.String()
	}
	for name, raw := range urls {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := Open(ctx, Options{URL: raw, ConnectTimeout: 2 * time.Second})
		cancel()
		if err == nil {
			t.Fatalf("%s: Open succeeded", name)
		}
		for _, form := range []string{secret, url.QueryEscape(secret), url.PathEscape(secret)} {
			if strings.Contains(err.Error(), form) {
				t.Errorf("%s: error carries the password: %v", name, err)
			}
		}
	}
}

// A server that does not answer is ErrUnavailable, which the gateway
// answers with 503.
func TestUnreachableDatabaseIsUnavailable(t *testing.T) {
	raw := "postgres://gw:" + secret + "@" + closedPort(t) + "/db?sslmode=disable"
	_, err := Open(context.Background(), Options{URL: raw, ConnectTimeout: time.Second})
	if !IsUnavailable(err) {
		t.Fatalf("Open on a closed port: %v, want ErrUnavailable", err)
	}
}

// A store whose database goes away answers ErrUnavailable (the gateway's
// 503), for reads, writes and usage records alike, and works again by
// itself once the database is back.
func TestDatabaseOutageIsUnavailableAndRecovers(t *testing.T) {
	target, err := url.Parse(testDatabaseURL(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy := startProxy(t, target.Host, "127.0.0.1:0")
	viaProxy := *target
	viaProxy.Host = proxy.addr
	s, err := Open(context.Background(), Options{URL: viaProxy.String(), Schema: newSchema(t),
		ConnectTimeout: time.Second, AcquireTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateUser(&storage.User{UserID: "before"}); err != nil {
		t.Fatal(err)
	}

	proxy.stop()
	checks := map[string]func() error{
		"GetUser":    func() error { _, err := s.GetUser("before"); return err },
		"CreateUser": func() error { return s.CreateUser(&storage.User{UserID: "during"}) },
		"RecordUsage": func() error {
			return s.RecordUsage(context.Background(), &storage.UsageRecord{ID: "r1", Timestamp: time.Now()})
		},
		"Ping": s.Ping,
	}
	for name, check := range checks {
		if err := check(); !IsUnavailable(err) {
			t.Errorf("%s during the outage: %v, want ErrUnavailable", name, err)
		}
	}

	startProxy(t, target.Host, proxy.addr)
	if _, err := s.GetUser("before"); err != nil {
		t.Fatalf("GetUser after the outage: %v", err)
	}
	if err := s.RecordUsage(context.Background(), &storage.UsageRecord{ID: "r1", Timestamp: time.Now()}); err != nil {
		t.Fatalf("RecordUsage after the outage: %v", err)
	}
}

// tcpProxy forwards connections to a target until stopped, which also
// cuts the connections it carries: a database that goes away.
type tcpProxy struct {
	addr  string
	l     net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func startProxy(t *testing.T, target, addr string) *tcpProxy {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{addr: l.Addr().String(), l: l}
	t.Cleanup(p.stop)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
	return p
}

func (p *tcpProxy) stop() {
	p.l.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func TestClassify(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{context.DeadlineExceeded, true},
		{&net.OpError{Op: "dial", Err: errors.New("refused")}, true},
		{context.Canceled, false},
		{errors.New("syntax error"), false},
	}
	for _, tc := range tests {
		if got := IsUnavailable(classify(tc.err)); got != tc.want {
			t.Errorf("IsUnavailable(classify(%v)) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestRedactURL(t *testing.T) {
	got := RedactURL("postgres://gw:" + url.QueryEscape(secret) + "@db:5432/gw?sslmode=require&password=" + url.QueryEscape(secret))
	if strings.Contains(got, "s3cr3t") {
		t.Fatalf("RedactURL = %s", got)
	}
	if !strings.Contains(got, "gw:xxxxx@db:5432") {
		t.Fatalf("RedactURL = %s, want the rest kept", got)
	}
}
