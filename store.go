package llmgateway

import (
	"context"
	"sync"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/storage"
)

// gatewayStore is what the gateway needs from persistence. The Badger
// store implements it for one Caddy instance; a database shared by several
// instances would implement it too, without touching the handlers.
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
