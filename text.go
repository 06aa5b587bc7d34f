package llmgateway

// Helpers for client-supplied text that the gateway checks, shows or logs.

// isControl reports whether r is an ASCII control character, which no id,
// name or path segment may hold.
func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// truncate cuts s to at most n bytes and marks the cut, for quoting
// client input in a message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// truncateRunes cuts s to at most n characters, never inside one.
func truncateRunes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for i := range s {
		if n == 0 {
			return s[:i]
		}
		n--
	}
	return s
}
