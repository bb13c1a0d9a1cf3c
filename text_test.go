package latchkey

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCleanText(t *testing.T) {
	tests := []struct {
		name, in string
		max      int
		want     string
	}{
		{"clean", "curl/8.5.0", 256, "curl/8.5.0"},
		{"tab kept", "a\tb", 256, "a\tb"},
		{"NUL and controls dropped", "a\x00b\x01c\nd\x7f", 256, "abcd"},
		{"not UTF-8 replaced", "a\xffb\xc3\x28", 256, "a\uFFFDb\uFFFD("},
		{"cut", "abcdef", 3, "abc"},
		{"cut before a split character", "ab\u00e9", 3, "ab"},
		{"cut before a split four-byte character", "a\U0001F600", 4, "a"},
		{"cut after two-byte characters", "\u00e9\u00e9ab", 5, "\u00e9\u00e9a"},
		{"zero", "abc", 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := CleanText(tc.in, tc.max); got != tc.want {
				t.Errorf("CleanText(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
			}
		})
	}
}

func FuzzCleanText(f *testing.F) {
	f.Add("curl/8.5.0", 256)
	f.Add("a\x00\xff\xc3\x28\U0001F600", 5)
	f.Fuzz(func(t *testing.T, s string, max int) {
		if max < 0 || max > 1<<16 {
			return
		}
		got := CleanText(s, max)
		if !utf8.ValidString(got) || len(got) > max {
			t.Fatalf("CleanText(%q, %d) = %q: not valid UTF-8 or too long", s, max, got)
		}
		for _, r := range got {
			if r < 0x20 && r != '\t' || r == 0x7f {
				t.Fatalf("CleanText(%q, %d) = %q keeps a control character", s, max, got)
			}
		}
		full := CleanText(s, len(s)*3)
		if !strings.HasPrefix(full, got) || len(got) < min(len(full), max-utf8.UTFMax+1) {
			t.Fatalf("CleanText(%q, %d) = %q: not the longest prefix of %q that fits", s, max, got, full)
		}
		if CleanText(got, max) != got {
			t.Fatalf("CleanText is not idempotent on %q", got)
		}
		if utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }) && len(s) <= max && got != s {
			t.Fatalf("CleanText changed clean text %q to %q", s, got)
		}
	})
}
