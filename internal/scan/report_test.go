package scan

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/latchkey/latchkey/keyformat"
)

func sampleFindings(t *testing.T) ([]Finding, []string) {
	t.Helper()
	s1, s2 := newSecret(t), newSecret(t)
	id := newID(t)
	fs := []Finding{
		secretFinding("src/app config.go", match{line: 3, col: 7, col16: 6, size: keyformat.SecretLen, secret: s1, keyID: id}),
		secretFinding("deploy/.env", match{line: 1, col: 16, col16: 16, size: keyformat.SecretLen, secret: s2}),
		{Rule: RuleCredentialsFile, File: "deploy/.env", Line: 1, Masked: keyformat.Mask(s2), Digest: keyformat.Sum(s2)},
		secretFinding("-", match{line: 2, col: 1, col16: 1, size: keyformat.SecretLen, secret: s1}),
	}
	fs[1].Commit = "0123456789abcdef0123456789abcdef01234567"
	fs[1].CommitTime = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	fs[1].Author = "Dev"
	return fs, []string{s1, s2}
}

// No output format ever prints a whole secret.
func TestReportsNeverHoldSecrets(t *testing.T) {
	fs, secrets := sampleFindings(t)
	for _, tt := range []struct {
		name  string
		write func(*bytes.Buffer) error
	}{
		{"text", func(b *bytes.Buffer) error { return WriteText(b, fs) }},
		{"json", func(b *bytes.Buffer) error { return WriteJSON(b, fs) }},
		{"sarif", func(b *bytes.Buffer) error { return WriteSARIF(b, fs, "test", "") }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := tt.write(&b); err != nil {
				t.Fatal(err)
			}
			for _, s := range secrets {
				if strings.Contains(b.String(), s) || strings.Contains(b.String(), s[:keyformat.SecretLen-10]) {
					t.Fatalf("output holds a secret:\n%s", b.String())
				}
				if !strings.Contains(b.String(), keyformat.Mask(s)) {
					t.Errorf("output lacks the masked secret %s", keyformat.Mask(s))
				}
			}
		})
	}
}

func TestWriteText(t *testing.T) {
	fs, secrets := sampleFindings(t)
	var b bytes.Buffer
	if err := WriteText(&b, fs); err != nil {
		t.Fatal(err)
	}
	m1, m2 := keyformat.Mask(secrets[0]), keyformat.Mask(secrets[1])
	want := "src/app config.go:3:7: latchkey secret access key " + m1 + " (access key ID " + fs[0].AccessKeyID + ")\n" +
		"deploy/.env:1:16: latchkey secret access key " + m2 + " [commit 0123456789ab 2026-05-01 Dev]\n" +
		"deploy/.env:1: credentials file with a latchkey secret is in a git work tree and not ignored; add it to .gitignore or move it out of the tree\n" +
		"<stdin>:2:1: latchkey secret access key " + m1 + "\n"
	if d := cmp.Diff(want, b.String()); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

func TestWriteJSON(t *testing.T) {
	fs, secrets := sampleFindings(t)
	var b bytes.Buffer
	if err := WriteJSON(&b, fs); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Findings []map[string]any `json:"findings"`
	}
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	sum := keyformat.Sum(secrets[1])
	want := map[string]any{
		"rule": "latchkey-secret-access-key", "file": "deploy/.env", "line": 1.0, "column": 16.0,
		"commit": "0123456789abcdef0123456789abcdef01234567", "commit_time": "2026-05-01T12:00:00Z",
		"author": "Dev", "secret": keyformat.Mask(secrets[1]), "sha256": hex.EncodeToString(sum[:]),
		"message": "latchkey secret access key " + keyformat.Mask(secrets[1]),
	}
	if d := cmp.Diff(want, got.Findings[1]); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	// Field names are snake_case, as in the management API.
	for _, f := range got.Findings {
		for k := range f {
			if !snakeCase.MatchString(k) {
				t.Errorf("field %q is not snake_case", k)
			}
		}
	}
	if got.Findings[0]["access_key_id"] == nil {
		t.Errorf("the access key ID found next to a secret is not under access_key_id: %v", got.Findings[0])
	}

	b.Reset()
	if err := WriteJSON(&b, nil); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(b.String()); got != "{\n  \"findings\": []\n}" {
		t.Errorf("empty report = %s", got)
	}
}

var snakeCase = regexp.MustCompile(`^[a-z0-9]+(_[a-z0-9]+)*$`)

// What code scanning reads, checked by hand; TestSARIFSchema validates a
// real scan's log against the SARIF 2.1.0 schema.
func TestWriteSARIF(t *testing.T) {
	fs, _ := sampleFindings(t)
	var b bytes.Buffer
	if err := WriteSARIF(&b, fs, "1.2.3", ""); err != nil {
		t.Fatal(err)
	}
	var log map[string]any
	if err := json.Unmarshal(b.Bytes(), &log); err != nil {
		t.Fatal(err)
	}
	get := func(v any, path ...any) any {
		t.Helper()
		for _, p := range path {
			switch k := p.(type) {
			case string:
				m, ok := v.(map[string]any)
				if !ok {
					t.Fatalf("%v: not an object at %q", path, k)
				}
				if v, ok = m[k]; !ok {
					t.Fatalf("%v: no %q", path, k)
				}
			case int:
				a, ok := v.([]any)
				if !ok || k >= len(a) {
					t.Fatalf("%v: no element %d", path, k)
				}
				v = a[k]
			}
		}
		return v
	}
	if v := get(log, "version"); v != "2.1.0" {
		t.Errorf("version = %v", v)
	}
	if v, _ := get(log, "$schema").(string); !strings.Contains(v, "sarif") || !strings.Contains(v, "2.1.0") {
		t.Errorf("$schema = %v", v)
	}
	run := get(log, "runs", 0)
	if v := get(run, "tool", "driver", "name"); v != "latchkey" {
		t.Errorf("driver name = %v", v)
	}
	rules := get(run, "tool", "driver", "rules").([]any)
	ruleIDs := map[string]int{}
	for i, r := range rules {
		id, _ := get(r, "id").(string)
		ruleIDs[id] = i
		for _, k := range []string{"shortDescription", "fullDescription", "help"} {
			if s, _ := get(r, k, "text").(string); s == "" {
				t.Errorf("rule %s: empty %s", id, k)
			}
		}
		if lvl := get(r, "defaultConfiguration", "level"); lvl != "error" {
			t.Errorf("rule %s: level %v", id, lvl)
		}
		if sev, _ := get(r, "properties", "security-severity").(string); sev == "" {
			t.Errorf("rule %s: no security-severity", id)
		}
	}
	results := get(run, "results").([]any)
	if len(results) != len(fs) {
		t.Fatalf("%d results, want %d", len(results), len(fs))
	}
	validLevels := map[any]bool{"none": true, "note": true, "warning": true, "error": true}
	for i, r := range results {
		id, _ := get(r, "ruleId").(string)
		idx, ok := ruleIDs[id]
		if !ok {
			t.Errorf("result %d: ruleId %q is not a rule of the driver", i, id)
		}
		if int(get(r, "ruleIndex").(float64)) != idx {
			t.Errorf("result %d: ruleIndex does not point at %s", i, id)
		}
		if !validLevels[get(r, "level")] {
			t.Errorf("result %d: level %v", i, get(r, "level"))
		}
		if s, _ := get(r, "message", "text").(string); s == "" {
			t.Errorf("result %d: empty message", i)
		}
		loc := get(r, "locations", 0, "physicalLocation")
		uri, _ := get(loc, "artifactLocation", "uri").(string)
		if uri == "" || strings.Contains(uri, " ") || strings.Contains(uri, `\`) {
			t.Errorf("result %d: uri %q is not a URI reference", i, uri)
		}
		if line := get(loc, "region", "startLine").(float64); line < 1 {
			t.Errorf("result %d: startLine %v", i, line)
		}
	}
	if uri := get(results[0], "locations", 0, "physicalLocation", "artifactLocation", "uri"); uri != "src/app%20config.go" {
		t.Errorf("uri = %v", uri)
	}
	if base := get(results[0], "locations", 0, "physicalLocation", "artifactLocation", "uriBaseId"); base != "%SRCROOT%" {
		t.Errorf("uriBaseId = %v", base)
	}
	// %SRCROOT% is the directory scanned (here the working directory),
	// as an absolute file URI ending in "/".
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := get(run, "originalUriBaseIds", "%SRCROOT%", "uri"), "file://"+filepath.ToSlash(wd)+"/"; got != want {
		t.Errorf("originalUriBaseIds = %v, want %s", got, want)
	}
	if v := get(run, "columnKind"); v != "utf16CodeUnits" {
		t.Errorf("columnKind = %v", v)
	}
	// Regions: the secret from its first to the column after its last
	// character.
	for i, want := range []map[string]any{
		{"startLine": 3.0, "startColumn": 6.0, "endLine": 3.0, "endColumn": float64(6 + keyformat.SecretLen)},
		{"startLine": 1.0, "startColumn": 16.0, "endLine": 1.0, "endColumn": float64(16 + keyformat.SecretLen)},
		{"startLine": 1.0}, // no column known
		{"startLine": 2.0, "startColumn": 1.0, "endLine": 2.0, "endColumn": float64(1 + keyformat.SecretLen)},
	} {
		if d := cmp.Diff(want, get(results[i], "locations", 0, "physicalLocation", "region")); d != "" {
			t.Errorf("result %d: region (-want +got):\n%s", i, d)
		}
	}
	// One primaryLocationLineHash per location, in GitHub's "hash:N" form.
	seen := map[any]int{}
	for i, r := range results {
		fp := get(r, "partialFingerprints", "primaryLocationLineHash")
		if s, _ := fp.(string); !regexp.MustCompile(`^[0-9a-f]{16}:[1-9][0-9]*$`).MatchString(s) {
			t.Errorf("result %d: primaryLocationLineHash %v", i, fp)
		}
		if j, dup := seen[fp]; dup {
			t.Errorf("results %d and %d share primaryLocationLineHash %v", j, i, fp)
		}
		seen[fp] = i
	}
	if c := get(results[1], "properties", "commitSha"); c != fs[1].Commit {
		t.Errorf("commitSha = %v", c)
	}

	// An empty run still has a results array, as code scanning requires
	// to close earlier alerts.
	b.Reset()
	if err := WriteSARIF(&b, nil, "1", ""); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `"results": []`) {
		t.Errorf("empty log lacks results: %s", b.String())
	}
}

func TestSarifArtifact(t *testing.T) {
	root := filepath.Join(t.TempDir(), "repo")
	tests := []struct {
		file string
		want sarifArtifact
	}{
		{filepath.Join(root, "a/b.go"), sarifArtifact{"a/b.go", "%SRCROOT%"}},
		{filepath.Join(root, "a/../c d#.go"), sarifArtifact{"c%20d%23.go", "%SRCROOT%"}},
		{filepath.Join(root, "x:y.go"), sarifArtifact{"./x:y.go", "%SRCROOT%"}},
		{filepath.Join(root, "..", "other", "x.go"), sarifArtifact{"file://" + filepath.ToSlash(filepath.Dir(root)) + "/other/x.go", ""}},
		{filepath.Join(root+"2", "x.go"), sarifArtifact{"file://" + filepath.ToSlash(root) + "2/x.go", ""}},
		{"-", sarifArtifact{"stdin", ""}},
	}
	for _, tt := range tests {
		if got := sarifArtifactFor(tt.file, root); got != tt.want {
			t.Errorf("sarifArtifactFor(%q) = %+v, want %+v", tt.file, got, tt.want)
		}
	}
}

// The same secret twice in one file, and in another file: each location
// its own fingerprint, numbered within its file.
func TestSARIFFingerprints(t *testing.T) {
	s1, s2 := newSecret(t), newSecret(t)
	m := func(line int, s string) match {
		return match{line: line, col: 1, col16: 1, size: keyformat.SecretLen, secret: s}
	}
	fs := []Finding{
		secretFinding("a.go", m(1, s1)), secretFinding("a.go", m(5, s1)), secretFinding("a.go", m(6, s2)),
		secretFinding("b.go", m(1, s1)),
	}
	var b bytes.Buffer
	if err := WriteSARIF(&b, fs, "1", t.TempDir()); err != nil {
		t.Fatal(err)
	}
	var log struct {
		Runs []struct {
			Results []struct {
				PartialFingerprints map[string]string
			}
		}
	}
	if err := json.Unmarshal(b.Bytes(), &log); err != nil {
		t.Fatal(err)
	}
	var hashes, counters []string
	for _, r := range log.Runs[0].Results {
		h, n, _ := strings.Cut(r.PartialFingerprints["primaryLocationLineHash"], ":")
		hashes, counters = append(hashes, h), append(counters, n)
	}
	if hashes[0] != hashes[1] || hashes[1] == hashes[2] || hashes[0] == hashes[3] || hashes[2] == hashes[3] {
		t.Errorf("hashes %v: want the first two equal (one secret, one file), the others different", hashes)
	}
	if d := cmp.Diff([]string{"1", "2", "1", "1"}, counters); d != "" {
		t.Errorf("counters (-want +got):\n%s", d)
	}
}

func TestProgressLine(t *testing.T) {
	tests := []struct {
		name string
		st   Stats
		want string
	}{
		{"files", Stats{Files: 12345, Bytes: 56_700_000, Findings: 1}, "scanning: 12,345 files, 56.7 MB, 1 finding, 3s"},
		{"history", Stats{Commits: 1200, Blobs: 1500, BlobsDone: 999, Bytes: 1e6}, "scanning: 1,200 commits, 999/1,500 blobs, 1.0 MB, 0 findings, 3s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := progressLine(tt.st, 3500*time.Millisecond); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	got := Summary(Stats{Files: 2, Bytes: 3e6, Binary: 1, Findings: 2, Commits: 1}, 1234*time.Millisecond)
	if want := "scanned 2 files (3.0 MB) from 1 commit in 1.234s: 2 findings; 1 file skipped as binary"; got != want {
		t.Errorf("Summary = %q, want %q", got, want)
	}
}

func TestStartProgress(t *testing.T) {
	t.Run("slow scan", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var b lockedBuffer
			stop := StartProgress(&b, func() Stats { return Stats{Files: 1} })
			time.Sleep(progressDelay - time.Millisecond)
			synctest.Wait()
			if b.Len() != 0 {
				t.Fatalf("drawn before %v: %q", progressDelay, b.String())
			}
			time.Sleep(progressEvery + time.Millisecond)
			synctest.Wait()
			if got, want := strings.Count(b.String(), "scanning: 1 file, "), 2; got != want {
				t.Errorf("drawn %d times, want %d: %q", got, want, b.String())
			}
			stop()
			if !strings.HasSuffix(b.String(), "\r\x1b[K") {
				t.Errorf("line not erased: %q", b.String())
			}
		})
	})
	t.Run("quick scan", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var b lockedBuffer
			stop := StartProgress(&b, func() Stats { return Stats{} })
			time.Sleep(progressDelay / 2)
			stop()
			if b.Len() != 0 {
				t.Errorf("a quick scan drew %q", b.String())
			}
		})
	})
}

// lockedBuffer lets the test read what the progress goroutine writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *lockedBuffer) Len() int { return len(l.String()) }
