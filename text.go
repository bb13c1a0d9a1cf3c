package latchkey

import (
	"strings"
	"unicode/utf8"
)

// CleanText returns s as text that every store can hold and every reader
// can show: bytes that are not UTF-8 become U+FFFD, control characters
// (NUL included; tab excepted) are dropped, and the result is cut to at
// most max bytes without splitting a character. It is for free text the
// server records but does not validate, such as user agents and where a
// leaked key was seen; PostgreSQL refuses NUL and invalid UTF-8 in text.
func CleanText(s string, max int) string {
	clean := utf8.ValidString(s)
	for i := 0; clean && i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
			clean = false
		}
	}
	if !clean {
		var b strings.Builder
		for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
			if r < 0x20 && r != '\t' || r == 0x7f {
				continue
			}
			b.WriteRune(r)
		}
		s = b.String()
	}
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}
