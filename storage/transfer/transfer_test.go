package transfer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/storage"
	"github.com/llmgateway/caddy-llm-gateway/storage/postgres"
	"github.com/llmgateway/caddy-llm-gateway/storage/postgres/pgtest"
)

func openDest(t *testing.T) *postgres.Store {
	t.Helper()
	dst, err := postgres.Open(context.Background(), postgres.Options{URL: pgtest.URL(t), Schema: pgtest.Schema(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dst.Close() })
	return dst
}

func hashOf(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// fillBadger writes a little of everything into a store at dir and closes it.
func fillBadger(t *testing.T, dir string) {
	t.Helper()
	st, err := storage.Open(storage.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	max, day := storage.Dollars(5), int64(86400)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(st.CreateBudget(&storage.Budget{BudgetID: "b1", MaxBudget: &max, BudgetDurationSec: &day, CreatedAt: now, UpdatedAt: now}))
	b1 := "b1"
	must(st.CreateUser(&storage.User{UserID: "alice", BudgetID: &b1, BudgetStartedAt: &now, CreatedAt: now, UpdatedAt: now}))
	must(st.CreateUser(&storage.User{UserID: "gone", CreatedAt: now, UpdatedAt: now}))
	must(st.DeleteUser("gone", now))
	rpm := int64(7)
	must(st.CreateKey(&storage.APIKey{ID: "k1", KeyHash: hashOf("gw-secret-1"), KeyPrefix: "gw-secre", UserID: "alice",
		CreatedAt: now, IsActive: true, RPMLimit: &rpm, AllowedModels: []string{"mock:ok"}}, nil))
	must(st.CreateKey(&storage.APIKey{ID: "k2", KeyHash: hashOf("gw-secret-2"), KeyPrefix: "gw-secre", UserID: "solo",
		CreatedAt: now, IsActive: true}, &storage.User{UserID: "solo", CreatedAt: now, UpdatedAt: now}))
	_, err = st.PutPrice(&storage.Price{ModelKey: "mock:ok", InputPricePerMillion: 1.5, OutputPricePerMillion: 3, CreatedAt: now, UpdatedAt: now})
	must(err)
	for i, rec := range []storage.UsageRecord{
		{ID: "u1", UserID: "alice", APIKeyID: "k1", Cost: storage.Dollars(0.25), UserPeriod: now, KeyPeriod: now.Add(-time.Hour)},
		{ID: "u2", UserID: "alice", APIKeyID: "k1", Cost: storage.Dollars(0.5), UserPeriod: now, KeyPeriod: now.Add(-time.Hour)},
		{ID: "u3", UserID: "solo", APIKeyID: "k2", Cost: storage.Dollars(1)}, // no budget schedule: the zero period
	} {
		rec.RequestID, rec.Model, rec.Provider, rec.Endpoint = "r", "ok", "mock", "/v1/chat/completions"
		rec.Timestamp, rec.Status, rec.StatusCode, rec.UsageSource = now.Add(time.Duration(i)*time.Second), "success", 200, "provider"
		must(st.RecordUsage(context.Background(), &rec))
	}
	must(st.Close())
}

func TestFromBadgerCopiesEverythingOnce(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	fillBadger(t, dir)
	dst := openDest(t)

	src, err := OpenBadger(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	counts, err := FromBadger(src, dst)
	if err != nil {
		t.Fatal(err)
	}
	// Spend: alice's period, k1's period, solo's and k2's zero periods.
	want := Counts{Budgets: 1, Users: 3, Keys: 2, Prices: 1, Spend: 4, Usage: 3}
	if counts != want {
		t.Fatalf("first copy: %+v, want %+v", counts, want)
	}
	again, err := FromBadger(src, dst)
	if err != nil {
		t.Fatal(err)
	}
	if again != (Counts{}) {
		t.Fatalf("second copy copied %+v, want nothing", again)
	}

	k, err := dst.GetKeyByHash(hashOf("gw-secret-1"))
	if err != nil || k.ID != "k1" || k.UserID != "alice" || *k.RPMLimit != 7 {
		t.Fatalf("key by hash: %+v, %v", k, err)
	}
	gone, err := dst.GetUser("gone")
	if err != nil || !gone.Deleted() {
		t.Fatalf("soft-deleted user: %+v, %v", gone, err)
	}
	for _, owner := range []struct {
		o  storage.SpendOwner
		id string
	}{{storage.SpendOfUser, "alice"}, {storage.SpendOfKey, "k1"}, {storage.SpendOfUser, "solo"}, {storage.SpendOfKey, "k2"}} {
		from, err := src.ListSpendPeriods(owner.o, owner.id, 10)
		if err != nil {
			t.Fatal(err)
		}
		for i := range from {
			if from[i].Start.UnixNano() == (time.Time{}).UnixNano() {
				from[i].Start = time.Time{} // the Badger store lists the zero period wrapped around
			}
		}
		to, err := dst.ListSpendPeriods(owner.o, owner.id, 10)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(from, to) || len(to) != 1 {
			t.Errorf("spend of %c/%s: copied %+v, source %+v", owner.o, owner.id, to, from)
		}
	}
	zero, err := dst.GetSpend(storage.SpendOfUser, "solo", time.Time{})
	if err != nil || zero != storage.Dollars(1) {
		t.Errorf("solo's spend in the zero period: %v, %v", zero, err)
	}
	from, err := src.ListUsage(storage.UsageFilter{}, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	to, err := dst.ListUsage(storage.UsageFilter{}, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(from, to) {
		t.Errorf("usage: copied %+v\nsource %+v", to, from)
	}
}

func TestOpenBadgerRefusesMissingAndLockedStores(t *testing.T) {
	if _, err := OpenBadger(filepath.Join(t.TempDir(), "nothing")); !errors.Is(err, ErrSourceMissing) {
		t.Errorf("missing store: %v, want ErrSourceMissing", err)
	}
	dir := t.TempDir()
	running, err := storage.Open(storage.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer running.Close()
	if _, err := OpenBadger(dir); !errors.Is(err, ErrSourceLocked) {
		t.Errorf("store in use: %v, want ErrSourceLocked", err)
	}
}
