package llmgateway

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/internal/metering"
	"github.com/llmgateway/caddy-llm-gateway/internal/usagesum"
	"github.com/llmgateway/caddy-llm-gateway/storage"
)

// gatewayStore is what the gateway needs from persistence: users, keys,
// budgets, prices, usage records and settled spend. The Badger store
// implements it for one Caddy instance. Budgets and rate limits are not
// decided here but by the metering.Meter in gatewayState, the seam for a
// store shared by several instances: metering.Memory trusts this process's
// memory once it has loaded a balance, and keeps rate windows in-process,
// so such a store must bring its own Meter, deciding in the database.
type gatewayStore interface {
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

var _ gatewayStore = (*storage.Store)(nil)

// probeInterval is how often at most a store that failed a write is
// probed again.
const probeInterval = time.Second

// writeHealth remembers that a store write failed. Until a probe write
// succeeds again, inference is refused: serving a request that cannot be
// billed would lose money.
type writeHealth struct {
	mu        sync.Mutex
	failing   bool
	lastProbe time.Time
}

// failed marks the store as failing writes.
func (h *writeHealth) failed() {
	h.mu.Lock()
	h.failing = true
	h.mu.Unlock()
}

// writable reports whether the store takes writes, probing a failing store
// at most once per probeInterval.
func (h *writeHealth) writable(s gatewayStore, now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.failing {
		return true
	}
	if now.Sub(h.lastProbe) < probeInterval {
		return false
	}
	h.lastProbe = now
	if s.Probe() != nil {
		return false
	}
	h.failing = false
	return true
}

// storeView is the root package's view of the store, what the handlers
// call. It decides in one place what a store error means for the client:
// the store's own answers (storage.ErrNotFound, ErrExists, ErrUserDeleted,
// ErrBudgetMissing) and an *apiError returned by an update function come
// back as they are, for the handler to word; anything else is a store
// failure, returned as a storeError (503 Database unavailable, and the
// write health is marked failing when it is answered, or at once for a
// usage record). Every admin write invalidates the read caches after it,
// so the request path never authenticates against stale data.
type storeView struct{ st *gatewayState }

// store is the gateway's view of its store.
func (g *Gateway) store() storeView { return storeView{g.state} }

// classify turns err into what a handler returns: nil, one of the store's
// answers, an *apiError, or a storeError naming what was being done.
func classify(err error, doing, id string) error {
	if err == nil {
		return nil
	}
	var ae *apiError
	switch {
	case errors.As(err, &ae),
		errors.Is(err, storage.ErrNotFound),
		errors.Is(err, storage.ErrExists),
		errors.Is(err, storage.ErrUserDeleted),
		errors.Is(err, storage.ErrBudgetMissing):
		return err
	case id == "":
		return storeError{fmt.Errorf("%s: %w", doing, err)}
	}
	return storeError{fmt.Errorf("%s %s: %w", doing, id, err)}
}

// wrote invalidates the read caches after a write, whatever its outcome:
// a failed write may still have been applied.
func (s storeView) wrote() { s.st.cache.invalidate() }

func (s storeView) CreateUser(u *storage.User) error {
	defer s.wrote()
	return classify(s.st.store.CreateUser(u), "creating user", u.UserID)
}

func (s storeView) GetUser(id string) (*storage.User, error) {
	u, err := s.st.store.GetUser(id)
	return u, classify(err, "loading user", id)
}

func (s storeView) ListUsers(skip, limit int) ([]storage.User, error) {
	users, err := s.st.store.ListUsers(skip, limit)
	return users, classify(err, "listing users", "")
}

func (s storeView) UpdateUser(id string, fn func(*storage.User) error) (*storage.User, error) {
	defer s.wrote()
	u, err := s.st.store.UpdateUser(id, fn)
	return u, classify(err, "updating user", id)
}

func (s storeView) DeleteUser(id string, now time.Time) error {
	defer s.wrote()
	return classify(s.st.store.DeleteUser(id, now), "deleting user", id)
}

func (s storeView) CreateKey(k *storage.APIKey, newUser *storage.User) error {
	defer s.wrote()
	return classify(s.st.store.CreateKey(k, newUser), "creating key", k.ID)
}

func (s storeView) GetKey(id string) (*storage.APIKey, error) {
	k, err := s.st.store.GetKey(id)
	return k, classify(err, "loading key", id)
}

// GetKeyByHash finds a key by the hex SHA-256 of its secret (never logged).
func (s storeView) GetKeyByHash(hash string) (*storage.APIKey, error) {
	k, err := s.st.store.GetKeyByHash(hash)
	return k, classify(err, "looking up key", "")
}

func (s storeView) ListKeys(skip, limit int) ([]storage.APIKey, error) {
	keys, err := s.st.store.ListKeys(skip, limit)
	return keys, classify(err, "listing keys", "")
}

func (s storeView) UpdateKey(id string, fn func(*storage.APIKey) error) (*storage.APIKey, error) {
	defer s.wrote()
	k, err := s.st.store.UpdateKey(id, fn)
	return k, classify(err, "updating key", id)
}

func (s storeView) DeleteKey(id string) error {
	defer s.wrote()
	return classify(s.st.store.DeleteKey(id), "deleting key", id)
}

func (s storeView) CreateBudget(b *storage.Budget) error {
	defer s.wrote()
	return classify(s.st.store.CreateBudget(b), "creating budget", b.BudgetID)
}

func (s storeView) GetBudget(id string) (*storage.Budget, error) {
	b, err := s.st.store.GetBudget(id)
	return b, classify(err, "loading budget", id)
}

func (s storeView) ListBudgets(skip, limit int) ([]storage.Budget, error) {
	budgets, err := s.st.store.ListBudgets(skip, limit)
	return budgets, classify(err, "listing budgets", "")
}

func (s storeView) UpdateBudget(id string, fn func(*storage.Budget) error) (*storage.Budget, error) {
	defer s.wrote()
	b, err := s.st.store.UpdateBudget(id, fn)
	return b, classify(err, "updating budget", id)
}

func (s storeView) DeleteBudget(id string, now time.Time) error {
	defer s.wrote()
	return classify(s.st.store.DeleteBudget(id, now), "deleting budget", id)
}

func (s storeView) PutPrice(p *storage.Price) (*storage.Price, error) {
	defer s.wrote()
	stored, err := s.st.store.PutPrice(p)
	return stored, classify(err, "storing price", p.ModelKey)
}

func (s storeView) GetPrice(modelKey string) (*storage.Price, error) {
	p, err := s.st.store.GetPrice(modelKey)
	return p, classify(err, "loading price", modelKey)
}

func (s storeView) ListPrices(skip, limit int) ([]storage.Price, error) {
	prices, err := s.st.store.ListPrices(skip, limit)
	return prices, classify(err, "listing prices", "")
}

func (s storeView) DeletePrice(modelKey string) error {
	defer s.wrote()
	return classify(s.st.store.DeletePrice(modelKey), "deleting price", modelKey)
}

// RecordUsage commits a usage record; every failure is a store failure.
// It marks the write health failing here, not when it is answered: a
// stream's record fails after its response has begun, and no error answer
// follows.
func (s storeView) RecordUsage(ctx context.Context, rec *storage.UsageRecord) error {
	return s.recorded(rec, s.st.store.RecordUsage(ctx, rec))
}

// SettleUsage commits a usage record and settles the hold it bills, through
// the meter (usageMeter.SettleUsage), failing as RecordUsage does.
func (s storeView) SettleUsage(ctx context.Context, h *metering.Hold, rec *storage.UsageRecord) error {
	return s.recorded(rec, s.st.meter.SettleUsage(ctx, h, rec))
}

// recorded classifies the outcome of writing rec: every failure is a store
// failure.
func (s storeView) recorded(rec *storage.UsageRecord, err error) error {
	if err != nil {
		s.st.health.failed()
		return storeError{fmt.Errorf("recording usage of request %s: %w", rec.RequestID, err)}
	}
	return nil
}

func (s storeView) ListUsage(f storage.UsageFilter, skip, limit int) ([]storage.UsageRecord, error) {
	records, err := s.st.store.ListUsage(f, skip, limit)
	return records, classify(err, "listing usage", "")
}

func (s storeView) ListSpendPeriods(owner storage.SpendOwner, id string, limit int) ([]storage.SpendPeriod, error) {
	periods, err := s.st.store.ListSpendPeriods(owner, id, limit)
	return periods, classify(err, "listing spend periods of", id)
}
