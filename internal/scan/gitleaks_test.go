package scan

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// gitleaksRule returns the TOML rule that docs/integrations.md publishes,
// so the test runs exactly what users copy.
func gitleaksRule(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "integrations.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```toml\n(.*?)```").FindSubmatch(b)
	if m == nil {
		t.Fatal("docs/integrations.md has no ```toml block")
	}
	return string(m[1])
}

// gitleaksPath finds gitleaks on PATH or in GOPATH/bin. Missing, the test
// is skipped, except in CI where it fails.
func gitleaksPath(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("gitleaks"); err == nil {
		return p
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		p := filepath.Join(strings.TrimSpace(string(out)), "bin", "gitleaks")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("gitleaks is not installed; CI must run: go install github.com/zricethezav/gitleaks/v8@v8.30.1")
	}
	t.Skip("gitleaks not installed (go install github.com/zricethezav/gitleaks/v8@v8.30.1)")
	return ""
}

func TestGitleaksRule(t *testing.T) {
	gitleaks := gitleaksPath(t)
	r := rand.New(rand.NewPCG(5, 6))
	var planted []string
	sec := func() string {
		s := newSecret(t)
		planted = append(planted, s)
		return s
	}
	id := newID(t)
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	writeTree(t, tree, map[string]string{
		"config/app.yaml":   "latchkey:\n  access_key_id: " + id + "\n  secret: " + sec() + "\n",
		".env":              "LATCHKEY_SECRET=" + sec() + "\n",
		"src/client.go":     "package client\n\nconst key = \"" + sec() + "\"\n",
		"credentials":       "[default]\nlatchkey_access_key_id = " + id + "\nlatchkey_secret_access_key = " + sec() + "\n",
		"web/app.min.js":    strings.Repeat("var a=1;", 20000) + "k='" + sec() + "';",
		"docs/example.md":   "curl -H 'Authorization: Bearer " + sec() + "' http://127.0.0.1:8080/v1/verify\n",
		"docs/placeholder":  "secret = lksk_" + strings.Repeat("X", 46) + "\nsecret = lksk_<your-secret-here>\n",
		"notes/short.txt":   "lksk_" + strings.Repeat("a1B2", 11) + "\n", // 44 characters: too short
		"notes/longer.txt":  "x" + lookAlike(r) + "Zq\n",                 // inside a longer word
		"notes/prefixed.go": "k := \"xlksk_" + strings.Repeat("aB3", 15) + "c\"\n",
		// encoded forms, which gitleaks finds by decoding base64
		"k8s/secret.yaml": "apiVersion: v1\nkind: Secret\ndata:\n  LATCHKEY_SECRET: " + b64(sec()) + "\n",
		"har/session.txt": "Authorization: Basic " + b64(id+":"+sec()) + "\n",
	})
	conf := filepath.Join(dir, "gitleaks.toml")
	if err := os.WriteFile(conf, []byte(gitleaksRule(t)), 0o644); err != nil {
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
	var results []struct {
		RuleID, Secret string
	}
	if err := json.Unmarshal(b, &results); err != nil {
		t.Fatalf("gitleaks report: %v\n%s", err, b)
	}
	var got []string
	for _, res := range results {
		if res.RuleID != "latchkey-secret-access-key" {
			t.Errorf("unexpected rule %q", res.RuleID)
		}
		got = append(got, res.Secret)
	}
	sort.Strings(got)
	sort.Strings(planted)
	// Compare without printing secrets in a failure message.
	if d := cmp.Diff(masks(planted), masks(got)); d != "" || !cmp.Equal(planted, got) {
		t.Errorf("gitleaks found (-planted +found):\n%s", d)
	}

	// latchkey scan finds the same secrets in the same tree.
	fs, err := New(Options{}).Scan(t.Context(), []string{tree}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ours []string
	for _, f := range fs {
		if f.Rule == RuleSecret {
			ours = append(ours, f.Masked)
		}
	}
	sort.Strings(ours)
	if d := cmp.Diff(masks(planted), ours); d != "" {
		t.Errorf("latchkey scan found (-planted +found):\n%s", d)
	}
}

func masks(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		if len(s) > 9 {
			s = s[:9] + "..."
		}
		out[i] = s
	}
	sort.Strings(out)
	return out
}
