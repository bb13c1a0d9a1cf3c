package scan

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/latchkey/latchkey/keyformat"
)

func newPrefixed(t testing.TB, prefix string) string {
	t.Helper()
	s, err := keyformat.NewSecretWithPrefix(prefix)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// badChecksum returns s with its last character changed: the right shape,
// the wrong checksum.
func badChecksum(s string) string {
	c := byte('0')
	if s[len(s)-1] == '0' {
		c = '1'
	}
	return s[:len(s)-1] + string(c)
}

// maskAll is keyformat.Mask of each secret, sorted: what findings show.
func maskAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = keyformat.Mask(s)
	}
	slices.Sort(out)
	return out
}

func secretsFound(t *testing.T, fs []Finding) []string {
	t.Helper()
	var out []string
	for _, f := range fs {
		if f.Rule == RuleSecret {
			out = append(out, f.Masked)
		}
	}
	slices.Sort(out)
	return out
}

// TestScanPrefixes: secrets with an account's prefix are found when the
// prefix is given, checksum checked; the lksk_ ones always.
func TestScanPrefixes(t *testing.T) {
	live, test, old := newPrefixed(t, "acme_live_"), newPrefixed(t, "acme_test_"), newSecret(t)
	nested := newPrefixed(t, "live_")
	in := strings.Join([]string{
		"API_KEY=" + live,
		`{"key": "` + test + `"}`,
		"lksk: " + old,
		"look-alike: " + badChecksum(live),
		"prefix changed: acme_test_" + live[len("acme_live_"):],
		"short: " + live[:len(live)-1],
		"nested prefixes: x" + nested,
	}, "\n")
	tests := []struct {
		name     string
		prefixes []string
		want     []string
	}{
		{"lksk_ only without prefixes", nil, []string{old}},
		{"one prefix", []string{"acme_live_"}, []string{live, old}},
		{"two prefixes", []string{"acme_live_", "acme_test_"}, []string{live, test, old}},
		{"a prefix that ends another", []string{"acme_live_", "live_"}, []string{live, nested, old}},
		{"lksk_ given again", []string{"lksk_", "acme_live_", "acme_live_"}, []string{live, old}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs, err := New(Options{Prefixes: tt.prefixes}).ScanReader("in", strings.NewReader(in))
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(maskAll(tt.want), secretsFound(t, fs)); d != "" {
				t.Errorf("found (-want +got):\n%s", d)
			}
			for _, f := range fs {
				if strings.HasPrefix(f.Masked, "acme_live_") && f.Digest != keyformat.Sum(live) {
					t.Errorf("finding %s has the digest of another secret", f.Masked)
				}
			}
		})
	}
}

// TestScanHistoryPrefixed: a prefixed secret committed and then removed is
// found in the history, at the commit that added it.
func TestScanHistoryPrefixed(t *testing.T) {
	live := newPrefixed(t, "acme_live_")
	r := newTestRepo(t)
	h := r.commit("add config", map[string]string{"config/prod.env": "ACME_KEY=" + live + "\n"}, nil)
	r.commit("remove it", map[string]string{"README": "nothing here\n"}, []string{"config/prod.env"})
	fs, err := New(Options{Prefixes: []string{"acme_live_"}, History: HistoryOnly}).ScanHistory(t.Context(), r.dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 1 || fs[0].Commit != h.String() || !strings.HasSuffix(filepath.ToSlash(fs[0].File), "config/prod.env") || fs[0].Masked != keyformat.Mask(live) {
		t.Fatalf("history findings = %+v, want the prefixed secret at %s", briefs(fs), h)
	}
	if fs, _ := New(Options{History: HistoryOnly}).ScanHistory(t.Context(), r.dir); len(fs) != 0 {
		t.Errorf("without the prefix: %d findings, want none", len(fs))
	}
}

func TestValidatePrefixes(t *testing.T) {
	if err := ValidatePrefixes([]string{"lksk_", "acme_live_"}); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{"Acme_", "lkak_", "x"} {
		if err := ValidatePrefixes([]string{"acme_", bad}); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("ValidatePrefixes(%q) = %v, want an error naming it", bad, err)
		}
	}
}

// TestRulesDocumented: docs/integrations.md publishes what WriteRules
// writes for lksk_ alone.
func TestRulesDocumented(t *testing.T) {
	var b strings.Builder
	if err := WriteRules(&b, "gitleaks", nil); err != nil {
		t.Fatal(err)
	}
	if got, want := b.String(), gitleaksRule(t); got != want {
		t.Errorf("docs/integrations.md's gitleaks rule differs from latchkey scan rules:\n%s", cmp.Diff(want, got))
	}
	// The example for acme_live_ is the second toml block.
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "integrations.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```toml\n(.*?)```").FindAllSubmatch(doc, -1)
	b.Reset()
	if err := WriteRules(&b, "gitleaks", []string{"acme_live_"}); err != nil {
		t.Fatal(err)
	}
	if len(blocks) < 2 || string(blocks[1][1]) != b.String() {
		t.Errorf("docs/integrations.md's rules for acme_live_ differ from latchkey scan rules --prefix acme_live_")
	}
	if err := WriteRules(&b, "yara", nil); err == nil {
		t.Error("WriteRules accepted an unknown format")
	}
	if err := WriteRules(&b, "gitleaks", []string{"Bad"}); err == nil {
		t.Error("WriteRules accepted a bad prefix")
	}
}

// TestGitleaksPrefixRules runs the real gitleaks with the rules generated
// for a prefix. It finds the prefixed secret and the lksk_ one, not
// placeholders, short runs or other prefixes; like every shape rule it
// also reports a look-alike with a wrong checksum, which latchkey scan on
// the same tree does not.
func TestGitleaksPrefixRules(t *testing.T) {
	gitleaks := gitleaksPath(t)
	live, old, other := newPrefixed(t, "acme_live_"), newSecret(t), newPrefixed(t, "beta_")
	bad := badChecksum(newPrefixed(t, "acme_live_"))
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	writeTree(t, tree, map[string]string{
		"config/app.yaml":     "acme:\n  key: " + live + "\n",
		".env":                "LATCHKEY_SECRET=" + old + "\n",
		"notes/lookalike.txt": "key = " + bad + "\n",
		"notes/placeholder":   "key = acme_live_" + strings.Repeat("X", 46) + "\n",
		"notes/short.txt":     "key = " + live[:len(live)-2] + "\n",
		"notes/other-prefix":  "key = " + other + "\n",
		// The right shape inside a longer word, its checksum wrong: a
		// plain "x" + live + "Z" would be reported by latchkey scan,
		// which finds checksum-valid secrets wherever they stand.
		"notes/inside-a-word1": "key = x" + badChecksum(live) + "Z\n",
	})
	var rules strings.Builder
	if err := WriteRules(&rules, "gitleaks", []string{"acme_live_"}); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "gitleaks.toml")
	if err := os.WriteFile(conf, []byte(rules.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	report := filepath.Join(dir, "report.json")
	cmd := exec.Command(gitleaks, "dir", "--no-banner", "--log-level", "error",
		"--config", conf, "--report-format", "json", "--report-path", report, "--exit-code", "0", tree)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gitleaks: %v\n%s", err, out)
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var results []struct{ RuleID, Secret string }
	if err := json.Unmarshal(b, &results); err != nil {
		t.Fatalf("gitleaks report: %v", err)
	}
	var got, rulesHit []string
	for _, r := range results {
		got = append(got, r.Secret)
		rulesHit = append(rulesHit, r.RuleID)
	}
	slices.Sort(got)
	slices.Sort(rulesHit)
	want := []string{live, old, bad}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("gitleaks found %v, want %v", maskAll(got), maskAll(want))
	}
	if d := cmp.Diff([]string{"latchkey-secret-access-key", "latchkey-secret-acme-live", "latchkey-secret-acme-live"}, rulesHit); d != "" {
		t.Errorf("rules (-want +got):\n%s", d)
	}
	// latchkey scan checks the checksum: the look-alike is not reported.
	fs, err := New(Options{Prefixes: []string{"acme_live_"}}).Scan(t.Context(), []string{tree}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(maskAll([]string{live, old}), secretsFound(t, fs)); d != "" {
		t.Errorf("latchkey scan found (-want +got):\n%s", d)
	}
}
