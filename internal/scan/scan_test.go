package scan

import (
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/latchkey/latchkey/keyformat"
)

// writeTree creates files (slash paths relative to dir) with their content.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// brief is what the tests compare of a finding.
type brief struct {
	Rule   Rule
	File   string
	Line   int
	Masked string
	ID     string
	Commit string
}

func briefs(fs []Finding) []brief {
	out := make([]brief, 0, len(fs))
	for _, f := range fs {
		out = append(out, brief{f.Rule, filepath.ToSlash(f.File), f.Line, f.Masked, f.AccessKeyID, f.Commit})
	}
	return out
}

var sortBriefs = cmpopts.SortSlices(func(a, b brief) bool {
	return a.File+a.Commit+string(a.Rule)+a.Masked < b.File+b.Commit+string(b.Rule)+b.Masked
})

func TestScanTree(t *testing.T) {
	var s [8]string
	for i := range s {
		s[i] = newSecret(t)
	}
	id := newID(t)
	bad := lookAlike(rand.New(rand.NewPCG(3, 4)))
	minified := "!function(){" + strings.Repeat("var a=1;", 600_000) + `k="` + s[6] + `"}();`
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"config.yaml":                 "api:\n  id: " + id + "\n  secret: " + s[0] + "\n",
		"src/deep/er/main.go":         "package main\n\nconst k = \"" + s[1] + "\"\n",
		"src/lookalike.txt":           bad + "\n" + bad[:30] + "\n",
		"vendor/lib/lib.go":           s[2],
		"web/node_modules/x/index.js": s[3],
		".git/config":                 s[4],
		"assets/logo.png":             "\x89PNG\x00\x00" + s[5],
		"dist/app.min.js":             minified,
		"clean.txt":                   strings.Repeat("nothing to see here lksk_\n", 1000),
	})
	if err := os.Symlink(filepath.Join(dir, "config.yaml"), filepath.Join(dir, "link.yaml")); err != nil {
		t.Fatal(err)
	}
	p := func(name string) string { return filepath.ToSlash(filepath.Join(dir, name)) }
	base := []brief{
		{RuleSecret, p("config.yaml"), 3, keyformat.Mask(s[0]), id, ""},
		{RuleSecret, p("src/deep/er/main.go"), 3, keyformat.Mask(s[1]), "", ""},
		{RuleSecret, p("dist/app.min.js"), 1, keyformat.Mask(s[6]), "", ""},
	}
	tests := []struct {
		name string
		opts Options
		want []brief
	}{
		{"defaults", Options{}, base},
		{"files only", Options{History: HistoryNever}, base},
		{"vendored", Options{IncludeVendored: true}, append(base[:3:3],
			brief{RuleSecret, p("vendor/lib/lib.go"), 1, keyformat.Mask(s[2]), "", ""},
			brief{RuleSecret, p("web/node_modules/x/index.js"), 1, keyformat.Mask(s[3]), "", ""})},
		{"git dir", Options{IncludeGitDir: true}, append(base[:3:3],
			brief{RuleSecret, p(".git/config"), 1, keyformat.Mask(s[4]), "", ""})},
		{"binary", Options{IncludeBinary: true}, append(base[:3:3],
			brief{RuleSecret, p("assets/logo.png"), 1, keyformat.Mask(s[5]), "", ""})},
		{"one worker", Options{Workers: 1}, base},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := New(tt.opts)
			var warned []string
			got, err := sc.Scan(t.Context(), []string{dir}, nil, func(s string) { warned = append(warned, s) })
			if err != nil {
				t.Fatal(err)
			}
			// The tree has a .git directory that is no repository.
			if tt.opts.History == HistoryAuto && len(warned) != 1 {
				t.Errorf("warnings = %q, want one about .git", warned)
			}
			if d := cmp.Diff(tt.want, briefs(got), sortBriefs); d != "" {
				t.Errorf("findings (-want +got):\n%s", d)
			}
			st := sc.Stats()
			if st.Bytes < int64(len(minified)) || (!tt.opts.IncludeBinary && st.Binary != 1) {
				t.Errorf("stats = %+v", st)
			}
		})
	}
}

func TestScanFileAndStdin(t *testing.T) {
	s1, s2 := newSecret(t), newSecret(t)
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"a.txt": "x\n" + s1})
	got, err := New(Options{}).Scan(t.Context(), []string{filepath.Join(dir, "a.txt"), "-"}, strings.NewReader("\x00bin "+s2), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []brief{
		{RuleSecret, "-", 1, keyformat.Mask(s2), "", ""},
		{RuleSecret, filepath.ToSlash(filepath.Join(dir, "a.txt")), 2, keyformat.Mask(s1), "", ""},
	}
	if d := cmp.Diff(want, briefs(got)); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	for _, f := range got {
		if f.Digest == (keyformat.Digest{}) || (f.File == "-" && f.Digest != keyformat.Sum(s2)) {
			t.Errorf("digest of %s not set right", f.File)
		}
	}
}

// A directory given through a symbolic link is walked; links inside it are
// not followed.
func TestScanSymlinkedRoot(t *testing.T) {
	s1 := newSecret(t)
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"real/a.txt": s1})
	link := filepath.Join(dir, "link")
	if err := os.Symlink(filepath.Join(dir, "real"), link); err != nil {
		t.Fatal(err)
	}
	got, err := New(Options{}).Scan(t.Context(), []string{link}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []brief{{RuleSecret, filepath.ToSlash(filepath.Join(link, "a.txt")), 1, keyformat.Mask(s1), "", ""}}
	if d := cmp.Diff(want, briefs(got)); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

func TestScanMissingPath(t *testing.T) {
	_, err := New(Options{}).Scan(t.Context(), []string{filepath.Join(t.TempDir(), "nope")}, nil, nil)
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v, want not exist", err)
	}
}

func TestScanUnreadable(t *testing.T) {
	dir := t.TempDir()
	s1 := newSecret(t)
	writeTree(t, dir, map[string]string{"a.txt": "x", "b.txt": s1})
	sc := New(Options{})
	sc.open = func(p string) (io.ReadCloser, error) {
		if filepath.Base(p) == "a.txt" {
			return nil, fs.ErrPermission
		}
		return os.Open(p)
	}
	var warned []string
	got, err := sc.Scan(t.Context(), []string{dir}, nil, func(s string) { warned = append(warned, s) })
	if !errors.Is(err, ErrUnreadable) || len(warned) != 1 || !strings.Contains(warned[0], "a.txt") {
		t.Fatalf("err = %v, warnings %q", err, warned)
	}
	// What could be read is still reported.
	if len(got) != 1 || got[0].Masked != keyformat.Mask(s1) {
		t.Errorf("findings = %v", briefs(got))
	}
}

// Credentials and .env files with a secret are flagged when git would
// commit them, and not when they are ignored or outside a work tree.
func TestCredentialsFiles(t *testing.T) {
	// The user's own excludes file must not change the answers.
	t.Setenv("HOME", t.TempDir())
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	id := newID(t)
	creds := func() string {
		return "[default]\nlatchkey_access_key_id = " + id + "\nlatchkey_secret_access_key = " + newSecret(t) + "\n"
	}
	env := func() string { return "DB=postgres://x\nLATCHKEY_SECRET=" + newSecret(t) + "\n" }
	tests := []struct {
		name      string
		files     map[string]string
		flagged   []string // files with a credentials-file finding
		noGitRepo bool
	}{
		{name: "not ignored", files: map[string]string{"credentials": creds(), ".env": env(), "deploy/prod.env": env()},
			flagged: []string{".env", "credentials", "deploy/prod.env"}},
		{name: "ignored", files: map[string]string{".gitignore": ".env*\n*.env\ncredentials\n", "credentials": creds(), ".env.local": env(), "a/b.env": env()}},
		{name: "ignored directory", files: map[string]string{".gitignore": "secrets/\n", "secrets/credentials": creds(), "secrets/.env": env()}},
		{name: "negated in a subdirectory", files: map[string]string{".gitignore": "*.env\n", "app/.gitignore": "!keep.env\n", "app/keep.env": env(), "app/other.env": env()},
			flagged: []string{"app/keep.env"}},
		{name: "info exclude", files: map[string]string{".git/info/exclude": ".env\n", ".env": env()}},
		{name: "outside a work tree", files: map[string]string{".env": env(), "credentials": creds()}, noGitRepo: true},
		{name: "other file with a secret", files: map[string]string{"notes.txt": "secret " + newSecret(t)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if !tt.noGitRepo {
				if err := os.MkdirAll(filepath.Join(dir, ".git", "info"), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			writeTree(t, dir, tt.files)
			got, err := New(Options{History: HistoryNever}).Scan(t.Context(), []string{dir}, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			var flagged []string
			secrets := 0
			for _, f := range got {
				switch f.Rule {
				case RuleCredentialsFile:
					rel, _ := filepath.Rel(dir, f.File)
					flagged = append(flagged, filepath.ToSlash(rel))
				case RuleSecret:
					secrets++
				}
			}
			if d := cmp.Diff(tt.flagged, flagged, cmpopts.EquateEmpty(), cmpopts.SortSlices(func(a, b string) bool { return a < b })); d != "" {
				t.Errorf("flagged (-want +got):\n%s", d)
			}
			if want := len(tt.files) - strings.Count(strings.Join(keys(tt.files), " "), "gitignore") - strings.Count(strings.Join(keys(tt.files), " "), "exclude"); secrets != want {
				t.Errorf("%d secrets reported, want %d: secrets in ignored files are still reported", secrets, want)
			}
		})
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
