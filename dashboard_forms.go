package llmgateway

import (
	"fmt"
	"html/template"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/llmgateway/caddy-llm-gateway/internal/chart"
	"github.com/llmgateway/caddy-llm-gateway/storage"
)

// Reading the dashboard's forms into admin API bodies. An empty field is
// left out of the body (unchanged on an update); a malformed one is a
// formError naming the field as the form labels it.

// formError is a form field the dashboard could not read.
type formError struct{ msg string }

func (e formError) Error() string { return e.msg }

// formFields reads optional fields of a form into an admin API body.
type formFields struct {
	form url.Values
	body map[string]any
	err  error
}

func newFormFields(form url.Values) *formFields {
	return &formFields{form: form, body: map[string]any{}}
}

func (f *formFields) value(name string) string { return strings.TrimSpace(f.form.Get(name)) }

func (f *formFields) fail(label, want string) {
	if f.err == nil {
		f.err = formError{fmt.Sprintf("%s must be %s.", label, want)}
	}
}

// text sets field to the form's value, if any.
func (f *formFields) text(name, field string) {
	if v := f.value(name); v != "" {
		f.body[field] = v
	}
}

// money sets field to a non-negative amount of dollars.
func (f *formFields) money(name, field, label string) {
	v := strings.TrimPrefix(f.value(name), "$")
	if v == "" {
		return
	}
	m, err := storage.ParseMoney(v)
	if err != nil || m < 0 {
		f.fail(label, "an amount of US dollars, such as 25 or 0.50")
		return
	}
	f.body[field] = m
}

// count sets field to a positive integer.
func (f *formFields) count(name, field, label string) {
	v := f.value(name)
	if v == "" {
		return
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		f.fail(label, "a whole number above 0")
		return
	}
	f.body[field] = n
}

// durationSec sets field to a duration in whole seconds, written as
// Caddy writes durations (90s, 24h, 30d).
func (f *formFields) durationSec(name, field, label string) {
	v := f.value(name)
	if v == "" {
		return
	}
	d, err := caddy.ParseDuration(v)
	if err != nil || d < time.Second {
		if n, nerr := strconv.ParseInt(v, 10, 64); nerr == nil && n > 0 {
			f.body[field] = n // plain seconds
			return
		}
		f.fail(label, "a duration such as 30d, 24h or 3600s")
		return
	}
	f.body[field] = int64(d / time.Second)
}

// datetime sets field to a time given by a datetime-local input, read as
// UTC, or an RFC 3339 time.
func (f *formFields) datetime(name, field, label string) {
	v := f.value(name)
	if v == "" {
		return
	}
	t, ok := parseFormTime(v)
	if !ok {
		f.fail(label, "a date and time such as 2026-12-31T23:59")
		return
	}
	f.body[field] = t.Format(time.RFC3339)
}

// models sets field to the list of models, separated by spaces or commas.
func (f *formFields) models(name, field string) {
	v := f.value(name)
	if v == "" {
		return
	}
	f.body[field] = strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' })
}

// parseFormTime reads a datetime-local value (as UTC), a date, or RFC 3339.
func parseFormTime(v string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// templateFuncs are the helpers the dashboard's templates use.
var templateFuncs = template.FuncMap{
	"usd":        func(m storage.Money) string { return m.String() },
	"derefMoney": func(m *storage.Money) storage.Money { return *m },
	"derefInt":   func(n *int64) int64 { return *n },
	"deref": func(s *string) string {
		if s == nil {
			return ""
		}
		return *s
	},
	"time": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") },
	"timep": func(t *time.Time, none string) string {
		if t == nil {
			return none
		}
		return t.UTC().Format("2006-01-02 15:04:05")
	},
	"expired": func(t *time.Time) bool { return t != nil && !time.Now().Before(*t) },
	"duration": func(sec int64) string {
		return formatDuration(sec)
	},
	"join":        strings.Join,
	"pathEscape":  url.PathEscape,
	"short":       shortID,
	"count":       func(n int64) string { return chart.Count(float64(n)) },
	"keyLimits":   keyLimitsText,
	"add":         func(a, b float64) float64 { return a + b },
	"sub":         func(a, b float64) float64 { return a - b },
	"div":         func(a, b float64) float64 { return a / b },
	"args":        func(v ...any) []any { return v },
	"price":       func(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) },
	"budgetLabel": budgetLabel,
	"budgetName": func(budgets []budgetResponse, id string) string {
		for _, b := range budgets {
			if b.BudgetID == id {
				return budgetLabel(b)
			}
		}
		return id
	},
}

// budgetLabel names a budget by what it allows: "$25 per 30d".
func budgetLabel(b budgetResponse) string {
	s := "no limit"
	if b.MaxBudget != nil {
		s = "$" + b.MaxBudget.String()
	}
	if b.BudgetDurationSec != nil {
		s += " per " + formatDuration(*b.BudgetDurationSec)
	}
	return s + " (" + shortID(b.BudgetID) + ")"
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8] + "…"
	}
	return id
}

// formatDuration writes seconds the way the forms take them: 30d, 12h,
// 90m, 45s.
func formatDuration(sec int64) string {
	switch {
	case sec > 0 && sec%86400 == 0:
		return strconv.FormatInt(sec/86400, 10) + "d"
	case sec > 0 && sec%3600 == 0:
		return strconv.FormatInt(sec/3600, 10) + "h"
	case sec > 0 && sec%60 == 0:
		return strconv.FormatInt(sec/60, 10) + "m"
	}
	return strconv.FormatInt(sec, 10) + "s"
}

// keyLimitsText sums up a key's limits in a few words.
func keyLimitsText(k keyResponse) string {
	var parts []string
	if k.MaxBudget != nil {
		p := "$" + k.MaxBudget.String()
		if k.BudgetDurationSec != nil {
			p += " per " + formatDuration(*k.BudgetDurationSec)
		}
		parts = append(parts, p)
	}
	if k.RPMLimit != nil {
		parts = append(parts, strconv.FormatInt(*k.RPMLimit, 10)+" req/min")
	}
	if k.TPMLimit != nil {
		parts = append(parts, strconv.FormatInt(*k.TPMLimit, 10)+" tok/min")
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
