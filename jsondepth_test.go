package llmgateway

import (
	"strings"
	"testing"
)

func TestJSONDepth(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		ok   bool
	}{
		{"flat", `{"a":1}`, true},
		{"at the limit", strings.Repeat("[", 128) + strings.Repeat("]", 128), true},
		{"over the limit", strings.Repeat("[", 129) + strings.Repeat("]", 129), false},
		{"unclosed deep", strings.Repeat("{\"a\":", 100000), false},
		{"brackets in strings do not count", `{"a":"` + strings.Repeat("[", 1000) + `"}`, true},
		{"escaped quote keeps the string open", `{"a":"\"` + strings.Repeat("[", 1000) + `"}`, true},
		{"escaped backslash closes it", `{"a":"\\"` + strings.Repeat("[", 200) + `}`, false},
	}
	for _, tt := range tests {
		if got := jsonDepthOK([]byte(tt.body), maxJSONDepth); got != tt.ok {
			t.Errorf("%s: jsonDepthOK = %v, want %v", tt.name, got, tt.ok)
		}
		if ok, _ := checkRequestJSON([]byte(tt.body), maxJSONDepth); ok && !tt.ok {
			t.Errorf("%s: checkRequestJSON accepts it", tt.name)
		}
	}
}
