package llmgateway

import (
	"context"

	"github.com/llmgateway/caddy-llm-gateway/internal/metering"
	"github.com/llmgateway/caddy-llm-gateway/storage"
)

// usageMeter is the gateway's meter: the admission decisions of a
// metering.Meter, and the one write that ends an upstream attempt. Both
// stores implement it, so billing never asks which store it runs on.
type usageMeter interface {
	metering.Meter
	// SettleUsage commits rec durably, its cost charged to the periods it
	// names, and settles h by it (its reservation replaced by rec.Cost,
	// its token estimate by rec.TotalTokens). A nil or settled h leaves
	// only the record to write: an attempt retried elsewhere leaves the
	// hold to the last attempt.
	SettleUsage(ctx context.Context, h *metering.Hold, rec *storage.UsageRecord) error
}

// memoryMeter is the meter of one instance (the Badger store): balances
// in process memory, records written to the store.
type memoryMeter struct {
	*metering.Memory
	store gatewayStore
}

// newMemoryMeter returns the in-memory meter over store, loading spend
// from it.
func newMemoryMeter(store gatewayStore) memoryMeter {
	return memoryMeter{Memory: metering.NewMemory(storeSpend{store}), store: store}
}

// SettleUsage implements usageMeter. It settles before the commit, so
// that the next request sees the real cost; the record is committed
// before it returns.
func (m memoryMeter) SettleUsage(ctx context.Context, h *metering.Hold, rec *storage.UsageRecord) error {
	m.Settle(h, rec.Cost, rec.TotalTokens)
	return m.store.RecordUsage(ctx, rec)
}

var (
	_ usageMeter = memoryMeter{}
	_ usageMeter = (*pgMeter)(nil)
)
