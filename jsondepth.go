package llmgateway

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxJSONDepth is the deepest nesting of objects and arrays accepted in a
// request body. Real requests nest a handful of levels (tool schemas a few
// dozen); the limit keeps recursive parsers far from stack exhaustion.
const maxJSONDepth = 128

// jsonDepthOK reports whether body nests objects and arrays at most max
// levels deep. It scans bytes without parsing, skipping string contents,
// so it is safe on any input.
func jsonDepthOK(body []byte, max int) bool {
	tooDeep, _ := scanJSON(body, max, false)
	return !tooDeep
}

// keySetLinear is how many keys an object holds before its duplicate check
// switches from comparing against each earlier key to a map: requests have
// objects of a few keys, and a hostile one with 100,000 keys stays linear.
const keySetLinear = 16

// scanJSON walks body once, without parsing values, skipping string
// contents, so it is safe on any input (its answers mean something only
// for valid JSON). It reports whether objects and arrays nest deeper than
// max and, when checkKeys, the path of the first object key that repeats
// an earlier key of the same object ("" if none).
//
// Keys are compared after unescaping ("mod\u0065l" is "model"), and at the
// top level also case-insensitively: the gateway reads the first of two
// equal keys while most JSON parsers keep the last, and Go's encoding/json
// (Ollama, many proxies) matches field names regardless of case, so either
// would let the provider read a field the gateway did not check or bill.
func scanJSON(body []byte, max int, checkKeys bool) (tooDeep bool, duplicate string) {
	var frames []keyFrame // frames[d] is the container at depth d+1
	depth := 0
	inString, escaped, isKey, keyEscaped := false, false, false, false
	keyStart := 0
	for i, c := range body {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped, keyEscaped = true, keyEscaped || isKey
			case c == '"':
				inString = false
				if isKey && duplicate == "" {
					f := &frames[depth-1]
					key := body[keyStart:i]
					if keyEscaped {
						key = unescapeKey(body[keyStart-1 : i+1])
					}
					if f.add(key, depth == 1) {
						duplicate = keyPath(frames[:depth-1], key)
					}
				}
				isKey = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
			if checkKeys && depth > 0 && frames[depth-1].object && frames[depth-1].expectKey {
				isKey, keyEscaped, keyStart = true, false, i+1
				frames[depth-1].expectKey = false
			}
		case '{', '[':
			depth++
			if depth > max {
				return true, duplicate
			}
			if checkKeys {
				if depth > len(frames) {
					frames = append(frames, keyFrame{})
				}
				frames[depth-1].reset(c == '{')
			}
		case '}', ']':
			if depth > 0 {
				depth--
			}
		case ',':
			if checkKeys && depth > 0 {
				f := &frames[depth-1]
				f.expectKey = f.object
				f.index++
			}
		}
	}
	return false, duplicate
}

// keyFrame is one open object or array during scanJSON.
type keyFrame struct {
	object    bool
	expectKey bool                // the next string is a key
	index     int                 // position of the current element or member
	keys      [][]byte            // the object's keys so far, up to keySetLinear
	set       map[string]struct{} // all of them, once there are more
	current   []byte              // the key whose value is being scanned
}

func (f *keyFrame) reset(object bool) {
	f.object, f.expectKey, f.index, f.current = object, object, 0, nil
	f.keys = f.keys[:0]
	f.set = nil
}

// add records key in the object and reports whether it was already there.
// fold compares names case-insensitively.
func (f *keyFrame) add(key []byte, fold bool) bool {
	f.current = key
	if f.set == nil {
		for _, k := range f.keys {
			if bytes.Equal(k, key) || (fold && bytes.EqualFold(k, key)) {
				return true
			}
		}
		if len(f.keys) < keySetLinear {
			f.keys = append(f.keys, key)
			return false
		}
		f.set = make(map[string]struct{}, 2*keySetLinear)
		for _, k := range f.keys {
			f.set[setKey(k, fold)] = struct{}{}
		}
	}
	s := setKey(key, fold)
	if _, seen := f.set[s]; seen {
		return true
	}
	f.set[s] = struct{}{}
	return false
}

// setKey is a key as the map of a large object holds it: folded to one
// rune of each case orbit when names compare case-insensitively.
func setKey(key []byte, fold bool) string {
	if !fold {
		return string(key)
	}
	var b strings.Builder
	b.Grow(len(key))
	for _, r := range string(key) {
		b.WriteRune(foldRune(r))
	}
	return b.String()
}

// foldRune returns the smallest rune that equals r under Unicode simple
// case folding, the equivalence bytes.EqualFold uses.
func foldRune(r rune) rune {
	least := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		least = min(least, f)
	}
	return least
}

// unescapeKey decodes a quoted JSON string; an invalid one is kept raw.
func unescapeKey(quoted []byte) []byte {
	var s string
	if err := json.Unmarshal(quoted, &s); err != nil {
		return quoted[1 : len(quoted)-1]
	}
	return []byte(s)
}

// keyPath names key inside its parents as "a.b[2].key", for the message.
func keyPath(parents []keyFrame, key []byte) string {
	var b strings.Builder
	for _, p := range parents {
		if p.object {
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.Write(p.current)
		} else {
			b.WriteString("[" + strconv.Itoa(p.index) + "]")
		}
	}
	if b.Len() > 0 {
		b.WriteByte('.')
	}
	b.Write(key)
	s := b.String()
	if s == "" {
		s = `""` // an empty name, repeated
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return s
}
