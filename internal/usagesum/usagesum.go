// Package usagesum is the arithmetic of usage summaries: the totals that
// GET /v1/usage/summary answers. Stores keep hourly (and daily) rows of
// totals per model, user, key and end user as records are written; this
// package says which rows a query reads, which of them a filter keeps, and
// how they roll up into the requested buckets and groups. It does no I/O.
package usagesum

import (
	"cmp"
	"slices"
	"strings"
	"time"
)

// Interval is the width of a summary's time buckets, in UTC.
type Interval string

// Intervals.
const (
	Hour  Interval = "hour"
	Day   Interval = "day"
	Month Interval = "month"
)

// ParseInterval reads the interval query parameter; empty is Day.
func ParseInterval(s string) (Interval, bool) {
	switch Interval(s) {
	case "":
		return Day, true
	case Hour, Day, Month:
		return Interval(s), true
	}
	return "", false
}

// Truncate returns the start of the bucket holding t, in UTC.
func (iv Interval) Truncate(t time.Time) time.Time {
	t = t.UTC()
	switch iv {
	case Hour:
		return t.Truncate(time.Hour)
	case Month:
		return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	default:
		return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	}
}

// GroupBy is the dimension a summary's totals are split by.
type GroupBy string

// Groupings. None keeps one group per bucket, whose name is null.
const (
	None     GroupBy = ""
	Model    GroupBy = "model" // provider:model
	Provider GroupBy = "provider"
	UserID   GroupBy = "user_id"
	APIKeyID GroupBy = "api_key_id"
	EndUser  GroupBy = "end_user"
)

// ParseGroupBy reads the group_by query parameter; empty (or "none") is None.
func ParseGroupBy(s string) (GroupBy, bool) {
	switch GroupBy(s) {
	case None, "none":
		return None, true
	case Model, Provider, UserID, APIKeyID, EndUser:
		return GroupBy(s), true
	}
	return "", false
}

// Dims are the dimensions of one summary row: what the records it counts
// share. Empty strings stand for absent values (no key: the master key; no
// end user given).
type Dims struct {
	Provider string
	Model    string // the provider's own model name, as in the record
	UserID   string
	APIKeyID string
	EndUser  string
}

// Group returns the value of g for d, and false when the group is null:
// grouping by nothing, or by a key or end user that the records lack.
func (g GroupBy) Group(d Dims) (string, bool) {
	switch g {
	case Model:
		return d.Provider + ":" + d.Model, true
	case Provider:
		return d.Provider, true
	case UserID:
		return d.UserID, true
	case APIKeyID:
		return d.APIKeyID, d.APIKeyID != ""
	case EndUser:
		return d.EndUser, d.EndUser != ""
	}
	return "", false
}

// Totals are what a set of records adds up to. Cost is in nano-dollars.
type Totals struct {
	Requests         int64
	Errors           int64
	PromptTokens     int64
	CompletionTokens int64
	TotalTokens      int64
	Cost             int64
}

// Add adds o to t.
func (t *Totals) Add(o Totals) {
	t.Requests += o.Requests
	t.Errors += o.Errors
	t.PromptTokens += o.PromptTokens
	t.CompletionTokens += o.CompletionTokens
	t.TotalTokens += o.TotalTokens
	t.Cost += o.Cost
}

// Filter selects summary rows. Zero fields do not filter.
type Filter struct {
	UserID   string
	APIKeyID string
	// Model matches the record's model name, as /v1/usage's filter does,
	// or its provider:model.
	Model   string
	EndUser string
}

// Match reports whether a row with dimensions d passes f.
func (f Filter) Match(d Dims) bool {
	return (f.UserID == "" || d.UserID == f.UserID) &&
		(f.APIKeyID == "" || d.APIKeyID == f.APIKeyID) &&
		(f.EndUser == "" || d.EndUser == f.EndUser) &&
		(f.Model == "" || d.Model == f.Model || modelKeyIs(d, f.Model))
}

// modelKeyIs reports whether d's provider:model is key, without building it.
func modelKeyIs(d Dims, key string) bool {
	provider, model, ok := strings.Cut(key, ":")
	return ok && provider == d.Provider && model == d.Model
}

// Query is one summary request.
type Query struct {
	Interval Interval
	GroupBy  GroupBy
	Filter   Filter
	// Start and End bound the records counted, both inclusive; zero means
	// unbounded. Rows are hours, so the hour holding Start is counted
	// whole: a summary's resolution is one hour.
	Start, End time.Time
}

// NeedsEndUser reports whether q must read rows that keep the end user:
// daily rows do not, so a query that filters or groups by end user is
// answered from hourly rows only.
func (q Query) NeedsEndUser() bool {
	return q.GroupBy == EndUser || q.Filter.EndUser != ""
}

// ModelsOnly reports whether q needs no dimension but the provider and
// the model: such a query (the dashboard's totals, by model or provider)
// is answered from the model rows, one per model and hour however many
// users, keys and end users there are.
func (q Query) ModelsOnly() bool {
	f := q.Filter
	return (q.GroupBy == None || q.GroupBy == Model || q.GroupBy == Provider) &&
		f.UserID == "" && f.APIKeyID == "" && f.EndUser == ""
}

// HourRange is the half-open range [From, To) of the starts of the hourly
// rows a store reads.
type HourRange struct{ From, To time.Time }

// Empty reports whether r holds no hour.
func (r HourRange) Empty() bool { return !r.From.Before(r.To) }

// Earliest and Latest bound the hours a summary ever covers: unbounded
// query ends are clamped to them, so keys and SQL always get real times.
var (
	Earliest = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	Latest   = time.Date(9000, 1, 1, 0, 0, 0, 0, time.UTC)
)

// Plan says which rows answer q: model rows starting in Models, or daily
// rows whose day starts in Days (a whole number of days) and hourly rows
// starting in each of Hours. A query that needs only the model reads model
// rows; otherwise daily rows serve day and month buckets when q does not
// need the end user, and partial days at either end come from hourly rows.
type Plan struct {
	Models HourRange
	Days   HourRange
	Hours  []HourRange
}

// PlanQuery returns the rows that answer q.
func PlanQuery(q Query) Plan {
	from, to := Earliest, Latest
	if !q.Start.IsZero() {
		from = maxTime(from, q.Start.UTC().Truncate(time.Hour))
	}
	if !q.End.IsZero() {
		to = minTime(to, q.End.UTC().Truncate(time.Hour).Add(time.Hour))
	}
	all := HourRange{from, to}
	if all.Empty() {
		return Plan{}
	}
	if q.ModelsOnly() {
		return Plan{Models: all}
	}
	if q.Interval == Hour || q.NeedsEndUser() {
		return Plan{Hours: []HourRange{all}}
	}
	firstDay := Day.Truncate(from)
	if !firstDay.Equal(from) {
		firstDay = firstDay.AddDate(0, 0, 1)
	}
	lastDay := Day.Truncate(to) // days end here; hours after it are partial
	if !firstDay.Before(lastDay) {
		return Plan{Hours: []HourRange{all}}
	}
	p := Plan{Days: HourRange{firstDay, lastDay}}
	if head := (HourRange{from, firstDay}); !head.Empty() {
		p.Hours = append(p.Hours, head)
	}
	if tail := (HourRange{lastDay, to}); !tail.Empty() {
		p.Hours = append(p.Hours, tail)
	}
	return p
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// Bucket is one row of a summary's answer.
type Bucket struct {
	Start time.Time
	// Group is the group's name; nil for the null group.
	Group *string
	Totals
}

type bucketKey struct {
	start time.Time
	group string
	named bool
}

// Rollup adds summary rows into the buckets and groups of a query.
type Rollup struct {
	q       Query
	buckets map[bucketKey]*Totals
}

// NewRollup starts an empty rollup for q.
func NewRollup(q Query) *Rollup {
	return &Rollup{q: q, buckets: make(map[bucketKey]*Totals)}
}

// Add adds the totals of a row starting at start with dimensions d, when
// the query's filter keeps it.
func (r *Rollup) Add(start time.Time, d Dims, t Totals) {
	if !r.q.Filter.Match(d) {
		return
	}
	group, named := r.q.GroupBy.Group(d)
	k := bucketKey{start: r.q.Interval.Truncate(start), group: group, named: named}
	if sum, ok := r.buckets[k]; ok {
		sum.Add(t)
		return
	}
	sum := t
	r.buckets[k] = &sum
}

// Buckets returns the totals oldest bucket first; within a bucket the null
// group first, then groups by name. The result is never nil.
func (r *Rollup) Buckets() []Bucket {
	out := make([]Bucket, 0, len(r.buckets))
	for k, t := range r.buckets {
		b := Bucket{Start: k.start, Totals: *t}
		if k.named {
			b.Group = &k.group
		}
		out = append(out, b)
	}
	Sort(out)
	return out
}

// Sort orders buckets as Buckets returns them.
func Sort(bs []Bucket) {
	slices.SortFunc(bs, func(a, b Bucket) int {
		if c := a.Start.Compare(b.Start); c != 0 {
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
		return cmp.Compare(*a.Group, *b.Group)
	})
}
