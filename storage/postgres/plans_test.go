package postgres

import (
	"context"
	"fmt"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/llmgateway/caddy-llm-gateway/storage"
)

// TestHotPathPlansReadTablesByIndex runs the hot path's statements (an
// admission alone, a batch of admissions, a settlement, each with budgets
// and rate rules) on a connection that logs the plan of every statement
// they run (auto_explain, nested statements included, sent back as
// notices), and fails on a sequential scan of any table. The functions run
// with generic plans (0009_generic_plans.sql), made on a connection's first
// call and kept for as long as it lives, so a plan made while a table was
// empty, as here, would keep reading the whole table (the holds, the rate
// windows of the last minute) on every call once it is full.
func TestHotPathPlansReadTablesByIndex(t *testing.T) {
	ctx := context.Background()
	schema := newSchema(t)
	s, err := Open(ctx, Options{URL: testDatabaseURL(t), Schema: schema, MaxConns: 2})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })

	cfg, err := pgx.ParseConfig(testDatabaseURL(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize()
	var (
		mu    sync.Mutex
		plans []string
	)
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		mu.Lock()
		defer mu.Unlock()
		plans = append(plans, n.Message)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	if _, err := conn.Exec(ctx, "LOAD 'auto_explain'"); err != nil {
		t.Fatalf("loading auto_explain (a module PostgreSQL ships; the test role must be a superuser): %v", err)
	}
	for _, set := range []string{
		"SET auto_explain.log_min_duration = 0",
		"SET auto_explain.log_nested_statements = on",
		"SET auto_explain.log_level = notice",
	} {
		if _, err := conn.Exec(ctx, set); err != nil {
			t.Fatalf("%s: %v", set, err)
		}
	}

	rated := func(i int) AdmitRequest {
		req := admitReq(t0.Add(time.Duration(i)*time.Second), storage.Dollars(0.001), dollars(1000), dollars(1000))
		req.Rates = []AdmitRate{{Account: alice, RPM: 1000}, {Account: akey, RPM: 1000, TPM: 1_000_000}}
		req.Tokens = 100
		return req
	}
	admit := func(sql string, args []any) {
		t.Helper()
		rows, err := conn.Query(ctx, sql, args...)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	one := rated(0)
	admit(admitOneSQL, admitOneArgs(one))
	batch := []*admitCall{{req: rated(1)}, {req: rated(2)}}
	admit(admitBatchSQL, admitBatchArgs(batch))

	var settlements []*settleRequest
	for i, req := range []AdmitRequest{one, batch[0].req, batch[1].req} {
		settlements = append(settlements, &settleRequest{st: Settlement{
			HoldID: req.HoldID, Tokens: 80,
			Records: []*storage.UsageRecord{usage(fmt.Sprint("plan-", i), storage.Dollars(0.001))},
		}})
	}
	if _, err := conn.Exec(ctx, settleSQL, append(settleArgs(settlements), true)...); err != nil {
		t.Fatal(err)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(plans) < 10 {
		t.Fatalf("auto_explain sent %d plans, want one per statement run (at least 10)", len(plans))
	}
	seq := regexp.MustCompile(`Seq Scan on (\w+)`)
	for _, p := range plans {
		for _, m := range seq.FindAllStringSubmatch(p, -1) {
			t.Errorf("a hot-path statement reads table %s whole:\n%s", m[1], p)
		}
	}
}
