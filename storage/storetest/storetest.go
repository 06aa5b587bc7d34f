// Package storetest is the conformance suite of the gateway's stores: the
// semantics the root package relies on, checked the same way against the
// embedded Badger store and the PostgreSQL store. A store passes when
// Run passes against it, with -race.
package storetest

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/internal/usagesum"
	"github.com/llmgateway/caddy-llm-gateway/storage"
)

// Store is what the gateway needs from persistence: the method set of the
// root package's gatewayStore.
type Store interface {
	Ping() error
	Probe() error
	Close() error

	CreateUser(u *storage.User) error
	GetUser(id string) (*storage.User, error)
	ListUsers(skip, limit int) ([]storage.User, error)
	UpdateUser(id string, fn func(*storage.User) error) (*storage.User, error)
	DeleteUser(id string, now time.Time) error

	CreateKey(k *storage.APIKey, newUser *storage.User) error
	GetKey(id string) (*storage.APIKey, error)
	GetKeyByHash(hash string) (*storage.APIKey, error)
	ListKeys(skip, limit int) ([]storage.APIKey, error)
	UpdateKey(id string, fn func(*storage.APIKey) error) (*storage.APIKey, error)
	DeleteKey(id string) error
	TouchKey(id string, t time.Time) error

	CreateBudget(b *storage.Budget) error
	GetBudget(id string) (*storage.Budget, error)
	ListBudgets(skip, limit int) ([]storage.Budget, error)
	UpdateBudget(id string, fn func(*storage.Budget) error) (*storage.Budget, error)
	DeleteBudget(id string, now time.Time) error

	PutPrice(p *storage.Price) (*storage.Price, error)
	GetPrice(modelKey string) (*storage.Price, error)
	ListPrices(skip, limit int) ([]storage.Price, error)
	DeletePrice(modelKey string) error

	RecordUsage(ctx context.Context, rec *storage.UsageRecord) error
	ListUsage(f storage.UsageFilter, skip, limit int) ([]storage.UsageRecord, error)
	GetSpend(owner storage.SpendOwner, id string, start time.Time) (storage.Money, error)
	ListSpendPeriods(owner storage.SpendOwner, id string, limit int) ([]storage.SpendPeriod, error)
	SummarizeUsage(q usagesum.Query) ([]usagesum.Bucket, error)
}

var _ Store = (*storage.Store)(nil)

// Run runs the suite. open returns a new, empty store for one test; the
// suite closes it (open may also register its own cleanup). Subtests run
// in parallel.
func Run(t *testing.T, open func(t *testing.T) Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s Store)
	}{
		{"UserLifecycle", testUserLifecycle},
		{"CreateUserRevivesDeletedUser", testCreateUserRevivesDeletedUser},
		{"ListUsersPagesActiveUsersInIDOrder", testListUsers},
		{"UpdateUser", testUpdateUser},
		{"UpdateUserConcurrentIncrementsAreNotLost", testUpdateUserConcurrent},
		{"DeleteUserDeactivatesItsKeys", testDeleteUserDeactivatesKeys},
		{"KeyRoundTripsEveryField", testKeyRoundTrip},
		{"CreateKeyChecksItsOwner", testCreateKeyOwner},
		{"KeyRotationMovesTheHashLookup", testKeyRotation},
		{"UpdateKeyChecksNewAndReactivatedOwners", testUpdateKeyOwner},
		{"DeleteKeyKeepsUsageAndDropsSpend", testDeleteKey},
		{"TouchKeyNeverMovesBackwards", testTouchKey},
		{"ListKeysPagesAllKeysInIDOrder", testListKeys},
		{"BudgetLifecycle", testBudgetLifecycle},
		{"UsersNeedAnExistingBudget", testUsersNeedBudget},
		{"DeleteBudgetClearsItsUsers", testDeleteBudgetClearsUsers},
		{"Prices", testPrices},
		{"UsageFiltersAndOrder", testUsageFilters},
		{"UsagePagination", testUsagePagination},
		{"UsageRoundTripsEveryField", testUsageRoundTrip},
		{"RecordUsageRejectsInvalidRecords", testRecordUsageRejects},
		{"RedeliveredUsageIsListedOnce", testRedeliveredUsage},
		{"SpendIsKeptPerPeriod", testSpendPerPeriod},
		{"ConcurrentUsageSumsExactly", testConcurrentUsage},
		{"KeysCreatedDuringUserDeletionDoNotSurviveActive", testKeysCreatedDuringUserDeletion},
		{"KeyReactivationRacingUserDeletion", testKeyReactivationRacingDeletion},
		{"BudgetAssignmentRacingBudgetDeletion", testBudgetAssignmentRacingDeletion},
		{"PingProbeAndClose", testPingProbeClose},
		{"SummaryMatchesRecords", testSummaryMatchesRecords},
		{"SummaryOfEmptyStore", testSummaryOfEmptyStore},
		{"SummaryCountsRedeliveryAsSpendDoes", testSummaryCountsRedeliveryAsSpendDoes},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			t.Cleanup(func() { _ = s.Close() })
			tc.fn(t, s)
		})
	}
}

// T0 is the suite's reference time. Times are whole microseconds, the
// precision PostgreSQL keeps.
var T0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// at returns T0 plus d.
func at(d time.Duration) time.Time { return T0.Add(d) }

func ptr[T any](v T) *T { return &v }

var idCounter atomic.Int64

// newID returns an id that sorts after every id returned before, as the
// UUIDv7 ids the gateway uses do.
func newID(prefix string) string {
	return fmt.Sprintf("%s-%012d", prefix, idCounter.Add(1))
}

func mustCreateUser(t *testing.T, s Store, id string) *storage.User {
	t.Helper()
	u := &storage.User{UserID: id, CreatedAt: T0, UpdatedAt: T0}
	if err := s.CreateUser(u); err != nil {
		t.Fatalf("CreateUser(%s): %v", id, err)
	}
	return u
}

func newKey(userID string) *storage.APIKey {
	id := newID("key")
	return &storage.APIKey{ID: id, KeyHash: "hash-" + id, KeyPrefix: "gw-abcde", UserID: userID, CreatedAt: T0, IsActive: true}
}

func mustCreateKey(t *testing.T, s Store, userID string) *storage.APIKey {
	t.Helper()
	k := newKey(userID)
	if err := s.CreateKey(k, nil); err != nil {
		t.Fatalf("CreateKey for %s: %v", userID, err)
	}
	return k
}

func mustCreateBudget(t *testing.T, s Store, max *storage.Money) *storage.Budget {
	t.Helper()
	b := &storage.Budget{BudgetID: newID("budget"), MaxBudget: max, CreatedAt: T0, UpdatedAt: T0}
	if err := s.CreateBudget(b); err != nil {
		t.Fatalf("CreateBudget: %v", err)
	}
	return b
}

func mustRecord(t *testing.T, s Store, rec *storage.UsageRecord) {
	t.Helper()
	if err := s.RecordUsage(context.Background(), rec); err != nil {
		t.Fatalf("RecordUsage(%s): %v", rec.ID, err)
	}
}

// record returns a minimal valid usage record.
func record(userID, keyID string, ts time.Time, cost storage.Money) *storage.UsageRecord {
	return &storage.UsageRecord{
		ID: newID("usage"), RequestID: newID("req"), UserID: userID, APIKeyID: keyID,
		Timestamp: ts, Model: "gpt-4o-mini", Provider: "openai", Endpoint: "/v1/chat/completions",
		Cost: cost, Status: "success", StatusCode: 200, UsageSource: "provider",
	}
}

// ids returns the ids of users, keys, budgets or records, in order.
func ids[T any](list []T, id func(T) string) []string {
	out := make([]string, len(list))
	for i, v := range list {
		out[i] = id(v)
	}
	return out
}

func userID(u storage.User) string         { return u.UserID }
func keyID(k storage.APIKey) string        { return k.ID }
func budgetID(b storage.Budget) string     { return b.BudgetID }
func usageID(r storage.UsageRecord) string { return r.ID }
func modelKey(p storage.Price) string      { return p.ModelKey }
