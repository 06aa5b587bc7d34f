package storage

import (
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// appendUsageRecord appends the JSON of r to b: the same object
// encoding/json writes for UsageRecord (its tags, their order, omitempty
// and omitzero), built without reflection because every request writes
// one. Strings are escaped as JSON requires (quote, backslash, control
// characters; invalid UTF-8 becomes U+FFFD, as encoding/json does);
// unlike encoding/json it leaves <, > and & alone, which decodes the same.
// The record codec test checks that both decode to the same record.
func appendUsageRecord(b []byte, r *UsageRecord) ([]byte, error) {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, r.ID)
	b = append(b, `,"request_id":`...)
	b = appendJSONString(b, r.RequestID)
	b = append(b, `,"user_id":`...)
	b = appendJSONString(b, r.UserID)
	if r.APIKeyID != "" {
		b = append(b, `,"api_key_id":`...)
		b = appendJSONString(b, r.APIKeyID)
	}
	if r.EndUser != "" {
		b = append(b, `,"end_user":`...)
		b = appendJSONString(b, r.EndUser)
	}
	var err error
	b = append(b, `,"timestamp":`...)
	if b, err = appendJSONTime(b, r.Timestamp); err != nil {
		return nil, err
	}
	b = append(b, `,"model":`...)
	b = appendJSONString(b, r.Model)
	b = append(b, `,"provider":`...)
	b = appendJSONString(b, r.Provider)
	b = append(b, `,"endpoint":`...)
	b = appendJSONString(b, r.Endpoint)
	b = append(b, `,"prompt_tokens":`...)
	b = strconv.AppendInt(b, r.PromptTokens, 10)
	b = append(b, `,"completion_tokens":`...)
	b = strconv.AppendInt(b, r.CompletionTokens, 10)
	b = append(b, `,"total_tokens":`...)
	b = strconv.AppendInt(b, r.TotalTokens, 10)
	b = append(b, `,"cost":`...)
	b = r.Cost.AppendJSON(b)
	b = append(b, `,"status":`...)
	b = appendJSONString(b, r.Status)
	b = append(b, `,"status_code":`...)
	b = strconv.AppendInt(b, int64(r.StatusCode), 10)
	b = append(b, `,"latency_ms":`...)
	b = strconv.AppendInt(b, r.LatencyMS, 10)
	if r.ErrorMessage != "" {
		b = append(b, `,"error_message":`...)
		b = appendJSONString(b, r.ErrorMessage)
	}
	b = append(b, `,"usage_source":`...)
	b = appendJSONString(b, r.UsageSource)
	if r.ExceededReservation {
		b = append(b, `,"exceeded_reservation":true`...)
	}
	if !r.UserPeriod.IsZero() {
		b = append(b, `,"user_period":`...)
		if b, err = appendJSONTime(b, r.UserPeriod); err != nil {
			return nil, err
		}
	}
	if !r.KeyPeriod.IsZero() {
		b = append(b, `,"key_period":`...)
		if b, err = appendJSONTime(b, r.KeyPeriod); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// appendJSONTime appends t as encoding/json does (RFC 3339 with
// nanoseconds), refusing the years it refuses.
func appendJSONTime(b []byte, t time.Time) ([]byte, error) {
	if y := t.Year(); y < 0 || y > 9999 {
		return nil, fmt.Errorf("time %v: year outside [0,9999]", t)
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), nil
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
