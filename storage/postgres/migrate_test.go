package postgres

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/llmgateway/caddy-llm-gateway/storage"
)

// Several instances starting at once on an empty database all come up:
// the advisory lock makes them migrate in turn, and each migration is
// applied once.
func TestConcurrentOpenMigratesOnce(t *testing.T) {
	url := testDatabaseURL(t)
	schema := newSchema(t)
	const instances = 6
	stores := make([]*Store, instances)
	errs := make([]error, instances)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range instances {
		wg.Go(func() {
			<-start
			stores[i], errs[i] = Open(context.Background(), Options{URL: url, Schema: schema, MaxConns: 2})
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("instance %d: Open: %v", i, err)
		}
		defer stores[i].Close()
	}
	var n, max int
	err := stores[0].pool.QueryRow(context.Background(), `SELECT count(*), max(version) FROM schema_migrations`).Scan(&n, &max)
	if err != nil {
		t.Fatal(err)
	}
	list, _ := migrations()
	if n != len(list) || max != SchemaVersion() {
		t.Fatalf("schema_migrations has %d rows up to %d, want %d up to %d", n, max, len(list), SchemaVersion())
	}
	// Every instance works on the shared schema.
	for i, s := range stores {
		if err := s.CreateUser(&storage.User{UserID: string(rune('a' + i))}); err != nil {
			t.Fatalf("instance %d: %v", i, err)
		}
	}
	if users, err := stores[0].ListUsers(0, 100); err != nil || len(users) != instances {
		t.Fatalf("ListUsers = %d users, %v", len(users), err)
	}
}

func TestSkipMigrations(t *testing.T) {
	url := testDatabaseURL(t)
	schema := newSchema(t)
	ctx := context.Background()

	// An empty schema is behind.
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	_, err = Open(ctx, Options{URL: url, Schema: schema, SkipMigrations: true})
	if !errors.Is(err, ErrSchemaBehind) {
		t.Fatalf("Open without migrations on an empty schema: %v, want ErrSchemaBehind", err)
	}

	// Migrated, it opens.
	s, err := Open(ctx, Options{URL: url, Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(ctx, Options{URL: url, Schema: schema, SkipMigrations: true})
	if err != nil {
		t.Fatalf("Open without migrations on a current schema: %v", err)
	}
	s.Close()

	// One migration missing: behind, and the error names it.
	if _, err := conn.Exec(ctx, "DELETE FROM "+pgx.Identifier{schema, "schema_migrations"}.Sanitize()+" WHERE version = $1", SchemaVersion()); err != nil {
		t.Fatal(err)
	}
	_, err = Open(ctx, Options{URL: url, Schema: schema, SkipMigrations: true})
	if !errors.Is(err, ErrSchemaBehind) {
		t.Fatalf("Open without migrations on a schema missing one: %v, want ErrSchemaBehind", err)
	}

	// A version this build does not know: refused either way.
	if _, err := conn.Exec(ctx, "INSERT INTO "+pgx.Identifier{schema, "schema_migrations"}.Sanitize()+" (version, name) VALUES (9999, 'future')"); err != nil {
		t.Fatal(err)
	}
	for _, skip := range []bool{false, true} {
		_, err = Open(ctx, Options{URL: url, Schema: schema, SkipMigrations: skip})
		if !errors.Is(err, storage.ErrUnknownFormat) {
			t.Fatalf("Open (skip %v) on a newer schema: %v, want ErrUnknownFormat", skip, err)
		}
	}
}

// Admission writes only unlogged tables, so that its commit waits for no
// WAL flush while it holds its accounts' locks (0005_unlogged_holds.sql);
// money is logged.
func TestHoldsAreUnloggedAndMoneyIsLogged(t *testing.T) {
	s := openTestStore(t)
	want := map[string]string{
		"reservations": "u", "rate_events": "u",
		"usage_records": "p", "spend_periods": "p", "users": "p", "api_keys": "p", "budgets": "p", "model_pricing": "p",
	}
	for table, persistence := range want {
		var got string
		err := s.pool.QueryRow(context.Background(), `SELECT relpersistence::text FROM pg_class
			WHERE oid = to_regclass(quote_ident(current_schema()) || '.' || $1)`, table).Scan(&got)
		if err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		if got != persistence {
			t.Errorf("%s: relpersistence %q, want %q", table, got, persistence)
		}
	}
}
