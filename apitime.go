package llmgateway

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"time"
)

var (
	jsonObjectType = reflect.TypeFor[jsonObject]()
	apiTimeType    = reflect.TypeFor[apiTime]()
)

// apiTime is a date-time in a request body: any ISO 8601 form with an
// offset (stored in UTC), or without one (taken as UTC).
type apiTime struct{ time.Time }

// UnmarshalJSON parses an ISO 8601 string.
func (t *apiTime) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	var s string
	if b[0] != '"' || json.Unmarshal(b, &s) != nil {
		return &json.UnmarshalTypeError{Value: "value", Type: apiTimeType}
	}
	parsed, ok := parseISOTime(s)
	if !ok {
		return &json.UnmarshalTypeError{Value: "string", Type: apiTimeType}
	}
	t.Time = parsed
	return nil
}

var isoLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04Z07:00",
	"2006-01-02T15:04",
	"2006-01-02",
}

// parseISOTime parses the ISO 8601 forms clients send, returning UTC.
func parseISOTime(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	for _, layout := range isoLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC().Truncate(time.Microsecond), true
		}
	}
	return time.Time{}, false
}

// parseQueryTime parses a query parameter given as ISO 8601 or Unix seconds.
func parseQueryTime(s string) (time.Time, bool) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0).UTC(), true
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && !strings.ContainsAny(s, "eE") {
		sec := int64(f)
		return time.Unix(sec, int64((f-float64(sec))*1e9)).UTC(), true
	}
	return parseISOTime(s)
}
