package postgres

import (
	"context"
	"fmt"
	"testing"

	"github.com/llmgateway/caddy-llm-gateway/storage"
)

// TestSettlementCommitsWithTheStoresDurability reads synchronous_commit as
// the committing transactions see it, from AFTER triggers (which run at the
// end of their statement, inside its transaction, where PostgreSQL reads
// the setting when it commits): a settlement under DurabilityOS commits
// with it off, one under DurabilityFsync, a Durable one and an admin write
// with the database's own setting, and the setting never outlives the
// settlement's transaction on its connection (the pool has one).
func TestSettlementCommitsWithTheStoresDurability(t *testing.T) {
	schema := newSchema(t)
	s, err := Open(context.Background(), Options{URL: testDatabaseURL(t), Schema: schema, MaxConns: 1})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	exec := func(sql string) {
		t.Helper()
		if _, err := s.pool.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec(`CREATE TABLE commit_settings (n serial, tbl text, setting text)`)
	exec(`CREATE FUNCTION note_commit_setting() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			INSERT INTO commit_settings (tbl, setting) VALUES (TG_TABLE_NAME, current_setting('synchronous_commit'));
			RETURN NULL;
		END $$`)
	for _, tbl := range []string{"usage_records", "users"} {
		exec(fmt.Sprintf(`CREATE TRIGGER note_commit_setting AFTER INSERT ON %s
			FOR EACH STATEMENT EXECUTE FUNCTION note_commit_setting()`, tbl))
	}
	var dbSetting string
	if err := s.pool.QueryRow(ctx, `SELECT current_setting('synchronous_commit')`).Scan(&dbSetting); err != nil {
		t.Fatal(err)
	}
	if dbSetting == "off" {
		t.Skip("the test database runs with synchronous_commit off: nothing to tell apart")
	}
	if err := s.CreateUser(&storage.User{UserID: alice.ID}); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}

	settle(t, s, Settlement{Records: []*storage.UsageRecord{usage("os", storage.Dollars(0.1))}, Tokens: -1})
	if err := s.CreateUser(&storage.User{UserID: "after-os"}); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	settle(t, s, Settlement{Records: []*storage.UsageRecord{usage("durable", storage.Dollars(0.1))}, Tokens: -1, Durable: true})
	s.SetDurability(storage.DurabilityFsync)
	settle(t, s, Settlement{Records: []*storage.UsageRecord{usage("fsync", storage.Dollars(0.1))}, Tokens: -1})

	rows, err := s.pool.Query(ctx, `SELECT tbl || ' ' || setting FROM commit_settings ORDER BY n`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"users " + dbSetting,         // alice, before any settlement
		"usage_records off",          // DurabilityOS, the default
		"users " + dbSetting,         // an admin write on the same connection after it
		"usage_records " + dbSetting, // Durable
		"usage_records " + dbSetting, // DurabilityFsync
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("synchronous_commit seen by the commits:\n got %q\nwant %q", got, want)
	}
}
