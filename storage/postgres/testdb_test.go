package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// The tests run against a real PostgreSQL named by GATEWAY_TEST_DATABASE_URL
// (.ci/run starts one). Without it, or when it does not answer, they skip;
// with GATEWAY_REQUIRE_POSTGRES=1 they fail instead.

var (
	dbOnce   sync.Once
	dbURL    string
	dbReason string
)

// testDatabaseURL returns the test database's URL, or skips (fails) the
// test when there is none.
func testDatabaseURL(t testing.TB) string {
	t.Helper()
	if probeTestDatabase() == "" {
		if os.Getenv("GATEWAY_REQUIRE_POSTGRES") == "1" {
			t.Fatalf("PostgreSQL required (GATEWAY_REQUIRE_POSTGRES=1): %s", dbReason)
		}
		t.Skip("no PostgreSQL: " + dbReason)
	}
	return dbURL
}

// probeTestDatabase checks once whether the test database answers and
// returns its URL, or "" with dbReason saying why not.
func probeTestDatabase() string {
	dbOnce.Do(func() {
		url := os.Getenv("GATEWAY_TEST_DATABASE_URL")
		if url == "" {
			dbReason = "GATEWAY_TEST_DATABASE_URL is not set"
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			dbReason = "test database does not answer: " + newRedactor(url, "").redact(err).Error()
			return
		}
		_ = conn.Close(ctx)
		dbURL = url
	})
	return dbURL
}

// newSchema returns a fresh schema name, dropped with everything in it
// when the test ends.
func newSchema(t testing.TB) string {
	t.Helper()
	url := testDatabaseURL(t)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "gwtest_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
	})
	return schema
}

// openTestStore opens a store on a fresh schema, closed when the test
// ends (before the schema is dropped).
func openTestStore(t testing.TB) *Store {
	t.Helper()
	schema := newSchema(t)
	s, err := Open(context.Background(), Options{URL: testDatabaseURL(t), Schema: schema, MaxConns: 8})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}
