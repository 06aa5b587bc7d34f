package llmgateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

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
		ok, got := checkRequestJSON([]byte(tt.body), maxJSONDepth)
		if !ok {
			t.Errorf("%s: refused", tt.name)
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
	allocs := testing.AllocsPerRun(2, func() { checkRequestJSON(body, maxJSONDepth) })
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

// FuzzCheckRequestJSON: the one pass accepts exactly what the separate
// checks accept (UTF-8, nesting, gjson's grammar), and on what it accepts
// finds a duplicate key when encoding/json's tokenizer does.
func FuzzCheckRequestJSON(f *testing.F) {
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
		`[-0.5e+3,1E9,0,true,false,null,"\/\b\f\n\r\t\u00e9"]`,
		"{\"a\":\"\xff\"}",
		`[01]`, `[1.]`, `[.5]`, `[1e]`, `{"a" 1}`, `{"a":1,}`, `[1,]`, `{,}`, ` 1 `, `"x`,
		strings.Repeat("[", 200),
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ok, dup := checkRequestJSON(body, maxJSONDepth)
		want := utf8.Valid(body) && jsonDepthOK(body, maxJSONDepth) && gjson.ValidBytes(body)
		if ok != want {
			t.Fatalf("checkRequestJSON = %v, the separate checks %v", ok, want)
		}
		if !ok {
			if err := badJSON(body); err == nil {
				t.Fatal("refused without an error")
			}
			return
		}
		if !json.Valid(body) {
			t.Fatal("accepted what encoding/json refuses")
		}
		if ref, found := referenceDuplicate(t, body); found != (dup != "") {
			t.Fatalf("duplicate %q, reference %q", dup, ref)
		}
	})
}

// BenchmarkRequestBodyChecks: the one pass, duplicate keys included,
// against the three scans it replaced (UTF-8, nesting, gjson's grammar),
// the middle one without the duplicate-key check it also made, on the
// benchmark's chat body and on a request with tools of 8 KiB.
func BenchmarkRequestBodyChecks(b *testing.B) {
	chat := []byte(`{"model":"mock:bench","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Write a haiku about Jupiter and explain each line."}],"max_tokens":300,"temperature":0.7}`)
	var tools bytes.Buffer
	tools.WriteString(`{"model":"mock:bench","messages":[{"role":"user","content":"Which tool?"}],"tools":[`)
	for i := 0; tools.Len() < 8<<10; i++ {
		fmt.Fprintf(&tools, `{"type":"function","function":{"name":"tool_%d","description":"Looks up the weather for a city, in \u00b0C.","parameters":{"type":"object","properties":{"city":{"type":"string"},"days":{"type":"integer","minimum":1,"maximum":14}},"required":["city"]}}},`, i)
	}
	tools.Truncate(tools.Len() - 1)
	tools.WriteString(`]}`)
	for _, body := range []struct {
		name string
		data []byte
	}{{"chat", chat}, {"tools-8KiB", tools.Bytes()}} {
		if ok, dup := checkRequestJSON(body.data, maxJSONDepth); !ok || dup != "" {
			b.Fatalf("%s: ok %v, duplicate %q", body.name, ok, dup)
		}
		b.Run(body.name+"/one-pass", func(b *testing.B) {
			b.SetBytes(int64(len(body.data)))
			b.ReportAllocs()
			for b.Loop() {
				checkRequestJSON(body.data, maxJSONDepth)
			}
		})
		b.Run(body.name+"/separate", func(b *testing.B) {
			b.SetBytes(int64(len(body.data)))
			b.ReportAllocs()
			for b.Loop() {
				_ = utf8.Valid(body.data) && jsonDepthOK(body.data, maxJSONDepth) && gjson.ValidBytes(body.data)
			}
		})
	}
}

// TestRequestJSONErrorsKeepTheContractsOrder: a body with several faults
// gets the message of the first check the contract names.
func TestRequestJSONErrorsKeepTheContractsOrder(t *testing.T) {
	t.Parallel()
	deep := strings.Repeat("[", 200)
	tests := []struct{ name, body, want string }{
		{"valid", `{"model":"a:b"}`, ""},
		{"bad UTF-8 and too deep", deep + "\xff", "Request body is not valid UTF-8"},
		{"bad UTF-8 in a string", `{"model":"a:` + "\xc3\x28" + `"}`, "Request body is not valid UTF-8"},
		{"too deep and unclosed", deep, "Request body nests deeper than 128 levels"},
		{"truncated", `{"model":"a:b",`, "Invalid JSON body"},
		{"control character in a string", "{\"model\":\"a\tb\"}", "Invalid JSON body"},
		{"invalid and duplicate", `{"model":"a","model":"b",}`, "Invalid JSON body"},
		{"duplicate", `{"model":"a","model":"b"}`, "Duplicate key 'model' in request body"},
	}
	for _, tt := range tests {
		_, err := parseRequestJSON([]byte(tt.body))
		got := ""
		if err != nil {
			got = err.Error()
		}
		if !strings.Contains(got, tt.want) || (tt.want == "") != (err == nil) {
			t.Errorf("%s: error %q, want %q", tt.name, got, tt.want)
		}
	}
}
