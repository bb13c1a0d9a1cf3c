package main

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/internal/cli"
	"github.com/spf13/cobra"
)

// docFiles returns every Markdown file of the repository (README.md,
// docs/, the SDKs'), by path, with its text; hidden directories and
// node_modules are not the project's.
func docFiles(t *testing.T) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir() && path != "../.." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "node_modules"):
			return filepath.SkipDir
		case !d.IsDir() && strings.HasSuffix(path, ".md"):
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			files[strings.TrimPrefix(path, "../../")] = string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// helpTexts returns the long help of every command, by command path.
func helpTexts(root *cobra.Command) map[string]string {
	out := map[string]string{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		out["latchkey help: "+c.CommandPath()] = c.Long
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return out
}

// invocationRE finds "latchkey" followed by a subcommand, as in
// "latchkey scan --git" or "./latchkey serve".
var invocationRE = regexp.MustCompile(`(?:^|[\s(` + "`" + `$/])latchkey\s+([a-z][a-z-]*)`)

// invocations returns each latchkey command line in text: the words after
// "latchkey", up to the end of the shell command (a pipe, a redirection, a
// comment, the end of a code span). Lines continued with a backslash are
// joined.
func invocations(text string) [][]string {
	text = strings.ReplaceAll(text, "\\\n", " ")
	var out [][]string
	for _, line := range strings.Split(text, "\n") {
		for _, m := range invocationRE.FindAllStringSubmatchIndex(line, -1) {
			rest := line[m[2]:]
			if i := strings.IndexAny(rest, "`|;&>#)\""); i >= 0 {
				rest = rest[:i]
			}
			out = append(out, strings.Fields(rest))
		}
	}
	return out
}

// Every flag that the README, the docs and the commands' help show on a
// latchkey command exists on that command.
func TestDocumentedFlagsExist(t *testing.T) {
	root := addServerCmds(cli.NewRoot())
	texts := docFiles(t)
	for name, help := range helpTexts(root) {
		texts[name] = help
	}
	checked := 0
	for name, text := range texts {
		for _, words := range invocations(text) {
			cmd, rest, err := root.Find(words)
			if err != nil || cmd == root {
				continue // "latchkey" in prose, not a command line
			}
			cmd.InitDefaultHelpFlag()
		words:
			for _, w := range rest {
				var flag string
				switch {
				case w == "--": // what follows is not latchkey's
					break words
				case strings.HasPrefix(w, "--"):
					flag, _, _ = strings.Cut(strings.TrimPrefix(w, "--"), "=")
					if cmd.Flag(flag) == nil {
						t.Errorf("%s: %s has no flag --%s (in: latchkey %s)", name, cmd.CommandPath(), flag, strings.Join(words, " "))
					}
					checked++
				case len(w) == 2 && w[0] == '-' && w[1] != '-':
					if cmd.Flags().ShorthandLookup(w[1:]) == nil && cmd.InheritedFlags().ShorthandLookup(w[1:]) == nil {
						t.Errorf("%s: %s has no flag %s (in: latchkey %s)", name, cmd.CommandPath(), w, strings.Join(words, " "))
					}
					checked++
				}
			}
		}
	}
	if checked < 100 {
		t.Errorf("only %d flags checked: the command lines were not found", checked)
	}
	t.Logf("%d documented flags checked", checked)
}

// issueRE matches a reference to an issue of the project's tracker, which
// readers of the docs cannot see.
var issueRE = regexp.MustCompile(`(?i)\bissues?[\s-]*#?\d+|(?:^|[\s(])#\d+\b`)

// No doc, and no help text, names an internal issue number.
func TestDocsNameNoIssueNumbers(t *testing.T) {
	texts := docFiles(t)
	for name, help := range helpTexts(addServerCmds(cli.NewRoot())) {
		texts[name] = help
	}
	for name, text := range texts {
		for i, line := range strings.Split(text, "\n") {
			if m := issueRE.FindString(line); m != "" {
				t.Errorf("%s:%d names an issue (%q): say what the text means instead", name, i+1, strings.TrimSpace(m))
			}
		}
	}
}

// The README's API table shows every field a request body takes, where it
// shows the body: each property of the operation's request schema in the
// OpenAPI document is named in the row.
func TestReadmeAPITableShowsRequestFields(t *testing.T) {
	b, err := os.ReadFile("../../internal/httpapi/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	resolve := func(v any) map[string]any {
		m, _ := v.(map[string]any)
		for m != nil && m["$ref"] != nil {
			var cur any = doc
			for _, p := range strings.Split(strings.TrimPrefix(m["$ref"].(string), "#/"), "/") {
				cur = cur.(map[string]any)[p]
			}
			m, _ = cur.(map[string]any)
		}
		return m
	}
	properties := func(method, path string) []string {
		op := resolve(resolve(resolve(doc["paths"])[path])[strings.ToLower(method)])
		schema := resolve(resolve(resolve(resolve(op["requestBody"])["content"])["application/json"])["schema"])
		var names []string
		for _, s := range append([]any{schema}, anyList(schema["allOf"])...) {
			for name := range resolve(resolve(s)["properties"]) {
				names = append(names, name)
			}
		}
		slices.Sort(names)
		return names
	}

	readme, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	rowRE := regexp.MustCompile("^\\| (`[^|]*(/v1/[^` ]*)`) \\| (.*) \\|$")
	methodRE := regexp.MustCompile(`\b(POST|PUT|PATCH)\b`)
	quoted := regexp.MustCompile(`"([a-z0-9_]+)"`)
	rows := 0
	for _, line := range strings.Split(string(readme), "\n") {
		m := rowRE.FindStringSubmatch(line)
		if m == nil || !strings.Contains(m[3], "{\"") {
			continue // no request body shown
		}
		shown := map[string]bool{}
		for _, q := range quoted.FindAllStringSubmatch(m[3], -1) {
			shown[q[1]] = true
		}
		for _, method := range methodRE.FindAllString(m[1], -1) {
			rows++
			for _, p := range properties(method, m[2]) {
				if !shown[p] {
					t.Errorf("README API table, %s %s: the request body takes %q, which the row does not show:\n%s", method, m[2], p, line)
				}
			}
		}
	}
	if rows < 5 {
		t.Errorf("only %d rows with a request body found in the README's API table", rows)
	}
}

func anyList(v any) []any {
	l, _ := v.([]any)
	return l
}
