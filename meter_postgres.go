package llmgateway

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"sync"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/llmgateway/caddy-llm-gateway/internal/metering"
	"github.com/llmgateway/caddy-llm-gateway/internal/money"
	"github.com/llmgateway/caddy-llm-gateway/internal/spool"
	"github.com/llmgateway/caddy-llm-gateway/storage"
	"github.com/llmgateway/caddy-llm-gateway/storage/postgres"
)

// defaultLeaseLength is how long a hold of an instance lives in the
// database unless renewed: an instance that dies frees its holds this long
// after its last renewal at most.
const defaultLeaseLength = 30 * time.Second

// testLeaseEnv names the environment variable through which the integration
// tests shorten the lease (a Go duration) to watch a stream outlive several
// leases. It is a test knob, not configuration: no document names it.
const testLeaseEnv = "LLM_GATEWAY_TEST_LEASE_LENGTH"

// leaseLength is the lease of this process's holds: defaultLeaseLength
// unless testLeaseEnv holds a positive duration.
var leaseLength = leaseLengthOf(os.Getenv(testLeaseEnv))

func leaseLengthOf(v string) time.Duration {
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return d
	}
	return defaultLeaseLength
}

// releaseTimeout bounds one release of a hold.
const releaseTimeout = 5 * time.Second

// pgMeter is the metering.Meter of an instance sharing a PostgreSQL store
// with others: every decision is one atomic Admit in the database, and
// what a request holds is released in the database, with its usage record
// when it has one (SettleUsage). It keeps no balance in memory: only the
// ids of its live holds, so that settling twice does nothing, and the ids
// of holds whose release failed, retried by the lease loop.
type pgMeter struct {
	store    *postgres.Store
	instance string
	logger   *zap.Logger
	spool    *spool.Spool // nil: a failed settlement is an error (tests)

	mu      sync.Mutex
	live    map[string]struct{}
	pending map[string]struct{} // release failed; retried
}

func newPGMeter(store *postgres.Store, instance string, logger *zap.Logger) *pgMeter {
	return &pgMeter{
		store:    store,
		instance: instance,
		logger:   logger,
		live:     make(map[string]struct{}),
		pending:  make(map[string]struct{}),
	}
}

// Admit implements metering.Meter.
func (m *pgMeter) Admit(ctx context.Context, req metering.Request) (*metering.Hold, error) {
	id, err := uuid.NewRandom()
	if err != nil {
		return nil, fmt.Errorf("making a hold id: %w", err)
	}
	preq := postgres.AdmitRequest{
		HoldID:     id.String(),
		Instance:   m.instance,
		Now:        req.Now,
		LeaseUntil: req.Now.Add(leaseLength),
		Cost:       req.Cost,
		Budgets:    make([]postgres.AdmitBudget, len(req.Budgets)),
		Rates:      make([]postgres.AdmitRate, len(req.Rates)),
		Tokens:     req.Tokens,
		Unpriced:   req.Unpriced,
	}
	for i, b := range req.Budgets {
		preq.Budgets[i] = postgres.AdmitBudget{Account: pgAccount(b.Account), Period: b.Period, Max: b.Max}
	}
	for i, r := range req.Rates {
		preq.Rates[i] = postgres.AdmitRate{Account: pgAccount(r.Account), RPM: r.RPM, TPM: r.TPM}
	}
	adm, err := m.store.Admit(ctx, preq)
	var budgetRefusal *postgres.BudgetRefusal
	var rateRefusal *postgres.RateRefusal
	switch {
	case errors.As(err, &rateRefusal):
		return nil, &metering.RateRefusal{RetryAfter: rateRefusal.RetryAt.Sub(req.Now)}
	case errors.As(err, &budgetRefusal):
		return nil, budgetRefusalOf(req, budgetRefusal)
	case err != nil:
		return nil, fmt.Errorf("admitting request: %w", err)
	}
	h := &metering.Hold{
		ID:         adm.HoldID,
		Cost:       req.Cost,
		Charges:    make([]metering.Charge, len(req.Budgets)),
		RateStatus: rateStatusOf(req.Rates, adm.Windows),
	}
	for i, b := range req.Budgets {
		h.Charges[i] = metering.Charge{Account: b.Account, Period: b.Period}
	}
	m.mu.Lock()
	m.live[h.ID] = struct{}{}
	m.mu.Unlock()
	return h, nil
}

// budgetRefusalOf words the database's refusal as the in-memory meter's.
func budgetRefusalOf(req metering.Request, r *postgres.BudgetRefusal) *metering.BudgetRefusal {
	b := req.Budgets[r.Index]
	var out *metering.BudgetRefusal
	if r.Unpriced {
		out = &metering.BudgetRefusal{Reason: metering.Unpriced, Account: b.Account, Max: *b.Max, Resets: b.Resets}
	} else {
		out = metering.Refuse(b, r.Spent, r.Reserved, req.Cost)
	}
	out.RateStatus = rateStatusOf(req.Rates, r.Windows)
	return out
}

// rateStatusOf is the most constraining requests-per-minute limit after an
// admission, as the in-memory limiter reports it.
func rateStatusOf(rates []metering.Rate, windows []postgres.RateWindow) metering.RateStatus {
	status := metering.RateStatus{Remaining: math.MaxInt64}
	for i, r := range rates {
		if r.RPM <= 0 || i >= len(windows) {
			continue
		}
		if left := r.RPM - windows[i].Count; left < status.Remaining {
			status = metering.RateStatus{Limit: r.RPM, Remaining: left, Reset: windows[i].Oldest.Add(metering.RateWindow)}
		}
	}
	if status.Limit == 0 {
		return metering.RateStatus{}
	}
	return status
}

func pgAccount(a metering.Account) postgres.Account {
	owner := storage.SpendOfUser
	if a.Owner == metering.OwnerKey {
		owner = storage.SpendOfKey
	}
	return postgres.Account{Owner: owner, ID: a.ID}
}

// take removes h from the live holds, reporting whether it was live.
func (m *pgMeter) take(h *metering.Hold) bool {
	if h == nil {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.live[h.ID]; !ok {
		return false
	}
	delete(m.live, h.ID)
	return true
}

// Settle implements metering.Meter. Without a usage record it can only
// release the hold, with tokens as its rate-limit entries' count: a cost
// is charged by the record, which SettleUsage writes with the release.
func (m *pgMeter) Settle(h *metering.Hold, _ money.Money, tokens int64) {
	if !m.take(h) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
	defer cancel()
	if err := m.store.Settle(ctx, postgres.Settlement{HoldID: h.ID, Tokens: tokens}); err != nil {
		m.releaseLater(h.ID, err)
	}
}

// SettleUsage implements usageMeter: it commits rec (its cost charged to
// its periods) and the release of h, in one batched write; a settled or
// nil h leaves only the record to write. When the database is unreachable, the settlement is
// spooled to local disk instead (see spoolSettlement); when the write
// fails otherwise, the hold is released later.
func (m *pgMeter) SettleUsage(ctx context.Context, h *metering.Hold, rec *storage.UsageRecord) error {
	st := postgres.Settlement{Records: []*storage.UsageRecord{rec}, Tokens: rec.TotalTokens}
	if m.take(h) {
		st.HoldID = h.ID
	}
	err := m.store.Settle(ctx, st)
	if err != nil && spoolable(err) && m.spool != nil {
		serr := m.spoolSettlement(st, rec)
		if serr == nil {
			return nil
		}
		err = errors.Join(err, serr)
	}
	if err != nil && st.HoldID != "" {
		m.releaseLater(st.HoldID, err)
	}
	return err
}

func (m *pgMeter) releaseLater(id string, err error) {
	m.logger.Warn("releasing a budget hold failed; retrying", zap.String("hold_id", id), zap.Error(err))
	m.mu.Lock()
	m.pending[id] = struct{}{}
	m.mu.Unlock()
}

// retryReleases releases the holds whose release failed.
func (m *pgMeter) retryReleases(ctx context.Context) {
	m.mu.Lock()
	ids := make([]string, 0, len(m.pending))
	for id := range m.pending {
		ids = append(ids, id)
	}
	m.mu.Unlock()
	for _, id := range ids {
		rctx, cancel := context.WithTimeout(ctx, releaseTimeout)
		err := m.store.Release(rctx, id)
		cancel()
		if err != nil {
			return // still down: the next round retries
		}
		m.mu.Lock()
		delete(m.pending, id)
		m.mu.Unlock()
	}
}

// Spent implements metering.Meter: the settled spend, from the database.
func (m *pgMeter) Spent(_ context.Context, acct metering.Account, period time.Time) (money.Money, error) {
	a := pgAccount(acct)
	return m.store.GetSpend(a.Owner, a.ID, period)
}

// Forget implements metering.Meter: the meter keeps nothing per account.
func (m *pgMeter) Forget(metering.Account) {}

var _ metering.Meter = (*pgMeter)(nil)
