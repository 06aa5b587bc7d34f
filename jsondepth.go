package llmgateway

// maxJSONDepth is the deepest nesting of objects and arrays accepted in a
// request body. Real requests nest a handful of levels (tool schemas a few
// dozen); the limit keeps recursive parsers far from stack exhaustion.
const maxJSONDepth = 128

// jsonDepthOK reports whether body nests objects and arrays at most max
// levels deep. It scans bytes without parsing, skipping string contents,
// so it is safe on any input.
func jsonDepthOK(body []byte, max int) bool {
	depth := 0
	inString, escaped := false, false
	for _, c := range body {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
			if depth > max {
				return false
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return true
}
