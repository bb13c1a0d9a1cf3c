package scan

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5/plumbing/format/gitignore"
)

// ignoreCache answers "would git add this file?" for files in work trees,
// reading each .gitignore once. It is consulted only for files that hold a
// secret, so a clean tree costs nothing.
type ignoreCache struct {
	mu     sync.Mutex
	roots  map[string]string              // directory -> top of its work tree ("" when none)
	dirs   map[string][]gitignore.Pattern // directory -> patterns of its .gitignore
	bases  map[string][]gitignore.Pattern // top of a work tree -> global and info/exclude patterns
	global []gitignore.Pattern
	loaded bool
}

func newIgnoreCache() *ignoreCache {
	return &ignoreCache{
		roots: map[string]string{},
		dirs:  map[string][]gitignore.Pattern{},
		bases: map[string][]gitignore.Pattern{},
	}
}

// trackable reports whether path is inside a git work tree and not ignored
// by git (global excludes, .git/info/exclude, every .gitignore on its way).
func (c *ignoreCache) trackable(path string) bool {
	abs, err := filepath.Abs(path)
	if err != nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	root := c.root(filepath.Dir(abs))
	if root == "" {
		return false
	}
	rel, err := filepath.Rel(root, abs)
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return false
	}
	parts := strings.Split(filepath.ToSlash(rel), "/")
	ps := append([]gitignore.Pattern(nil), c.base(root)...)
	ps = append(ps, c.dir(root, nil)...)
	// Git does not look inside an ignored directory, so a file under one
	// is ignored whatever later patterns say.
	for k := 1; k < len(parts); k++ {
		if gitignore.NewMatcher(ps).Match(parts[:k], true) {
			return false
		}
		ps = append(ps, c.dir(filepath.Join(root, filepath.Join(parts[:k]...)), parts[:k])...)
	}
	return !gitignore.NewMatcher(ps).Match(parts, false)
}

// root returns the top of the work tree holding dir, or "".
func (c *ignoreCache) root(dir string) string {
	if r, ok := c.roots[dir]; ok {
		return r
	}
	r := ""
	if _, err := os.Lstat(filepath.Join(dir, ".git")); err == nil {
		r = dir
	} else if parent := filepath.Dir(dir); parent != dir {
		r = c.root(parent)
	}
	c.roots[dir] = r
	return r
}

func (c *ignoreCache) dir(dir string, domain []string) []gitignore.Pattern {
	if ps, ok := c.dirs[dir]; ok {
		return ps
	}
	ps := readPatterns(filepath.Join(dir, ".gitignore"), domain)
	c.dirs[dir] = ps
	return ps
}

// base returns the patterns that apply before any .gitignore: the system
// and user excludes files and the repository's info/exclude.
func (c *ignoreCache) base(root string) []gitignore.Pattern {
	if ps, ok := c.bases[root]; ok {
		return ps
	}
	if !c.loaded {
		c.loaded = true
		fs := osfs.New("/")
		sys, _ := gitignore.LoadSystemPatterns(fs)
		user, _ := gitignore.LoadGlobalPatterns(fs)
		if user == nil {
			// Git's default when core.excludesFile is not set.
			if x := os.Getenv("XDG_CONFIG_HOME"); x != "" {
				user = readPatterns(filepath.Join(x, "git", "ignore"), nil)
			} else if h, err := os.UserHomeDir(); err == nil {
				user = readPatterns(filepath.Join(h, ".config", "git", "ignore"), nil)
			}
		}
		c.global = append(sys, user...)
	}
	ps := append([]gitignore.Pattern(nil), c.global...)
	ps = append(ps, readPatterns(filepath.Join(commonDir(root), "info", "exclude"), nil)...)
	c.bases[root] = ps
	return ps
}

// commonDir returns the git directory that holds info/exclude for the work
// tree at root: .git itself, or for a linked worktree or submodule (.git is
// a file "gitdir: ...") the common directory it points to.
func commonDir(root string) string {
	dotgit := filepath.Join(root, ".git")
	b, err := os.ReadFile(dotgit)
	if err != nil {
		return dotgit // a directory, or unreadable
	}
	gitdir, ok := strings.CutPrefix(strings.TrimSpace(string(b)), "gitdir:")
	if !ok {
		return dotgit
	}
	gitdir = strings.TrimSpace(gitdir)
	if !filepath.IsAbs(gitdir) {
		gitdir = filepath.Join(root, gitdir)
	}
	if cd, err := os.ReadFile(filepath.Join(gitdir, "commondir")); err == nil {
		p := strings.TrimSpace(string(cd))
		if !filepath.IsAbs(p) {
			p = filepath.Join(gitdir, p)
		}
		return p
	}
	return gitdir
}

func readPatterns(path string, domain []string) []gitignore.Pattern {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var ps []gitignore.Pattern
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "#") || strings.TrimSpace(l) == "" {
			continue
		}
		ps = append(ps, gitignore.ParsePattern(l, domain))
	}
	return ps
}
