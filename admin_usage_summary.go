package llmgateway

import (
	"net/http"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/internal/usagesum"
	"github.com/llmgateway/caddy-llm-gateway/storage"
)

// summaryBucketResponse is one row of GET /v1/usage/summary.
type summaryBucketResponse struct {
	Bucket           time.Time     `json:"bucket"`
	Group            *string       `json:"group"`
	Requests         int64         `json:"requests"`
	Errors           int64         `json:"errors"`
	PromptTokens     int64         `json:"prompt_tokens"`
	CompletionTokens int64         `json:"completion_tokens"`
	TotalTokens      int64         `json:"total_tokens"`
	Cost             storage.Money `json:"cost"`
}

// usageSummary answers GET /v1/usage/summary: totals per time bucket and
// group, from the totals the store keeps as records are written.
func (g *Gateway) usageSummary(w http.ResponseWriter, r *http.Request) error {
	q, err := summaryQuery(r)
	if err != nil {
		return err
	}
	buckets, err := g.store().SummarizeUsage(q)
	if err != nil {
		return err
	}
	out := make([]summaryBucketResponse, len(buckets))
	for i, b := range buckets {
		out[i] = summaryBucketResponse{
			Bucket: b.Start, Group: b.Group, Requests: b.Requests, Errors: b.Errors,
			PromptTokens: b.PromptTokens, CompletionTokens: b.CompletionTokens,
			TotalTokens: b.TotalTokens, Cost: storage.Money(b.Cost),
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// summaryQuery reads the query parameters of GET /v1/usage/summary; a bad
// one is a 422 naming it.
func summaryQuery(r *http.Request) (usagesum.Query, error) {
	v := r.URL.Query()
	var q usagesum.Query
	var ok bool
	if q.GroupBy, ok = usagesum.ParseGroupBy(v.Get("group_by")); !ok {
		return q, errValidation("Query parameter 'group_by' must be one of model, provider, user_id, api_key_id, end_user")
	}
	if q.Interval, ok = usagesum.ParseInterval(v.Get("interval")); !ok {
		return q, errValidation("Query parameter 'interval' must be one of hour, day, month")
	}
	var err error
	if q.Start, q.End, err = dateRange(v); err != nil {
		return q, err
	}
	q.Filter = usagesum.Filter{
		UserID:   v.Get("user_id"),
		APIKeyID: v.Get("api_key_id"),
		Model:    v.Get("model"),
		EndUser:  v.Get("end_user"),
	}
	return q, nil
}

func (s storeView) SummarizeUsage(q usagesum.Query) ([]usagesum.Bucket, error) {
	buckets, err := s.st.store.SummarizeUsage(q)
	return buckets, classify(err, "summarizing usage", "")
}
