package scan_test

import (
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/google/go-cmp/cmp"
)

// sarifLog is what these tests read of a SARIF log.
type sarifLog struct {
	Runs []struct {
		OriginalURIBaseIDs map[string]struct{ URI string } `json:"originalUriBaseIds"`
		ColumnKind         string                          `json:"columnKind"`
		Results            []struct {
			RuleID    string `json:"ruleId"`
			Locations []struct {
				PhysicalLocation struct {
					ArtifactLocation struct {
						URI       string `json:"uri"`
						URIBaseID string `json:"uriBaseId"`
					} `json:"artifactLocation"`
					Region struct {
						StartLine, StartColumn, EndLine, EndColumn int
					} `json:"region"`
				} `json:"physicalLocation"`
			} `json:"locations"`
			PartialFingerprints map[string]string `json:"partialFingerprints"`
		} `json:"results"`
	} `json:"runs"`
}

// sarifProject writes files whose secrets sit after characters of one to
// four UTF-8 bytes (one or two UTF-16 code units), the same secret twice
// on one line, and returns the directory and the secrets.
func sarifProject(t *testing.T, dir string) []string {
	t.Helper()
	s1, s2 := secret(t), secret(t)
	files := map[string]string{
		"sub/a.txt":   "first line, é\nclé = \"é\U0001D11E键 " + s1 + "\" ; again " + s1 + "\n",
		"sub/b c.txt": "\U0001F511 " + s2 + "\n",
		".env":        "API_KEY=" + s2 + "\n",
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return []string{s1, s2}
}

// TestScanSARIFResolves runs `latchkey scan --format sarif` from several
// working directories, on relative and absolute paths, inside and outside
// a git work tree, and follows every result to its file: its URI resolved
// against originalUriBaseIds, its region read in UTF-16 code units, must
// hold exactly a secret that was planted there, and every location has a
// fingerprint of its own.
func TestScanSARIFResolves(t *testing.T) {
	requireGit(t)
	tmp := t.TempDir()
	plain := filepath.Join(tmp, "plain")
	repo := filepath.Join(tmp, "repo")
	secrets := append(sarifProject(t, plain), sarifProject(t, repo)...)
	if out, err := git(t, repo, nil, "init", "-q"); err != nil {
		t.Fatalf("git init: %v\n%s", err, out)
	}
	tests := []struct {
		name     string
		wd       string
		args     []string
		root     string // %SRCROOT%
		wantURIs []string
	}{
		{name: "a directory by its absolute path, from elsewhere", wd: tmp, args: []string{plain},
			root: plain, wantURIs: []string{".env", "sub/a.txt", "sub/a.txt", "sub/b%20c.txt"}},
		{name: "the working directory", wd: filepath.Join(plain, "sub"), args: []string{"."},
			root: filepath.Join(plain, "sub"), wantURIs: []string{"a.txt", "a.txt", "b%20c.txt"}},
		{name: "a file and a directory", wd: tmp, args: []string{"plain/sub/a.txt", "plain/sub"},
			root: filepath.Join(plain, "sub"), wantURIs: []string{"a.txt", "a.txt", "a.txt", "a.txt", "b%20c.txt"}},
		{name: "a subdirectory of a repository: paths from its top", wd: filepath.Join(repo, "sub"), args: []string{"--no-git", "."},
			root: repo, wantURIs: []string{"sub/a.txt", "sub/a.txt", "sub/b%20c.txt"}},
		{name: "a repository from above it", wd: tmp, args: []string{"--no-git", "repo"},
			root: repo, wantURIs: []string{".env", ".env", "sub/a.txt", "sub/a.txt", "sub/b%20c.txt"}}, // .env: the secret, and the file not ignored
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Chdir(tt.wd)
			out, stderr, code := latchkey(t, "", append([]string{"scan", "--format", "sarif"}, tt.args...)...)
			if code != 1 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			var log sarifLog
			if err := json.Unmarshal([]byte(out), &log); err != nil {
				t.Fatal(err)
			}
			run := log.Runs[0]
			if run.ColumnKind != "utf16CodeUnits" {
				t.Errorf("columnKind %q", run.ColumnKind)
			}
			base := run.OriginalURIBaseIDs["%SRCROOT%"].URI
			if want := "file://" + filepath.ToSlash(tt.root) + "/"; base != want {
				t.Errorf("%%SRCROOT%% = %q, want %q", base, want)
			}
			baseURL, err := url.Parse(base)
			if err != nil {
				t.Fatal(err)
			}
			var uris []string
			fingerprints := map[string]bool{}
			for i, r := range run.Results {
				loc := r.Locations[0].PhysicalLocation
				uris = append(uris, loc.ArtifactLocation.URI)
				if loc.ArtifactLocation.URIBaseID != "%SRCROOT%" {
					t.Errorf("result %d: uriBaseId %q", i, loc.ArtifactLocation.URIBaseID)
				}
				ref, err := url.Parse(loc.ArtifactLocation.URI)
				if err != nil {
					t.Fatal(err)
				}
				b, err := os.ReadFile(baseURL.ResolveReference(ref).Path)
				if err != nil {
					t.Errorf("result %d: %v", i, err)
					continue
				}
				reg := loc.Region
				lines := strings.Split(string(b), "\n")
				if reg.StartLine < 1 || reg.StartLine > len(lines) || reg.EndLine != reg.StartLine {
					t.Errorf("result %d: region %+v", i, reg)
					continue
				}
				line := utf16.Encode([]rune(lines[reg.StartLine-1]))
				if reg.StartColumn < 1 || reg.EndColumn <= reg.StartColumn || reg.EndColumn-1 > len(line) {
					t.Errorf("result %d: region %+v on a line of %d code units", i, reg, len(line))
					continue
				}
				got := string(utf16.Decode(line[reg.StartColumn-1 : reg.EndColumn-1]))
				if !contains(secrets, got) {
					t.Errorf("result %d (%s): the region holds %q, not a planted secret", i, loc.ArtifactLocation.URI, got)
				}
				fp := r.PartialFingerprints["primaryLocationLineHash"]
				if fingerprints[r.RuleID+fp] || fp == "" {
					t.Errorf("result %d: primaryLocationLineHash %q is not its own", i, fp)
				}
				fingerprints[r.RuleID+fp] = true
			}
			if d := cmp.Diff(tt.wantURIs, uris); d != "" {
				t.Errorf("URIs (-want +got):\n%s", d)
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// npmTools is where .ci/run installs the npm packages of .ci/npm.
const npmTools = "../../.ci/npm"

// requireNpmTool returns the path of a file an npm package of .ci/npm
// installs, or skips the test when it is missing; with CI set a missing
// tool fails the test, since .ci/run installs it.
func requireNpmTool(t *testing.T, rel string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join(npmTools, "node_modules", rel))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is missing (CI is set; .ci/run installs it with npm ci --prefix .ci/npm)", p)
		}
		t.Skipf("%s is missing: npm ci --prefix .ci/npm", p)
	}
	return p
}

// TestSARIFSchema validates a real scan's SARIF log against the SARIF
// 2.1.0 JSON schema (the one Microsoft's SARIF SDK ships) with two
// validators of their own: ajv, and the SARIF SDK's multitool, which also
// applies the SARIF specification's rules and GitHub code scanning's
// ingestion rules (rule kinds Sarif and Gh, errors and warnings).
func TestSARIFSchema(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("node is required in CI")
		}
		t.Skip("node not installed")
	}
	schema := requireNpmTool(t, "@microsoft/sarif-multitool-linux/sarif-2.1.0.json")
	multitool := requireNpmTool(t, "@microsoft/sarif-multitool-linux/Sarif.Multitool")
	ajv := requireNpmTool(t, "ajv-cli/dist/index.js")
	npmDir, err := filepath.Abs(npmTools) // before the Chdir below
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}

	repo := filepath.Join(t.TempDir(), "repo")
	sarifProject(t, repo)
	if out, err := git(t, repo, nil, "init", "-q"); err != nil {
		t.Fatalf("git init: %v\n%s", err, out)
	}
	t.Chdir(repo)
	out, stderr, code := latchkey(t, "on standard input: "+secret(t)+"\n", "scan", "--format", "sarif", "--no-git", ".", "-")
	if code != 1 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	dir := t.TempDir()
	log := filepath.Join(dir, "latchkey.sarif")
	if err := os.WriteFile(log, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	// ajv reads data files by their extension.
	if err := os.WriteFile(filepath.Join(dir, "latchkey.json"), []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}

	t.Run("ajv", func(t *testing.T) {
		// The schema is written for draft 2020-12; strict mode is about
		// how a schema is written, not about the data.
		cmd := exec.Command(node, ajv, "validate", "--spec=draft2020", "--strict=false", "-c", "ajv-formats",
			"-s", schema, "-d", filepath.Join(dir, "latchkey.json"), "--errors=text")
		cmd.Dir = npmDir // where -c finds ajv-formats
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("ajv: %v\n%s", err, b)
		}
	})
	t.Run("sarif multitool", func(t *testing.T) {
		report := filepath.Join(dir, "validation.sarif")
		cmd := exec.Command(multitool, "validate", log, "--json-schema", schema, "--rule-kind", "Gh;Sarif",
			"--level", "Error;Warning", "--output", report, "--log", "ForceOverwrite")
		cmd.Env = append(os.Environ(), "DOTNET_CLI_TELEMETRY_OPTOUT=1")
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("multitool: %v\n%s", err, b)
		}
		var v struct {
			Runs []struct {
				Results []json.RawMessage `json:"results"`
			} `json:"runs"`
		}
		raw, err := os.ReadFile(report)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, &v); err != nil || len(v.Runs) != 1 {
			t.Fatalf("multitool report: %v\n%s", err, raw)
		}
		if n := len(v.Runs[0].Results); n > 0 {
			t.Errorf("%d problems:\n%s", n, b)
		}
	})
}
