package storage

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/google/uuid"
)

// newTestStore opens an in-memory store that is closed when the test ends.
func newTestStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(Options{InMemory: true})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// newID returns a UUIDv7 string, as the callers of the store use.
func newID(t *testing.T) string {
	t.Helper()
	id, err := uuid.NewV7()
	if err != nil {
		t.Fatalf("uuid.NewV7: %v", err)
	}
	return id.String()
}

func ptr[T any](v T) *T { return &v }

// testTime is a fixed instant, so that expected values are deterministic.
var testTime = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func mustCreateUser(t *testing.T, s *Store, id string) *User {
	t.Helper()
	u := &User{UserID: id, CreatedAt: testTime, UpdatedAt: testTime}
	if err := s.CreateUser(u); err != nil {
		t.Fatalf("CreateUser(%q): %v", id, err)
	}
	return u
}

func mustCreateKey(t *testing.T, s *Store, userID string) *APIKey {
	t.Helper()
	id := newID(t)
	k := &APIKey{
		ID:        id,
		KeyHash:   "hash-" + id,
		KeyPrefix: "sk-12345",
		UserID:    userID,
		CreatedAt: testTime,
		IsActive:  true,
	}
	if err := s.CreateKey(k, &User{UserID: userID, CreatedAt: testTime, UpdatedAt: testTime}); err != nil {
		t.Fatalf("CreateKey for %q: %v", userID, err)
	}
	return k
}

func TestPing(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	if err := s.Ping(); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func TestOpenRequiresDir(t *testing.T) {
	t.Parallel()
	if s, err := Open(Options{}); err == nil {
		s.Close()
		t.Fatal("Open without Dir succeeded")
	}
}

func TestCloseIsIdempotent(t *testing.T) {
	t.Parallel()
	s, err := Open(Options{InMemory: true})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	for i := range 3 {
		if err := s.Close(); err != nil {
			t.Fatalf("Close #%d: %v", i+1, err)
		}
	}
}

func TestOperationsAfterCloseFail(t *testing.T) {
	t.Parallel()
	s, err := Open(Options{InMemory: true})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	tests := []struct {
		name string
		call func() error
	}{
		{"Ping", s.Ping},
		{"CreateUser", func() error { return s.CreateUser(&User{UserID: "u"}) }},
		{"GetUser", func() error { _, err := s.GetUser("u"); return err }},
		{"ListUsers", func() error { _, err := s.ListUsers(0, 10); return err }},
		{"UpdateUser", func() error {
			_, err := s.UpdateUser("u", func(*User) error { return nil })
			return err
		}},
		{"DeleteUser", func() error { return s.DeleteUser("u", testTime) }},
		{"CreateKey", func() error { return s.CreateKey(&APIKey{ID: "k", KeyHash: "h", UserID: "u"}, nil) }},
		{"GetKeyByHash", func() error { _, err := s.GetKeyByHash("h"); return err }},
		{"ListKeys", func() error { _, err := s.ListKeys(0, 10); return err }},
		{"TouchKey", func() error { return s.TouchKey("k", testTime) }},
		{"DeleteBudget", func() error { return s.DeleteBudget("b", testTime) }},
		{"PutPrice", func() error { _, err := s.PutPrice(&Price{ModelKey: "openai:gpt-4o"}); return err }},
		{"SeedPrice", func() error { _, err := s.SeedPrice(&Price{ModelKey: "openai:gpt-4o"}); return err }},
		{"RecordUsage", func() error {
			return s.RecordUsage(context.Background(), &UsageRecord{ID: "r", Timestamp: testTime})
		}},
		{"ListUsage", func() error { _, err := s.ListUsage(UsageFilter{UserID: "u"}, 0, 10); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, ErrClosed) {
				t.Fatalf("got %v, want an error wrapping ErrClosed", err)
			}
		})
	}
}

func TestMapClosed(t *testing.T) {
	t.Parallel()
	if err := mapClosed(fmt.Errorf("reading: %w", badger.ErrDBClosed)); !errors.Is(err, ErrClosed) {
		t.Errorf("mapClosed(ErrDBClosed) = %v, want ErrClosed", err)
	}
	other := errors.New("other")
	if err := mapClosed(other); err != other {
		t.Errorf("mapClosed(other) = %v, want it unchanged", err)
	}
}

// TestReopenFindsEverything stores one object of each kind on disk, closes
// the store, opens it again and reads them back.
func TestReopenFindsEverything(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	opts := Options{Dir: dir, GCInterval: 10 * time.Millisecond}

	s, err := Open(opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	key := mustCreateKey(t, s, "alice")
	budget := &Budget{BudgetID: newID(t), MaxBudget: ptr(Dollars(10)), CreatedAt: testTime, UpdatedAt: testTime}
	if err := s.CreateBudget(budget); err != nil {
		t.Fatalf("CreateBudget: %v", err)
	}
	if _, err := s.PutPrice(&Price{ModelKey: "openai:gpt-4o", InputPricePerMillion: 2.5, CreatedAt: testTime}); err != nil {
		t.Fatalf("PutPrice: %v", err)
	}
	rec := &UsageRecord{
		ID: newID(t), UserID: "alice", APIKeyID: key.ID, Timestamp: testTime,
		Model: "gpt-4o", Provider: "openai", Cost: Dollars(0.75), Status: "success",
	}
	if err := s.RecordUsage(context.Background(), rec); err != nil {
		t.Fatalf("RecordUsage: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s, err = Open(opts)
	if err != nil {
		t.Fatalf("reopening: %v", err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()

	if _, err := s.GetUser("alice"); err != nil {
		t.Fatalf("GetUser: %v", err)
	}
	if spend, err := s.GetSpend(SpendOfUser, "alice", time.Time{}); err != nil || spend != Dollars(0.75) {
		t.Errorf("user spend = %v, %v; want 0.75", spend, err)
	}
	k, err := s.GetKeyByHash(key.KeyHash)
	if err != nil {
		t.Fatalf("GetKeyByHash: %v", err)
	}
	if spend, err := s.GetSpend(SpendOfKey, key.ID, time.Time{}); k.ID != key.ID || err != nil || spend != Dollars(0.75) {
		t.Errorf("key = %+v with spend %v, %v; want id %s with spend 0.75", k, spend, err, key.ID)
	}
	if _, err := s.GetBudget(budget.BudgetID); err != nil {
		t.Errorf("GetBudget: %v", err)
	}
	if p, err := s.GetPrice("openai:gpt-4o"); err != nil || p.InputPricePerMillion != 2.5 {
		t.Errorf("GetPrice = %+v, %v", p, err)
	}
	recs, err := s.ListUsage(UsageFilter{APIKeyID: key.ID}, 0, 10)
	if err != nil {
		t.Fatalf("ListUsage: %v", err)
	}
	if len(recs) != 1 || recs[0].ID != rec.ID {
		t.Errorf("ListUsage = %+v, want the one record", recs)
	}
}

// TestCloseDrainsQueuedUsage closes a disk store while records are being
// recorded; every record whose RecordUsage succeeded must be there after
// reopening, and every other call must have failed with ErrClosed.
func TestCloseDrainsQueuedUsage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}

	const writers, perWriter = 8, 50
	var (
		mu        sync.Mutex
		committed []string
		wg        sync.WaitGroup
		someIn    = make(chan struct{}) // closed once 10 records are acknowledged
	)
	for range writers {
		wg.Go(func() {
			for range perWriter {
				rec := &UsageRecord{ID: newID(t), UserID: "u", Timestamp: time.Now(), Cost: Dollars(0.5)}
				err := s.RecordUsage(context.Background(), rec)
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("RecordUsage: %v", err)
					return
				}
				mu.Lock()
				committed = append(committed, rec.ID)
				if len(committed) == 10 {
					close(someIn)
				}
				mu.Unlock()
			}
		})
	}
	<-someIn // close while the writers are still going
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	wg.Wait()

	s, err = Open(Options{Dir: dir})
	if err != nil {
		t.Fatalf("reopening: %v", err)
	}
	defer s.Close()
	recs, err := s.ListUsage(UsageFilter{UserID: "u"}, 0, writers*perWriter+1)
	if err != nil {
		t.Fatalf("ListUsage: %v", err)
	}
	stored := make(map[string]bool, len(recs))
	for _, r := range recs {
		stored[r.ID] = true
	}
	for _, id := range committed {
		if !stored[id] {
			t.Errorf("record %s was acknowledged but is missing", id)
		}
	}
}
