package scan

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/latchkey/latchkey/keyformat"
)

// RuleFormats are the formats WriteRules writes.
var RuleFormats = []string{"gitleaks", "trufflehog"}

// WriteRules writes rules for another secret scanner (format "gitleaks":
// a .gitleaks.toml; "trufflehog": TruffleHog v3 custom detectors) that
// find the secrets of each prefix: "lksk_" always, then each of prefixes
// (accounts' key prefixes) once. The rules match the shape only: neither
// tool computes the checksum, so they can report a look-alike that
// latchkey scan would not. The prefixes must pass ValidatePrefixes.
func WriteRules(w io.Writer, format string, prefixes []string) error {
	if err := ValidatePrefixes(prefixes); err != nil {
		return err
	}
	ps := []string{keyformat.SecretPrefix}
	for _, p := range prefixes {
		if !slices.Contains(ps, p) {
			ps = append(ps, p)
		}
	}
	var b strings.Builder
	switch format {
	case "gitleaks":
		b.WriteString("title = \"latchkey\"\n")
		for _, p := range ps {
			fmt.Fprintf(&b, `
[[rules]]
id = %q
description = %q
# %s and 46 base62 characters, not inside a longer word.
regex = '''%s'''
secretGroup = 1
# Real secrets are random; this drops placeholders such as %sXXXX...
entropy = 4.0
keywords = [%q]
tags = ["latchkey", "secret"]
`, ruleID(p), ruleDescription(p), p, ruleRegex(p), p, p)
		}
	case "trufflehog":
		b.WriteString("detectors:\n")
		for _, p := range ps {
			fmt.Fprintf(&b, "  - name: %s\n    keywords:\n      - %s\n    regex:\n      secret: '%s'\n", ruleID(p), p, ruleRegex(p))
		}
	default:
		return fmt.Errorf("rule format %q: want %s", format, strings.Join(RuleFormats, " or "))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// ruleID names the rule of a prefix: the one of lksk_ keeps the name
// docs/integrations.md has always given it.
func ruleID(p string) string {
	if p == keyformat.SecretPrefix {
		return "latchkey-secret-access-key"
	}
	return "latchkey-secret-" + strings.ReplaceAll(strings.TrimSuffix(p, "_"), "_", "-")
}

func ruleDescription(p string) string {
	if p == keyformat.SecretPrefix {
		return "latchkey secret access key"
	}
	return "latchkey secret access key (" + p + ")"
}

// ruleRegex matches a secret of prefix p, not inside a longer word. A
// prefix is a-z, 0-9 and _ only: nothing to escape.
func ruleRegex(p string) string {
	return `(?:^|[^0-9A-Za-z])(` + p + `[0-9A-Za-z]{46})(?:[^0-9A-Za-z]|$)`
}
