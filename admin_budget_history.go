package llmgateway

import (
	"net/http"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/internal/metering"
	"github.com/llmgateway/caddy-llm-gateway/storage"
)

// spendPeriodResponse is one budget period of a user or a key: what was
// spent from its start until its end, when the spend was reset.
type spendPeriodResponse struct {
	PeriodStart time.Time     `json:"period_start"`
	PeriodEnd   *time.Time    `json:"period_end"`
	Spend       storage.Money `json:"spend"`
}

// userBudgetHistory answers GET /v1/users/{id}/budget-history: the user's
// spend per budget period, newest first (the reset log).
func (g *Gateway) userBudgetHistory(w http.ResponseWriter, r *http.Request, id string) error {
	u, err := g.loadActiveUser(id)
	if err != nil {
		return err
	}
	_, sched, err := g.userSchedule(u)
	if err != nil {
		return err
	}
	return g.writeSpendHistory(w, r, storage.SpendOfUser, id, sched)
}

// keyBudgetHistory answers GET /v1/keys/{id}/budget-history.
func (g *Gateway) keyBudgetHistory(w http.ResponseWriter, r *http.Request, id string) error {
	k, err := g.store().GetKey(id)
	if err != nil {
		return keyError(id, err)
	}
	return g.writeSpendHistory(w, r, storage.SpendOfKey, id, keySchedule(k))
}

func (g *Gateway) writeSpendHistory(w http.ResponseWriter, r *http.Request, owner storage.SpendOwner, id string, sched metering.Schedule) error {
	_, limit, err := pagination(r)
	if err != nil {
		return err
	}
	periods, err := g.store().ListSpendPeriods(owner, id, limit)
	if err != nil {
		return err
	}
	out := make([]spendPeriodResponse, len(periods))
	for i, p := range periods {
		out[i] = spendPeriodResponse{PeriodStart: p.Start, PeriodEnd: sched.EndOf(p.Start), Spend: p.Spend}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
