package llmgateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
		if tooDeep, _ := scanJSON([]byte(tt.body), maxJSONDepth, true); tooDeep == tt.ok {
			t.Errorf("%s: scanJSON tooDeep = %v, want %v", tt.name, tooDeep, !tt.ok)
		}
	}
}

func TestDuplicateKeysAreFound(t *testing.T) {
	t.Parallel()
	many := func(n int, extra string) string {
		var b strings.Builder
		b.WriteString(`{"messages":[{"role":"user","content":"hi","name":{`)
		for i := range n {
			fmt.Fprintf(&b, `"k%d":%d,`, i, i)
		}
		b.WriteString(extra + `"end":0}}]}`)
		return b.String()
	}
	tests := []struct {
		name, body, want string
	}{
		{"none", `{"model":"a:b","messages":[{"role":"user","content":"hi"}],"stream":true}`, ""},
		{"top level", `{"model":"a:free","messages":[],"model":"a:paid"}`, "model"},
		{"escaped name", `{"model":"a:free","mod\u0065l":"a:paid"}`, "model"},
		{"escaped both", `{"m\u006fdel":"a:free","mod\u0065l":"a:paid"}`, "model"},
		{"escaped slash", `{"a\/b":1,"a/b":2}`, "a/b"},
		{"top level case", `{"model":"a:free","MODEL":"a:paid"}`, "MODEL"},
		{"kelvin sign folds at top level", "{\"k\":1,\"\u212a\":2}", "\u212a"},
		{"nested case is not folded", `{"metadata":{"a":1,"A":2}}`, ""},
		{"nested", `{"stream_options":{"include_usage":true,"include_usage":false}}`, "stream_options.include_usage"},
		{"in an array", `{"messages":[{"role":"user"},{"role":"user","content":"x","role":"system"}]}`, "messages[1].role"},
		{"same key in sibling objects", `{"a":{"x":1},"b":{"x":1},"c":[{"x":1},{"x":2}]}`, ""},
		{"same key in parent and child", `{"x":{"x":{"x":1}}}`, ""},
		{"keys inside strings do not count", `{"a":"{\"a\":1,\"a\":2}","b":1}`, ""},
		{"value equal to a key", `{"a":"a","b":"a"}`, ""},
		{"empty names", `{"":1,"":2}`, `""`},
		{"many keys", many(5000, ""), ""},
		{"many keys then a duplicate", many(5000, `"k17":1,`), "messages[0].name.k17"},
		{"many keys then an escaped duplicate", many(100, `"k\u0039":1,`), "messages[0].name.k9"},
		{"many top-level keys fold", `{` + manyTop(40) + `"MESSAGES":1,"messages":[]}`, "messages"},
	}
	for _, tt := range tests {
		tooDeep, got := scanJSON([]byte(tt.body), maxJSONDepth, true)
		if tooDeep {
			t.Errorf("%s: too deep", tt.name)
		}
		if got != tt.want {
			t.Errorf("%s: duplicate = %q, want %q", tt.name, got, tt.want)
		}
		if ref, found := referenceDuplicate(t, []byte(tt.body)); found != (tt.want != "") {
			t.Errorf("%s: reference finds %q", tt.name, ref)
		}
	}
}

func manyTop(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `"t%d":%d,`, i, i)
	}
	return b.String()
}

// TestDuplicateKeyScanIsLinear: an object of many keys costs one map
// insert per key, not a comparison with every earlier key.
func TestDuplicateKeyScanIsLinear(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("{")
	for i := range 200_000 {
		fmt.Fprintf(&b, `"key%d":0,`, i)
	}
	b.WriteString(`"end":0}`)
	body := b.Bytes()
	allocs := testing.AllocsPerRun(2, func() { scanJSON(body, maxJSONDepth, true) })
	// One string per key in the map, plus the map's growth: far below the
	// 2×10^10 comparisons of a quadratic scan, which would not finish.
	if allocs > 3*200_000 {
		t.Fatalf("%v allocations for 200,000 keys", allocs)
	}
}

// referenceDuplicate finds a duplicate key with encoding/json's tokenizer:
// exact names after unescaping, folded at the top level.
func referenceDuplicate(t *testing.T, body []byte) (string, bool) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	type frame struct {
		object    bool
		keys      map[string]bool
		expectKey bool
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return "", false
		}
		if err != nil {
			t.Fatalf("reference tokenizer: %v", err)
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{', '[':
				if top != nil && top.object {
					top.expectKey = true
				}
				stack = append(stack, &frame{object: v == '{', keys: map[string]bool{}, expectKey: v == '{'})
			default:
				stack = stack[:len(stack)-1]
				if len(stack) > 0 && stack[len(stack)-1].object {
					stack[len(stack)-1].expectKey = true
				}
			}
			continue
		case string:
			if top != nil && top.object && top.expectKey {
				k := v
				if len(stack) == 1 {
					k = setKey([]byte(v), true)
				}
				if top.keys[k] {
					return v, true
				}
				top.keys[k] = true
				top.expectKey = false
				continue
			}
		}
		if top != nil && top.object {
			top.expectKey = true
		}
	}
}

func FuzzScanJSON(f *testing.F) {
	for _, seed := range []string{
		`{"model":"a:b","messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"a","model":"b"}`,
		`{"mod\u0065l":"a","model":"b"}`,
		`{"a":{"b":1,"b":2}}`,
		`{"a":[{"b":1},{"b":1,"c":{"d":"\"}"}}]}`,
		`{"K":1,"k":2}`,
		`{"a":"\ud800","a":"x"}`,
		`{"\ud800":1,"\udc00":2}`,
		`[{"a":1,"a":2}]`,
		strings.Repeat("[", 200),
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		tooDeep, dup := scanJSON(body, maxJSONDepth, true)
		if tooDeep != !jsonDepthOK(body, maxJSONDepth) {
			t.Fatal("depth answers differ")
		}
		if tooDeep || !json.Valid(body) {
			return // answers about invalid JSON are not used
		}
		if ref, found := referenceDuplicate(t, body); found != (dup != "") {
			t.Fatalf("scanJSON duplicate %q, reference %q", dup, ref)
		}
	})
}
