package integration

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/llmgateway/caddy-llm-gateway/storage/postgres/pgtest"
)

// outageScene is one gateway on its own database, with a key, whose
// database can be cut and restored, and the request ids of every 200 it
// served.
type outageScene struct {
	c      *pgCluster
	g      *gateway
	ig     *inferenceGateway
	key    string
	name   string // the database's name
	admin  string // a URL of the server's admin database
	mu     sync.Mutex
	served []string
}

func newOutageScene(t *testing.T, user string) *outageScene {
	t.Helper()
	c := startPostgresGateways(t, 0)
	cfg := c.config
	cfg.Block += fleetPrices
	g := startChecked(t, cfg)
	u, err := url.Parse(c.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	s := &outageScene{
		c: c, g: g, ig: &inferenceGateway{gateway: g, mock: c.mock},
		key:   g.newKey(map[string]any{"user_id": user}).Key,
		name:  strings.TrimPrefix(u.Path, "/"),
		admin: pgtest.URL(t),
	}
	t.Cleanup(s.restore)
	return s
}

// post sends a request, remembering it if it was served.
func (s *outageScene) post(body string) *response {
	r := s.g.do("POST", "/v1/chat/completions", body, bearer(s.key)...)
	if r.Status == http.StatusOK {
		s.mu.Lock()
		s.served = append(s.served, r.Header.Get("X-Request-Id"))
		s.mu.Unlock()
	}
	return r
}

func (s *outageScene) chat() *response { return s.post(budgetRequest) }

// The database goes away: new connections are refused and the open ones
// cut, until none is left (one being set up when connections were
// refused may appear after the first cut).
func (s *outageScene) cut(t *testing.T) {
	t.Helper()
	pgtest.Exec(t, s.admin, "ALTER DATABASE "+s.name+" ALLOW_CONNECTIONS false")
	waitFor(t, "every connection to the database cut", func() bool {
		return pgtest.Count(t, s.admin, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '"+s.name+"'") == 0
	})
}

func (s *outageScene) restore() {
	pgtest.Exec(s.g.t, s.admin, "ALTER DATABASE "+s.name+" ALLOW_CONNECTIONS true")
}

const gatedStreamWithUsage = `{"model":"mock:gated","stream":true,"stream_options":{"include_usage":true},"max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`

// completeDuringOutage admits n slow streams and n slow non-stream
// requests, cuts the database while the provider holds them, checks that
// new requests are refused before any provider is asked, then lets them
// complete: whole, their records spooled.
func (s *outageScene) completeDuringOutage(t *testing.T, n int) {
	t.Helper()
	expect(t, s.chat(), http.StatusOK)
	before := len(s.c.mock.Requests())
	streams, answers := make(chan *response, n), make(chan *response, n)
	for range n {
		go func() { streams <- s.post(gatedStreamWithUsage) }()
		go func() { answers <- s.post(slowRequest) }()
	}
	waitFor(t, "every slow request at the provider", func() bool { return len(s.c.mock.Requests()) >= before+2*n })

	s.cut(t)
	waitFor(t, "inference answered 503 while the database is down", func() bool {
		return expectOneOf(t, s.chat(), http.StatusServiceUnavailable, http.StatusOK)
	})
	atProvider := len(s.c.mock.Requests())
	expectError(t, s.chat(), http.StatusServiceUnavailable, "Database unavailable")
	if got := len(s.c.mock.Requests()); got != atProvider {
		t.Fatalf("a request refused during the outage reached the provider (%d → %d)", atProvider, got)
	}

	s.c.mock.release()
	for range n {
		r := <-streams
		expect(t, r, http.StatusOK)
		if !strings.Contains(string(r.Body), "data: [DONE]") {
			t.Fatalf("a stream completed during the outage without [DONE]:\n%s", r.Body)
		}
		if r := <-answers; expect(t, r, http.StatusOK).Map(t)["choices"] == nil {
			t.Fatalf("an answer completed during the outage without choices:\n%s", r.Body)
		}
	}
	// The log reaches the test through a pipe, maybe after the response.
	waitFor(t, "a record spooled for every stream completed during the outage", func() bool {
		return strings.Count(s.g.output.String(), "usage record spooled") >= 2*n
	})
	if got := s.g.metrics(t)["gateway_usage_spooled_total"]; got < float64(2*n) {
		t.Fatalf("gateway_usage_spooled_total = %v after %d records spooled", got, 2*n)
	}
	expectError(t, s.chat(), http.StatusServiceUnavailable, "Database unavailable")
}

// assertEveryServedRecordedOnce waits for the spool to be delivered, then
// checks that every 200 has exactly one usage record, every hold is
// released, and the spend is the sum of the records.
func (s *outageScene) assertEveryServedRecordedOnce(t *testing.T, user string) {
	t.Helper()
	db := s.c.dbURL
	waitFor(t, "the spool delivered", func() bool {
		return pgtest.Count(t, db, "SELECT count(*) FROM usage_records") >= int64(len(s.served))
	})
	waitFor(t, "every hold released", func() bool {
		return pgtest.Count(t, db, "SELECT count(*) FROM reservations") == 0
	})
	if n := pgtest.Count(t, db, "SELECT count(*) FROM usage_records"); n != int64(len(s.served)) {
		t.Fatalf("%d usage records for %d responses served", n, len(s.served))
	}
	for _, id := range s.served {
		if n := pgtest.Count(t, db, "SELECT count(*) FROM usage_records WHERE request_id = '"+id+"'"); n != 1 {
			t.Fatalf("request %s has %d usage records, want 1", id, n)
		}
	}
	waitFor(t, "a log line saying the spool was delivered", func() bool {
		return logHas(s.g.output.String(), "spooled usage records delivered to the database")
	})
	m := s.g.metrics(t)
	if m["gateway_usage_spool_delivered_total"] < 1 {
		t.Fatalf("gateway_usage_spool_delivered_total = %v after a delivery", m["gateway_usage_spool_delivered_total"])
	}
	spend := s.ig.spend(t, "/v1/users/"+user)
	if spend == 0 {
		t.Fatal("no spend charged")
	}
	assertSpendIsSumOfRecords(t, s.ig, "user_id="+user, spend)
	assertNoSecret(t, "the gateway's log", []byte(s.g.output.String()), s.c.password)
}

// Requests admitted before the database goes away complete during the
// outage, their records spooled; once the database is back the spool is
// delivered, each record exactly once, without a restart.
func TestPostgresOutageSpoolsRecordsAndDeliversThemOnce(t *testing.T) {
	t.Parallel()
	s := newOutageScene(t, "pg-hal")
	s.completeDuringOutage(t, 6)

	s.restore()
	waitFor(t, "inference served again once the database is back", func() bool {
		return expectOneOf(t, s.chat(), http.StatusOK, http.StatusServiceUnavailable)
	})
	expect(t, s.chat(), http.StatusOK)
	s.assertEveryServedRecordedOnce(t, "pg-hal")
}

// A process killed with records in its spool: the next one on the same
// storage_path delivers them.
func TestPostgresSpoolSurvivesACrash(t *testing.T) {
	t.Parallel()
	s := newOutageScene(t, "pg-ida")
	s.completeDuringOutage(t, 3)

	if err := s.g.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-s.g.exited
	s.restore()
	s.g.start()
	expect(t, s.chat(), http.StatusOK)
	s.assertEveryServedRecordedOnce(t, "pg-ida")
}

// When the database is down and the spool cannot be written either, a
// request that completes is not delivered as if it were billed: a stream
// ends with the contract's error event (then [DONE]) instead of its
// normal end, a non-stream request gets a JSON error instead of its answer.
func TestPostgresUnrecordableResponseIsNotDeliveredWhole(t *testing.T) {
	t.Parallel()
	s := newOutageScene(t, "pg-ivy")
	expect(t, s.chat(), http.StatusOK)
	before := len(s.c.mock.Requests())
	streams, answers := make(chan *response, 1), make(chan *response, 1)
	go func() { streams <- s.post(gatedStreamWithUsage) }()
	go func() { answers <- s.post(slowRequest) }()
	waitFor(t, "both slow requests at the provider", func() bool { return len(s.c.mock.Requests()) >= before+2 })

	s.cut(t)
	// The spool's directory becomes a file: every write to it fails.
	slots, err := filepath.Glob(filepath.Join(s.g.Dir, "spool", "*"))
	if err != nil || len(slots) != 1 {
		t.Fatalf("spool directories under %s: %v, %v", s.g.Dir, slots, err)
	}
	if err := os.Rename(slots[0], slots[0]+".gone"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(slots[0], nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s.c.mock.release()

	r := <-streams
	expect(t, r, http.StatusOK) // the stream had started
	const streamError = `data: {"error": {"message": "An error occurred during streaming", "type": "server_error"}}`
	if body := strings.TrimSpace(string(r.Body)); !strings.HasSuffix(body, streamError+"\n\ndata: [DONE]") {
		t.Fatalf("a stream whose record could not be stored did not end with the stream error event:\n%s", body)
	}
	a := <-answers
	if a.Status == http.StatusOK || a.Map(t)["error"] == nil {
		t.Fatalf("an answer whose record could not be stored was delivered: %d\n%s", a.Status, a.Body)
	}
	waitFor(t, "a log line saying the stream's record failed", func() bool {
		return logHas(s.g.output.String(), "recording stream usage failed; the stream ends with an error event")
	})
}
