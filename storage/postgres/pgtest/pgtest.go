// Package pgtest gives tests outside storage/postgres a PostgreSQL of their
// own: a fresh schema or database of the server named by
// GATEWAY_TEST_DATABASE_URL, dropped when the test ends. Without that
// variable a test skips; with GATEWAY_REQUIRE_POSTGRES=1 it fails instead.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// URL returns GATEWAY_TEST_DATABASE_URL, or skips (fails) the test.
func URL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("GATEWAY_TEST_DATABASE_URL")
	if u == "" {
		if os.Getenv("GATEWAY_REQUIRE_POSTGRES") == "1" {
			t.Fatal("PostgreSQL required (GATEWAY_REQUIRE_POSTGRES=1) but GATEWAY_TEST_DATABASE_URL is not set")
		}
		t.Skip("no PostgreSQL: GATEWAY_TEST_DATABASE_URL is not set")
	}
	return u
}

// Schema returns the name of a fresh schema (not created: the store's Open
// creates it), dropped with everything in it when the test ends.
func Schema(t testing.TB) string {
	t.Helper()
	name := "gwtest_" + randomHex()
	dropWhenDone(t, URL(t), "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE")
	return name
}

// Database creates a fresh database and returns its URL, dropped (its
// connections cut) when the test ends: register it before starting what
// connects to it, so that it is cleaned up last.
func Database(t testing.TB) string {
	t.Helper()
	base := URL(t)
	name := "gwtest_" + randomHex()
	Exec(t, base, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	dropWhenDone(t, base, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("GATEWAY_TEST_DATABASE_URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// Count runs query, a SELECT of one number, on the database at dbURL.
func Count(t testing.TB, dbURL, query string) int64 {
	t.Helper()
	var n int64
	withConn(t, dbURL, func(ctx context.Context, conn *pgx.Conn) error {
		return conn.QueryRow(ctx, query).Scan(&n)
	}, query)
	return n
}

func dropWhenDone(t testing.TB, dbURL, stmt string) {
	t.Cleanup(func() { Exec(t, dbURL, stmt) })
}

// Exec runs stmt on the database at dbURL.
func Exec(t testing.TB, dbURL, stmt string) {
	t.Helper()
	withConn(t, dbURL, func(ctx context.Context, conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, stmt)
		return err
	}, stmt)
}

// withConn runs fn on a connection of its own to dbURL, failing the test
// with what (a statement) when it fails.
func withConn(t testing.TB, dbURL string, fn func(context.Context, *pgx.Conn) error, what string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatalf("%s: connecting to the test database: %v", what, err)
	}
	defer conn.Close(ctx)
	if err := fn(ctx, conn); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func randomHex() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
