package llmgateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/llmgateway/caddy-llm-gateway/internal/spool"
	"github.com/llmgateway/caddy-llm-gateway/storage"
	"github.com/llmgateway/caddy-llm-gateway/storage/postgres"
)

const (
	// spoolMinBackoff and spoolMaxBackoff bound the wait between attempts
	// to deliver the spool while the database stays unreachable.
	spoolMinBackoff = 100 * time.Millisecond
	spoolMaxBackoff = 5 * time.Second
	// spoolDeliverTimeout bounds the delivery of one spooled settlement.
	spoolDeliverTimeout = 10 * time.Second
)

// spooledSettlement is a settlement written to the spool while the
// database was unreachable: the usage record, and the hold it releases
// with the tokens the request used. Delivering it again is harmless: the
// database skips a record id it has, charge and all.
type spooledSettlement struct {
	Record *storage.UsageRecord `json:"record"`
	HoldID string               `json:"hold_id,omitempty"`
	Tokens int64                `json:"tokens"`
}

// spoolable reports whether a failed settlement may be spooled: the
// database was unreachable, or did not answer in time (the write may have
// been committed; the redelivery is then skipped), or the store is
// closing. Any other error refused the record itself.
func spoolable(err error) bool {
	return postgres.IsUnavailable(err) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, context.Canceled) || errors.Is(err, storage.ErrClosed)
}

// spoolSettlement writes st durably to the local spool, for the
// deliverer to commit once the database is back. The hold stays held
// meanwhile (its lease renewed): the request's cost counts as reserved
// until it counts as spent.
func (m *pgMeter) spoolSettlement(st postgres.Settlement, rec *storage.UsageRecord) error {
	payload, err := json.Marshal(spooledSettlement{Record: rec, HoldID: st.HoldID, Tokens: st.Tokens})
	if err != nil {
		return fmt.Errorf("encoding usage record %s for the spool: %w", rec.ID, err)
	}
	if err := m.spool.Put(payload); err != nil {
		return fmt.Errorf("spooling usage record %s: %w", rec.ID, err)
	}
	gatewayMetrics.spooled.Inc()
	m.logger.Warn("database unavailable: usage record spooled to local disk, to be delivered once it is back",
		zap.String("request_id", rec.RequestID), zap.String("record_id", rec.ID), zap.String("spool", m.spool.Dir()))
	return nil
}

// deliverSpool commits the spooled settlements once the database takes
// them, until ctx ends.
func (m *pgMeter) deliverSpool(ctx context.Context) {
	m.spool.Run(ctx, spool.Delivery{
		Deliver: m.deliverSpooled,
		Delivered: func(n, left int) {
			gatewayMetrics.spoolDelivered.Add(float64(n))
			m.logger.Warn("spooled usage records delivered to the database",
				zap.Int("delivered", n), zap.Int("still_spooled", left))
		},
		Failed: func(err error) {
			m.logger.Warn("delivering spooled usage records failed; retrying", zap.Error(err))
		},
		MinBackoff: spoolMinBackoff,
		MaxBackoff: spoolMaxBackoff,
	})
}

// deliverSpooled commits one spooled settlement.
func (m *pgMeter) deliverSpooled(ctx context.Context, payload []byte) error {
	var s spooledSettlement
	if err := json.Unmarshal(payload, &s); err != nil {
		return fmt.Errorf("decoding a spooled settlement: %w", err)
	}
	if s.Record == nil {
		return errors.New("a spooled settlement without a record")
	}
	ctx, cancel := context.WithTimeout(ctx, spoolDeliverTimeout)
	defer cancel()
	return m.store.Settle(ctx, postgres.Settlement{
		Records: []*storage.UsageRecord{s.Record},
		HoldID:  s.HoldID,
		Tokens:  s.Tokens,
		Durable: true, // the spool deletes it once delivered
	})
}
