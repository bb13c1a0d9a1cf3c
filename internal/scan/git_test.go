package scan

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/google/go-cmp/cmp"
	"github.com/latchkey/latchkey/keyformat"
)

// testRepo builds a git history at run time with go-git.
type testRepo struct {
	t    *testing.T
	dir  string
	repo *git.Repository
	wt   *git.Worktree
	when time.Time
}

func newTestRepo(t *testing.T) *testRepo {
	t.Helper()
	dir := t.TempDir()
	r, err := git.PlainInit(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	wt, err := r.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	return &testRepo{t: t, dir: dir, repo: r, wt: wt, when: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

// commit writes files, removes the paths in rm, and commits; parents
// override HEAD as the parents (for merges).
func (r *testRepo) commit(msg string, files map[string]string, rm []string, parents ...plumbing.Hash) plumbing.Hash {
	r.t.Helper()
	writeTree(r.t, r.dir, files)
	for name := range files {
		if _, err := r.wt.Add(name); err != nil {
			r.t.Fatal(err)
		}
	}
	for _, name := range rm {
		if _, err := r.wt.Remove(name); err != nil {
			r.t.Fatal(err)
		}
	}
	r.when = r.when.Add(time.Hour)
	h, err := r.wt.Commit(msg, &git.CommitOptions{
		Author:  &object.Signature{Name: "Dev", Email: "dev@example.com", When: r.when},
		Parents: parents,
	})
	if err != nil {
		r.t.Fatal(err)
	}
	return h
}

func (r *testRepo) checkout(branch string, create bool) {
	r.t.Helper()
	err := r.wt.Checkout(&git.CheckoutOptions{Branch: plumbing.NewBranchReferenceName(branch), Create: create, Keep: create})
	if err != nil {
		r.t.Fatal(err)
	}
}

func TestScanHistory(t *testing.T) {
	var s [10]string
	for i := range s {
		s[i] = newSecret(t)
	}
	id := newID(t)
	minified := strings.Repeat("a=1;", 500_000) + s[6]
	r := newTestRepo(t)
	c1 := r.commit("add config", map[string]string{
		"a.txt":   "x\n" + s[1],
		"b.txt":   "line1\n" + id + " " + s[2] + "\n",
		"bin.dat": "\x00\x01" + s[5],
	}, nil)
	c2 := r.commit("remove a, edit b", map[string]string{"b.txt": "line0\nline1\n" + id + " " + s[2] + "\n"}, []string{"a.txt"})

	// feature: merged later
	r.checkout("feature", true)
	c3 := r.commit("feature", map[string]string{"c.txt": s[3], "web/app.min.js": minified}, nil)
	r.checkout("master", false)
	c4 := r.commit("clean", map[string]string{"d.txt": "clean"}, nil)
	// The merge brings c.txt and app.min.js from feature (not new) and
	// adds m.txt itself.
	writeTree(t, r.dir, map[string]string{"c.txt": s[3], "web/app.min.js": minified})
	c5 := r.commit("merge feature", map[string]string{"c.txt": s[3], "web/app.min.js": minified, "m.txt": s[7]}, nil, c4, c3)

	// tmp: a commit reachable only from an annotated tag.
	r.checkout("tmp", true)
	c6 := r.commit("tagged", map[string]string{"e.txt": s[4]}, nil)
	if _, err := r.repo.CreateTag("v-secret", c6, &git.CreateTagOptions{
		Message: "tag", Tagger: &object.Signature{Name: "Dev", Email: "dev@example.com", When: r.when},
	}); err != nil {
		t.Fatal(err)
	}
	// wip: an unmerged branch.
	r.checkout("wip", true)
	c7 := r.commit("wip", map[string]string{"f.txt": "\n\n" + s[8]}, nil)
	r.checkout("master", false)
	if err := r.repo.Storer.RemoveReference(plumbing.NewBranchReferenceName("tmp")); err != nil {
		t.Fatal(err)
	}
	// vendored trees are skipped in history too
	c8 := r.commit("vendor", map[string]string{"vendor/x/x.go": s[9]}, nil)
	_ = c2

	p := func(name string) string { return filepath.ToSlash(filepath.Join(r.dir, name)) }
	m := keyformat.Mask
	want := []brief{
		{RuleSecret, p("a.txt"), 2, m(s[1]), "", c1.String()},
		{RuleSecret, p("b.txt"), 2, m(s[2]), id, c1.String()},
		{RuleSecret, p("c.txt"), 1, m(s[3]), "", c3.String()},
		{RuleSecret, p("e.txt"), 1, m(s[4]), "", c6.String()},
		{RuleSecret, p("f.txt"), 3, m(s[8]), "", c7.String()},
		{RuleSecret, p("m.txt"), 1, m(s[7]), "", c5.String()},
		{RuleSecret, p("web/app.min.js"), 1, m(s[6]), "", c3.String()},
	}
	tests := []struct {
		name string
		opts Options
		want []brief
	}{
		{"defaults", Options{}, want},
		{"one worker", Options{Workers: 1}, want},
		{"binary and vendored", Options{IncludeBinary: true, IncludeVendored: true}, append(want[:7:7],
			brief{RuleSecret, p("bin.dat"), 1, m(s[5]), "", c1.String()},
			brief{RuleSecret, p("vendor/x/x.go"), 1, m(s[9]), "", c8.String()})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := New(tt.opts)
			got, err := sc.ScanHistory(t.Context(), r.dir)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, briefs(got), sortBriefs); d != "" {
				t.Errorf("findings (-want +got):\n%s", d)
			}
			if st := sc.Stats(); st.Commits != 8 {
				t.Errorf("walked %d commits, want 8", st.Commits)
			}
			for _, f := range got {
				if f.Author != "Dev" || f.CommitTime.IsZero() {
					t.Errorf("%s: author %q, time %v", f.File, f.Author, f.CommitTime)
				}
			}
		})
	}

	// A directory that is the top of a work tree is scanned as files and
	// history; the files' findings that the history has are dropped, and
	// an untracked file is still reported.
	t.Run("work tree and history", func(t *testing.T) {
		writeTree(t, r.dir, map[string]string{"untracked.txt": s[0]})
		got, err := New(Options{}).Scan(t.Context(), []string{r.dir}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		w := append(want[:7:7], brief{RuleSecret, p("untracked.txt"), 1, m(s[0]), "", ""})
		if d := cmp.Diff(w, briefs(got), sortBriefs); d != "" {
			t.Errorf("findings (-want +got):\n%s", d)
		}
	})

	t.Run("history only from a subdirectory", func(t *testing.T) {
		sub := filepath.Join(r.dir, "web")
		got, err := New(Options{History: HistoryOnly}).Scan(t.Context(), []string{sub}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(want, briefs(got), sortBriefs); d != "" {
			t.Errorf("findings (-want +got):\n%s", d)
		}
	})
}

func TestScanHistoryBare(t *testing.T) {
	s1 := newSecret(t)
	r := newTestRepo(t)
	c := r.commit("one", map[string]string{"dir/a.txt": s1}, nil)
	bare := t.TempDir()
	if _, err := git.PlainClone(bare, true, &git.CloneOptions{URL: r.dir}); err != nil {
		t.Fatal(err)
	}
	got, err := New(Options{History: HistoryOnly}).Scan(t.Context(), []string{bare}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []brief{{RuleSecret, "dir/a.txt", 1, keyformat.Mask(s1), "", c.String()}}
	if d := cmp.Diff(want, briefs(got)); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

func TestScanHistoryNotARepo(t *testing.T) {
	_, err := New(Options{}).ScanHistory(t.Context(), t.TempDir())
	if err == nil {
		t.Fatal("no error for a directory that is not a repository")
	}
}

// A shallow clone is scanned as far as its history goes.
func TestScanHistoryShallow(t *testing.T) {
	s1, s2 := newSecret(t), newSecret(t)
	r := newTestRepo(t)
	r.commit("one", map[string]string{"a.txt": s1}, nil)
	c2 := r.commit("two", map[string]string{"b.txt": s2}, nil)
	clone := t.TempDir()
	if _, err := git.PlainClone(clone, false, &git.CloneOptions{URL: "file://" + r.dir, Depth: 1}); err != nil {
		t.Skipf("go-git cannot make a shallow clone here: %v", err)
	}
	got, err := New(Options{}).ScanHistory(t.Context(), clone)
	if err != nil {
		t.Fatal(err)
	}
	// The cut commit is compared with nothing, so both files count as
	// added by it.
	p := func(name string) string { return filepath.ToSlash(filepath.Join(clone, name)) }
	want := []brief{
		{RuleSecret, p("a.txt"), 1, keyformat.Mask(s1), "", c2.String()},
		{RuleSecret, p("b.txt"), 1, keyformat.Mask(s2), "", c2.String()},
	}
	if d := cmp.Diff(want, briefs(got), sortBriefs); d != "" {
		t.Errorf("findings (-want +got):\n%s", d)
	}
}

func TestScanStaged(t *testing.T) {
	s1, s2, s3 := newSecret(t), newSecret(t), newSecret(t)
	r := newTestRepo(t)
	p := func(name string) string { return filepath.ToSlash(filepath.Join(r.dir, name)) }

	// Before the first commit everything staged is new.
	writeTree(t, r.dir, map[string]string{"a.txt": "old " + s1 + "\n"})
	if _, err := r.wt.Add("a.txt"); err != nil {
		t.Fatal(err)
	}
	got, err := New(Options{}).ScanStaged(t.Context(), r.dir)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]brief{{RuleSecret, p("a.txt"), 1, keyformat.Mask(s1), "", ""}}, briefs(got)); d != "" {
		t.Errorf("unborn HEAD (-want +got):\n%s", d)
	}
	r.commit("one", nil, nil)

	// Staged: a.txt keeps s1 and gains s2; new.txt adds s3; work.txt is
	// changed on disk but not staged; bin is binary.
	writeTree(t, r.dir, map[string]string{
		"a.txt":    "old " + s1 + "\nnew " + s2 + "\n",
		"new.txt":  s3,
		"bin":      "\x00" + s3,
		"work.txt": s3,
	})
	for _, f := range []string{"a.txt", "new.txt", "bin"} {
		if _, err := r.wt.Add(f); err != nil {
			t.Fatal(err)
		}
	}
	got, err = New(Options{}).ScanStaged(t.Context(), r.dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []brief{
		{RuleSecret, p("a.txt"), 2, keyformat.Mask(s2), "", ""},
		{RuleSecret, p("new.txt"), 1, keyformat.Mask(s3), "", ""},
	}
	if d := cmp.Diff(want, briefs(got)); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	if err := os.Remove(filepath.Join(r.dir, "work.txt")); err != nil {
		t.Fatal(err)
	}
}
