package postgres

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/storage"
)

// A write through one instance reaches another's Listen, once committed;
// a lost listening connection comes back by itself with a flush-all
// change first; Close stops Listen.
func TestChangesReachOtherInstances(t *testing.T) {
	writer := openTestStore(t)
	reader, err := Open(context.Background(), Options{URL: testDatabaseURL(t), Schema: writer.schema})
	if err != nil {
		t.Fatal(err)
	}
	changes := make(chan Change, 64)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		reader.Listen(context.Background(), func(c Change) { changes <- c })
	}()
	next := func() Change {
		t.Helper()
		select {
		case c := <-changes:
			return c
		case <-time.After(10 * time.Second):
			t.Fatal("no change notification within 10 s")
			return Change{}
		}
	}
	expect := func(want Change) {
		t.Helper()
		if got := next(); !reflect.DeepEqual(got, want) {
			t.Fatalf("change = %+v, want %+v", got, want)
		}
	}
	expect(Change{}) // listening

	if err := writer.CreateUser(&storage.User{UserID: "alice"}); err != nil {
		t.Fatal(err)
	}
	expect(Change{Table: "users", ID: "alice"})
	k := &storage.APIKey{ID: "k1", KeyHash: "hash-1", KeyPrefix: "gw-", UserID: "alice", IsActive: true}
	if err := writer.CreateKey(k, nil); err != nil {
		t.Fatal(err)
	}
	expect(Change{Table: "api_keys", ID: "k1", KeyHashes: []string{"hash-1"}})
	if _, err := writer.UpdateKey("k1", func(k *storage.APIKey) error { k.KeyHash = "hash-2"; return nil }); err != nil {
		t.Fatal(err)
	}
	expect(Change{Table: "api_keys", ID: "k1", KeyHashes: []string{"hash-1", "hash-2"}})
	// A key's last use changes nothing cached: no notification, so the
	// next one is the price's.
	if err := writer.TouchKey("k1", t0); err != nil {
		t.Fatal(err)
	}
	if _, err := writer.PutPrice(&storage.Price{ModelKey: "openai:gpt-4o"}); err != nil {
		t.Fatal(err)
	}
	expect(Change{Table: "model_pricing", ID: "openai:gpt-4o"})

	// A heartbeat from either store comes after the changes committed
	// before it, and is no change.
	if _, err := writer.PutPrice(&storage.Price{ModelKey: "openai:gpt-4o-mini"}); err != nil {
		t.Fatal(err)
	}
	if err := reader.Heartbeat(context.Background(), "hb-1"); err != nil {
		t.Fatal(err)
	}
	expect(Change{Table: "model_pricing", ID: "openai:gpt-4o-mini"})
	expect(Change{Heartbeat: "hb-1"})

	// The listening connection dies; Listen reconnects and flushes.
	var killed int
	if err := writer.pool.QueryRow(context.Background(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = 'caddy-llm-gateway-listen' AND query LIKE 'LISTEN%'`).Scan(&killed); err != nil || killed == 0 {
		t.Fatalf("terminating the listener: %d, %v", killed, err)
	}
	expect(Change{})
	b := &storage.Budget{BudgetID: "b1"}
	if err := writer.CreateBudget(b); err != nil {
		t.Fatal(err)
	}
	expect(Change{Table: "budgets", ID: "b1"})

	reader.Close()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("Listen still running after Close")
	}
}
