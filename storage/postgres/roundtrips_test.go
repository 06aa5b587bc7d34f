package postgres

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/llmgateway/caddy-llm-gateway/storage"
)

// statementCounter counts the statements the store sends, by first line.
type statementCounter struct {
	queries atomic.Int64
	mu      sync.Mutex
	texts   map[string]int
}

func (c *statementCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	c.queries.Add(1)
	c.mu.Lock()
	c.texts[firstLine(d.SQL)]++
	c.mu.Unlock()
	return ctx
}

func (c *statementCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func firstLine(sql string) string {
	sql = strings.TrimSpace(sql)
	line, _, _ := strings.Cut(sql, "\n")
	return line
}

// TestHotPathIsTwoStatementsPerRequest counts what the database sees of a
// request's hot path (admission and settlement with its usage record;
// authentication is served from the instance's caches): one statement for
// the admission and at most one for the settlement, fewer when concurrent
// admissions or settlements share a batch. (pgx also prepares each statement text once
// per connection, on its first use there: not per request.)
func TestHotPathIsTwoStatementsPerRequest(t *testing.T) {
	counter := &statementCounter{texts: map[string]int{}}
	s, err := Open(context.Background(), Options{URL: testDatabaseURL(t), Schema: newSchema(t), MaxConns: 8, Tracer: counter})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	request := func(t *testing.T, i int) {
		a, err := s.Admit(context.Background(), admitReq(t0, storage.Dollars(0.001), dollars(1000), nil))
		if err != nil {
			t.Errorf("Admit: %v", err)
			return
		}
		rec := usage(fmt.Sprintf("rt-%s-%d", t.Name(), i), storage.Dollars(0.001))
		if err := s.Settle(context.Background(), Settlement{HoldID: a.HoldID, Records: []*storage.UsageRecord{rec}, Tokens: 10}); err != nil {
			t.Errorf("Settle: %v", err)
		}
	}
	request(t, -1) // warm: the first prepares
	const n = 200
	t.Run("sequential", func(t *testing.T) {
		q0 := counter.queries.Load()
		for i := range n {
			request(t, i)
		}
		q := counter.queries.Load() - q0
		if q != 2*n {
			t.Errorf("%d sequential requests sent %d statements, want %d (%v)", n, q, 2*n, counter.texts)
		}
		t.Logf("%d sequential requests: %d statements, %.2f per request", n, q, float64(q)/n)
	})
	t.Run("concurrent", func(t *testing.T) {
		q0 := counter.queries.Load()
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { request(t, i) })
		}
		wg.Wait()
		q := counter.queries.Load() - q0
		if q > 2*n || q < 2 {
			t.Errorf("%d concurrent requests sent %d statements, want between 1 and %d admissions and between 1 and %d settlements (%v)", n, q, n, n, counter.texts)
		}
		t.Logf("%d concurrent requests: %d statements, %.2f per request", n, q, float64(q)/n)
	})
}
