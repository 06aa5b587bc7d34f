package llmgateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

// checkRequestJSON is the one pass over an inference request body that
// every check before parsing needs: it is valid UTF-8, valid JSON (the
// grammar gjson.ValidBytes accepts), nests at most max levels, and the
// path of its first repeated object key, as "a.b[2].key" ("" if
// none). A body that fails is described by badJSON, which runs the
// separate checks in the contract's order; that only costs a refused
// request.
func checkRequestJSON(body []byte, max int) (ok bool, duplicate string) {
	s := checkers.Get().(*jsonChecker)
	s.body, s.i, s.max, s.depth, s.deepest, s.duplicate = body, 0, max, 0, 0, ""
	ok, duplicate = s.check(), s.duplicate
	s.release()
	checkers.Put(s)
	return ok, duplicate
}

// checkers keeps each checker's frames and key lists, which a request
// body would otherwise allocate anew (8 allocations on a small chat body).
var checkers = sync.Pool{New: func() any { return new(jsonChecker) }}

// badJSON is the error for a body checkRequestJSON refused, in the order
// the contract checks: encoding, nesting, grammar.
func badJSON(body []byte) error {
	switch {
	case !utf8.Valid(body):
		return errValidation("Request body is not valid UTF-8")
	case !jsonDepthOK(body, maxJSONDepth):
		return errValidation(fmt.Sprintf("Request body nests deeper than %d levels", maxJSONDepth))
	default:
		return errValidation("Invalid JSON body")
	}
}

// jsonChecker walks a document without building anything. frames[d] is
// the container open at depth d+1, reused across siblings.
type jsonChecker struct {
	body      []byte
	i         int
	max       int
	frames    []keyFrame
	deepest   int // frames[:deepest] were used by this check
	depth     int
	duplicate string
}

// release drops what points into the body, so a pooled checker does not
// keep a request alive.
func (s *jsonChecker) release() {
	s.body = nil
	for i := range s.frames[:s.deepest] {
		f := &s.frames[i]
		clear(f.keys[:cap(f.keys)])
		f.keys, f.current, f.set = f.keys[:0], nil, nil
	}
}

func (s *jsonChecker) check() bool {
	b := s.body
value:
	s.space()
	if s.i >= len(b) {
		return false
	}
	switch c := b[s.i]; c {
	case '{', '[':
		s.depth++
		if s.depth > s.max {
			return false
		}
		if s.depth > len(s.frames) {
			s.frames = append(s.frames, keyFrame{})
		}
		s.deepest = max(s.deepest, s.depth)
		s.frames[s.depth-1].reset(c == '{')
		s.i++
		s.space()
		if s.i < len(b) && b[s.i] == c+2 { // '}' and ']' follow '{' and '[' by two
			s.i++
			s.depth--
			goto next
		}
		if c == '{' && !s.member() {
			return false
		}
		goto value
	case '"':
		if !s.string(false) {
			return false
		}
	case 't':
		if !s.literal("true") {
			return false
		}
	case 'f':
		if !s.literal("false") {
			return false
		}
	case 'n':
		if !s.literal("null") {
			return false
		}
	default:
		if !s.number() {
			return false
		}
	}
next:
	s.space()
	if s.depth == 0 {
		return s.i == len(b)
	}
	if s.i >= len(b) {
		return false
	}
	f := &s.frames[s.depth-1]
	switch b[s.i] {
	case ',':
		s.i++
		f.index++
		if f.object && !s.member() {
			return false
		}
		goto value
	case '}':
		if !f.object {
			return false
		}
	case ']':
		if f.object {
			return false
		}
	default:
		return false
	}
	s.i++
	s.depth--
	goto next
}

// member reads an object member's key and colon, leaving the value next.
func (s *jsonChecker) member() bool {
	s.space()
	if s.i >= len(s.body) || s.body[s.i] != '"' || !s.string(true) {
		return false
	}
	s.space()
	if s.i >= len(s.body) || s.body[s.i] != ':' {
		return false
	}
	s.i++
	return true
}

// string reads the string at s.i (its opening quote); a key is checked
// against the earlier keys of its object until the first repeat.
func (s *jsonChecker) string(key bool) bool {
	b := s.body
	start := s.i + 1
	escaped := false
	for i := start; i < len(b); {
		c := b[i]
		switch {
		case c == '"':
			s.i = i + 1
			if key && s.duplicate == "" {
				s.key(start, i, escaped)
			}
			return true
		case c == '\\':
			escaped = true
			if i+1 >= len(b) {
				return false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || !ishex(b[i+2]) || !ishex(b[i+3]) || !ishex(b[i+4]) || !ishex(b[i+5]) {
					return false
				}
				i += 6
			default:
				return false
			}
		case c < ' ':
			return false
		case c < utf8.RuneSelf:
			i++
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				return false
			}
			i += size
		}
	}
	return false
}

// key records the key body[start:end] in the innermost object.
func (s *jsonChecker) key(start, end int, escaped bool) {
	key := s.body[start:end]
	if escaped {
		key = unescapeKey(s.body[start-1 : end+1])
	}
	if s.frames[s.depth-1].add(key, s.depth == 1) {
		s.duplicate = keyPath(s.frames[:s.depth-1], key)
	}
}

func (s *jsonChecker) literal(word string) bool {
	if len(s.body)-s.i < len(word) || string(s.body[s.i:s.i+len(word)]) != word {
		return false
	}
	s.i += len(word)
	return true
}

// number reads -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *jsonChecker) number() bool {
	b, i := s.body, s.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b) || !isdigit(b[i]):
		return false
	case b[i] == '0':
		i++
	default:
		i = digits(b, i)
	}
	if i < len(b) && b[i] == '.' {
		if i++; i >= len(b) || !isdigit(b[i]) {
			return false
		}
		i = digits(b, i)
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		if i++; i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isdigit(b[i]) {
			return false
		}
		i = digits(b, i)
	}
	s.i = i
	return true
}

func (s *jsonChecker) space() {
	for s.i < len(s.body) {
		switch s.body[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func digits(b []byte, i int) int {
	for i < len(b) && isdigit(b[i]) {
		i++
	}
	return i
}

func isdigit(c byte) bool { return c >= '0' && c <= '9' }

func ishex(c byte) bool {
	return isdigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// parseRequestJSON checks body in one pass and parses it, or returns the
// contract's error for it.
func parseRequestJSON(body []byte) (gjson.Result, error) {
	ok, duplicate := checkRequestJSON(body, maxJSONDepth)
	if !ok {
		return gjson.Result{}, badJSON(body)
	}
	if duplicate != "" {
		// The gateway reads the first of two equal keys, most providers
		// the last: what is checked and billed must be what is served.
		return gjson.Result{}, errValidation(fmt.Sprintf("Duplicate key '%s' in request body", truncate(duplicate, 128)))
	}
	return gjson.ParseBytes(body), nil
}

// keySetLinear is how many keys an object holds before its duplicate check
// switches from comparing against each earlier key to a map: requests have
// objects of a few keys, and a hostile one with 100,000 keys stays linear.
const keySetLinear = 16

// keyFrame is one open object or array of the document being checked.
type keyFrame struct {
	object  bool
	index   int                 // position of the current element or member
	keys    [][]byte            // the object's keys so far, up to keySetLinear
	set     map[string]struct{} // all of them, once there are more
	current []byte              // the key whose value is being scanned
}

func (f *keyFrame) reset(object bool) {
	f.object, f.index, f.current = object, 0, nil
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
