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
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			if depth++; depth > max {
				return false
			}
		case '}', ']':
			if depth > 0 {
				depth--
			}
		}
	}
	return true
}
