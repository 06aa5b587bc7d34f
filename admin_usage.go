package llmgateway

import (
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/storage"
)

// usageResponse is a usage record as the API shows it.
type usageResponse struct {
	ID               string        `json:"id"`
	RequestID        string        `json:"request_id"`
	UserID           string        `json:"user_id"`
	APIKeyID         *string       `json:"api_key_id"`
	EndUser          *string       `json:"end_user"`
	Timestamp        time.Time     `json:"timestamp"`
	Model            string        `json:"model"`
	Provider         string        `json:"provider"`
	Endpoint         string        `json:"endpoint"`
	PromptTokens     int64         `json:"prompt_tokens"`
	CompletionTokens int64         `json:"completion_tokens"`
	TotalTokens      int64         `json:"total_tokens"`
	Cost             storage.Money `json:"cost"`
	Status           string        `json:"status"`
	StatusCode       int           `json:"status_code"`
	LatencyMS        int64         `json:"latency_ms"`
	ErrorMessage     *string       `json:"error_message"`
	UsageSource      string        `json:"usage_source"`
	// UsageExceededReservation flags a provider that reported more tokens
	// than the request allowed (ours).
	UsageExceededReservation bool `json:"usage_exceeded_reservation"`
}

func usageResponses(records []storage.UsageRecord) []usageResponse {
	out := make([]usageResponse, len(records))
	for i := range records {
		rec := &records[i]
		out[i] = usageResponse{
			ID:               rec.ID,
			RequestID:        rec.RequestID,
			UserID:           rec.UserID,
			Timestamp:        rec.Timestamp,
			Model:            rec.Model,
			Provider:         rec.Provider,
			Endpoint:         rec.Endpoint,
			PromptTokens:     rec.PromptTokens,
			CompletionTokens: rec.CompletionTokens,
			TotalTokens:      rec.TotalTokens,
			Cost:             rec.Cost,
			Status:           rec.Status,
			StatusCode:       rec.StatusCode,
			LatencyMS:        rec.LatencyMS,
			UsageSource:      rec.UsageSource,

			UsageExceededReservation: rec.ExceededReservation,
		}
		if rec.APIKeyID != "" {
			out[i].APIKeyID = &rec.APIKeyID
		}
		if rec.EndUser != "" {
			out[i].EndUser = &rec.EndUser
		}
		if rec.ErrorMessage != "" {
			out[i].ErrorMessage = &rec.ErrorMessage
		}
	}
	return out
}

// listUsage answers GET /v1/usage: records newest first, filtered by date
// range, user, key, model, end user and status.
func (g *Gateway) listUsage(w http.ResponseWriter, r *http.Request) error {
	skip, limit, err := pagination(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	var f storage.UsageFilter
	if f.Start, f.End, err = dateRange(q); err != nil {
		return err
	}
	f.UserID = q.Get("user_id")
	f.APIKeyID = q.Get("api_key_id")
	f.Model = q.Get("model")
	f.EndUser = q.Get("end_user")
	switch f.Status = q.Get("status"); f.Status {
	case "", "success", "error":
	default:
		return errValidation("Query parameter 'status' must be 'success' or 'error'")
	}
	records, err := g.store().ListUsage(f, skip, limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, usageResponses(records))
	return nil
}

// dateRange reads the start_date and end_date query parameters of the
// usage routes; zero times are absent ones.
func dateRange(q url.Values) (start, end time.Time, err error) {
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"start_date", &start}, {"end_date", &end}} {
		if v := q.Get(p.name); v != "" {
			t, ok := parseQueryTime(v)
			if !ok {
				return start, end, errValidation(fmt.Sprintf("Query parameter '%s' must be an ISO 8601 date-time or Unix seconds", p.name))
			}
			*p.dst = t
		}
	}
	if !start.IsZero() && !end.IsZero() && end.Before(start) {
		return start, end, errValidation("Query parameter 'end_date' must not be before 'start_date'")
	}
	return start, end, nil
}
