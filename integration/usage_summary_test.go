package integration

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/internal/money"
)

// summaryRow is one row of GET /v1/usage/summary as a test reads it.
type summaryRow struct {
	Bucket           string      `json:"bucket"`
	Group            *string     `json:"group"`
	Requests         int64       `json:"requests"`
	Errors           int64       `json:"errors"`
	PromptTokens     int64       `json:"prompt_tokens"`
	CompletionTokens int64       `json:"completion_tokens"`
	TotalTokens      int64       `json:"total_tokens"`
	Cost             money.Money `json:"cost"`
}

// summaryRecord is the part of a usage record a summary counts.
type summaryRecord struct {
	ID               string      `json:"id"`
	UserID           string      `json:"user_id"`
	APIKeyID         *string     `json:"api_key_id"`
	EndUser          *string     `json:"end_user"`
	Timestamp        time.Time   `json:"timestamp"`
	Model            string      `json:"model"`
	Provider         string      `json:"provider"`
	PromptTokens     int64       `json:"prompt_tokens"`
	CompletionTokens int64       `json:"completion_tokens"`
	TotalTokens      int64       `json:"total_tokens"`
	Cost             money.Money `json:"cost"`
	Status           string      `json:"status"`
}

// summaryTraffic sends chat completions through g with several keys,
// users, models, providers and end users, some failing upstream, each
// waited for until its record is listed.
type summaryTraffic struct {
	t   *testing.T
	g   *gateway
	ids []string
}

func (s *summaryTraffic) send(key, model, user string, status int) {
	s.t.Helper()
	body := fmt.Sprintf(`{"model": %q, "messages": [{"role": "user", "content": "hi"}]`, model)
	if user != "" {
		body += fmt.Sprintf(`, "user": %q`, user)
	}
	r := expect(s.t, s.g.do("POST", "/v1/chat/completions", body+"}", bearer(key)...), status)
	s.ids = append(s.ids, r.Header.Get("X-Request-Id"))
}

// wait waits until every request sent has its usage record listed.
func (s *summaryTraffic) wait() {
	s.t.Helper()
	waitFor(s.t, "the usage records of the traffic", func() bool {
		body := s.g.adminDo("GET", "/v1/usage?limit=1000", nil).Body
		for _, id := range s.ids {
			if !bytes.Contains(body, []byte(id)) {
				return false
			}
		}
		return true
	})
}

// expectedSummaryRows computes what the summary of recs must be for the
// query params, from the records themselves.
func expectedSummaryRows(recs []summaryRecord, params url.Values) []summaryRow {
	type key struct {
		bucket string
		group  string
		named  bool
	}
	sums := map[key]*summaryRow{}
	for _, r := range recs {
		key := key{}
		apiKey, endUser := "", ""
		if r.APIKeyID != nil {
			apiKey = *r.APIKeyID
		}
		if r.EndUser != nil {
			endUser = *r.EndUser
		}
		if v := params.Get("user_id"); v != "" && v != r.UserID {
			continue
		}
		if v := params.Get("api_key_id"); v != "" && v != apiKey {
			continue
		}
		if v := params.Get("end_user"); v != "" && v != endUser {
			continue
		}
		if v := params.Get("model"); v != "" && v != r.Model && v != r.Provider+":"+r.Model {
			continue
		}
		ts := r.Timestamp.UTC()
		switch params.Get("interval") {
		case "hour":
			key.bucket = ts.Truncate(time.Hour).Format(time.RFC3339)
		case "month":
			key.bucket = time.Date(ts.Year(), ts.Month(), 1, 0, 0, 0, 0, time.UTC).Format(time.RFC3339)
		default:
			key.bucket = time.Date(ts.Year(), ts.Month(), ts.Day(), 0, 0, 0, 0, time.UTC).Format(time.RFC3339)
		}
		switch params.Get("group_by") {
		case "model":
			key.group, key.named = r.Provider+":"+r.Model, true
		case "provider":
			key.group, key.named = r.Provider, true
		case "user_id":
			key.group, key.named = r.UserID, true
		case "api_key_id":
			key.group, key.named = apiKey, apiKey != ""
		case "end_user":
			key.group, key.named = endUser, endUser != ""
		}
		row, ok := sums[key]
		if !ok {
			row = &summaryRow{Bucket: key.bucket}
			if key.named {
				row.Group = &key.group
			}
			sums[key] = row
		}
		row.Requests++
		if r.Status != "success" {
			row.Errors++
		}
		row.PromptTokens += r.PromptTokens
		row.CompletionTokens += r.CompletionTokens
		row.TotalTokens += r.TotalTokens
		row.Cost += r.Cost
	}
	out := []summaryRow{}
	for _, row := range sums {
		out = append(out, *row)
	}
	slices.SortFunc(out, func(a, b summaryRow) int {
		if c := strings.Compare(a.Bucket, b.Bucket); c != 0 {
			return c
		}
		switch {
		case a.Group == nil && b.Group == nil:
			return 0
		case a.Group == nil:
			return -1
		case b.Group == nil:
			return 1
		}
		return strings.Compare(*a.Group, *b.Group)
	})
	return out
}

// checkSummaryAgainstRecords compares every grouping and interval, and
// each filter, of GET /v1/usage/summary with the totals of the records
// GET /v1/usage lists, exactly.
func checkSummaryAgainstRecords(t *testing.T, g *gateway, wantRecords int, keyID string) {
	t.Helper()
	var recs []summaryRecord
	expect(t, g.adminDo("GET", "/v1/usage?limit=1000", nil), http.StatusOK).JSON(t, &recs)
	if len(recs) != wantRecords {
		t.Fatalf("%d usage records listed, want %d", len(recs), wantRecords)
	}
	filters := []url.Values{
		{},
		{"user_id": {"sum-alice"}},
		{"api_key_id": {keyID}},
		{"model": {"ok"}},
		{"model": {"other:big"}},
		{"end_user": {"end-1"}},
		{"user_id": {"sum-bob"}, "model": {"mock:ok"}},
		{"start_date": {recs[len(recs)-1].Timestamp.Format(time.RFC3339Nano)}, "end_date": {recs[0].Timestamp.Format(time.RFC3339Nano)}},
	}
	for _, interval := range []string{"", "hour", "day", "month"} {
		for _, group := range []string{"", "model", "provider", "user_id", "api_key_id", "end_user"} {
			for _, f := range filters {
				params := url.Values{}
				for k, v := range f {
					params[k] = v
				}
				if interval != "" {
					params.Set("interval", interval)
				}
				if group != "" {
					params.Set("group_by", group)
				}
				var got []summaryRow
				expect(t, g.adminDo("GET", "/v1/usage/summary?"+params.Encode(), nil), http.StatusOK).JSON(t, &got)
				want := expectedSummaryRows(recs, params)
				if !reflect.DeepEqual(got, want) {
					t.Errorf("GET /v1/usage/summary?%s\n got %+v\nwant %+v", params.Encode(), got, want)
				}
			}
		}
	}
}

// summaryScenario runs traffic through g, restarts it, runs more, and
// checks the summary against the records after each part.
func summaryScenario(t *testing.T, g *gateway) {
	for _, u := range []string{"sum-alice", "sum-bob"} {
		g.newUser(fmt.Sprintf(`{"user_id": %q}`, u))
	}
	alice1 := g.newKey(`{"user_id": "sum-alice"}`)
	alice2 := g.newKey(`{"user_id": "sum-alice"}`)
	bob := g.newKey(`{"user_id": "sum-bob"}`)

	tr := &summaryTraffic{t: t, g: g}
	tr.send(alice1.Key, "mock:ok", "", http.StatusOK)
	tr.send(alice1.Key, "mock:ok", "end-1", http.StatusOK)
	tr.send(alice1.Key, "other:big", "end-2", http.StatusOK)
	tr.send(alice2.Key, "other:big", "end-1", http.StatusOK)
	tr.send(alice2.Key, "mock:err-500", "", http.StatusBadGateway)
	tr.send(bob.Key, "mock:ok", "end-1", http.StatusOK)
	tr.send(masterKey, "mock:ok", "", http.StatusBadRequest) // no user: refused before any upstream, no record
	tr.ids = tr.ids[:len(tr.ids)-1]
	r := g.do("POST", "/v1/chat/completions", `{"model": "other:big", "user": "sum-bob", "messages": [{"role": "user", "content": "hi"}]}`, bearer(masterKey)...)
	expect(t, r, http.StatusOK)
	tr.ids = append(tr.ids, r.Header.Get("X-Request-Id"))
	tr.wait()
	checkSummaryAgainstRecords(t, g, 7, alice1.ID)

	g.restart()
	tr.send(alice1.Key, "mock:ok", "end-1", http.StatusOK)
	tr.send(bob.Key, "mock:err-404", "end-3", http.StatusNotFound)
	tr.send(bob.Key, "other:big", "", http.StatusOK)
	tr.wait()
	checkSummaryAgainstRecords(t, g, 10, alice1.ID)
}

// summaryProviders is the config of the providers the scenario uses: mock
// (mock:ok at 1 and 2 USD per million) and other (other:big at 3 and 7).
func summaryProviders(m *mockUpstream) string {
	return mockProvider(m) + fmt.Sprintf(`
		provider other {
			api_key {env.PROVIDER_KEY}
			base_url %s
		}
		price other:big 3 7`, m.BaseURL())
}

// TestUsageSummaryMatchesRecords: the totals of GET /v1/usage/summary, in
// every grouping and interval and under each filter, are exactly those of
// the usage records, before and after a restart (embedded store).
func TestUsageSummaryMatchesRecords(t *testing.T) {
	t.Parallel()
	mock := newMockUpstream(t)
	g := startChecked(t, gatewayConfig{Block: summaryProviders(mock)})
	summaryScenario(t, g)
}

// TestPostgresUsageSummaryMatchesRecords is the same in PostgreSQL mode.
func TestPostgresUsageSummaryMatchesRecords(t *testing.T) {
	t.Parallel()
	mock := newMockUpstream(t)
	dbURL, _ := testDatabase(t)
	g := startChecked(t, gatewayConfig{
		Env:   []string{"GATEWAY_DATABASE_URL=" + dbURL},
		Block: "database_url {env.GATEWAY_DATABASE_URL}\n\t\t" + summaryProviders(mock),
	})
	summaryScenario(t, g)
}

// TestUsageSummaryParameters: the master key only; a bad group_by,
// interval or date is a 422 naming the parameter.
func TestUsageSummaryParameters(t *testing.T) {
	t.Parallel()
	mock := newMockUpstream(t)
	g := startChecked(t, gatewayConfig{Block: mockProvider(mock)})
	k := g.newKey(`{}`)
	expectError(t, g.do("GET", "/v1/usage/summary", nil, bearer(k.Key)...), http.StatusUnauthorized, "Invalid master key")
	expectError(t, g.do("GET", "/v1/usage/summary", nil), http.StatusUnauthorized, "Missing X-AnyLLM-Key or Authorization header")
	for _, p := range []struct{ query, field string }{
		{"group_by=team", "group_by"},
		{"interval=week", "interval"},
		{"start_date=yesterday", "start_date"},
		{"end_date=2025-13-01", "end_date"},
		{"start_date=2025-10-02&end_date=2025-10-01", "end_date"},
	} {
		expectValidation(t, g.adminDo("GET", "/v1/usage/summary?"+p.query, nil), p.field)
	}
	var rows []summaryRow
	expect(t, g.adminDo("GET", "/v1/usage/summary?group_by=model&interval=month", nil), http.StatusOK).JSON(t, &rows)
	if rows == nil || len(rows) != 0 {
		t.Fatalf("summary of a gateway without traffic = %#v, want []", rows)
	}
	r := g.adminDo("GET", "/v1/usage/summary", nil)
	if !bytes.Equal(bytes.TrimSpace(r.Body), []byte("[]")) {
		t.Fatalf("summary body = %q, want []", r.Body)
	}
}
