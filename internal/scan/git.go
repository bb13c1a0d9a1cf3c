package scan

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/index"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// openRepo opens the repository holding dir (dir or one of its parents),
// linked worktrees and bare repositories included.
func openRepo(dir string) (*git.Repository, error) {
	r, err := git.PlainOpenWithOptions(dir, &git.PlainOpenOptions{DetectDotGit: true, EnableDotGitCommonDir: true})
	if errors.Is(err, git.ErrRepositoryNotExists) {
		// go-git's DetectDotGit does not recognise a bare repository.
		r, err = git.PlainOpenWithOptions(dir, &git.PlainOpenOptions{EnableDotGitCommonDir: true})
	}
	if err != nil {
		return nil, fmt.Errorf("opening git repository at %s: %w", dir, err)
	}
	return r, nil
}

// openObjects opens the repository holding dir for reading many objects:
// pack files stay open (by default go-git reopens the pack for every object
// it reads, a third of the time of a history scan), objects are cached up
// to cacheSize, and blobs larger than 16 MiB that are not deltas are
// streamed rather than read into memory. close releases the files.
func openObjects(dir string, cacheSize cache.FileSize) (repo *git.Repository, close func(), err error) {
	r, err := openRepo(dir)
	if err != nil {
		return nil, nil, err
	}
	fsst, ok := r.Storer.(*filesystem.Storage)
	if !ok {
		return r, func() {}, nil
	}
	st := filesystem.NewStorageWithOptions(fsst.Filesystem(), cache.NewObjectLRU(cacheSize), filesystem.Options{
		KeepDescriptors:      true,
		LargeObjectThreshold: 16 << 20,
	})
	repo, err = git.Open(st, nil)
	if err != nil {
		st.Close()
		return nil, nil, fmt.Errorf("opening git repository at %s: %w", dir, err)
	}
	return repo, func() { st.Close() }, nil
}

// displayPrefix is what history paths (relative to the top of the work
// tree) are joined to so that they read like the paths of the tree walk:
// the top of the work tree as seen from dir, as the user wrote dir.
func displayPrefix(r *git.Repository, dir string) string {
	wt, err := r.Worktree()
	if err != nil {
		return "" // bare repository: paths as in the commits
	}
	absDir, err1 := filepath.Abs(dir)
	absTop, err2 := filepath.Abs(wt.Filesystem.Root())
	if err1 != nil || err2 != nil {
		return dir
	}
	rel, err := filepath.Rel(absDir, absTop)
	if err != nil {
		return dir
	}
	return filepath.Join(dir, rel)
}

type commitInfo struct {
	hash   string
	when   time.Time
	author string
}

// change is a blob that a commit put at a path. from holds the blobs that
// were at that path in the commit's parents: a secret already in one of
// them was not added by this commit.
type change struct {
	commit int
	path   string
	from   []plumbing.Hash
	to     plumbing.Hash
}

// ScanHistory scans every commit reachable from any reference (branches,
// remote-tracking branches, tags, stash, HEAD) of the repository holding
// dir. Each distinct blob is read once; a secret is reported at the commits
// that added it to a path, not at every later commit that still has it. A
// shallow clone is scanned as far as it goes.
func (s *Scanner) ScanHistory(ctx context.Context, dir string) ([]Finding, error) {
	top, err := openRepo(dir)
	if err != nil {
		return nil, err
	}
	prefix := displayPrefix(top, dir)
	// Trees are read again and again as commits share them: a large cache.
	repo, closeRepo, err := openObjects(dir, cache.DefaultMaxSize)
	if err != nil {
		return nil, err
	}
	defer closeRepo()

	jobs := make(chan plumbing.Hash, 256)
	var (
		mu      sync.Mutex
		found   = map[plumbing.Hash][]match{}
		workErr error
		wg      sync.WaitGroup
	)
	for range s.opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// go-git's object storage is not safe for concurrent use:
			// each worker reads through its own. Blobs are read once,
			// so a small cache (for delta bases) will do.
			r, closeR, err := openObjects(dir, 16*cache.MiByte)
			if err == nil {
				defer closeR()
			}
			m := s.newMatcher()
			for h := range jobs {
				if err != nil {
					continue
				}
				var ms []match
				ms, err = s.scanBlob(r, m, h)
				s.stats.blobsDone.Add(1)
				if len(ms) > 0 {
					mu.Lock()
					found[h] = ms
					mu.Unlock()
				}
			}
			if err != nil {
				mu.Lock()
				workErr = cmpErr(workErr, err)
				mu.Unlock()
			}
		}()
	}

	commits, changes, walkErr := s.walkHistory(ctx, repo, jobs)
	close(jobs)
	wg.Wait()
	if err := cmpErr(walkErr, workErr); err != nil {
		return nil, err
	}

	var out []Finding
	for _, c := range changes {
		ms := found[c.to]
		if len(ms) == 0 {
			continue
		}
		had := map[string]bool{}
		for _, f := range c.from {
			for _, m := range found[f] {
				had[m.secret] = true
			}
		}
		ci := commits[c.commit]
		for _, m := range ms {
			if had[m.secret] {
				continue
			}
			f := secretFinding(filepath.Join(prefix, filepath.FromSlash(c.path)), m)
			f.Commit, f.CommitTime, f.Author = ci.hash, ci.when, ci.author
			out = append(out, f)
		}
	}
	s.stats.findings.Add(int64(len(out)))
	return out, nil
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// walkHistory visits every commit once and sends each blob it meets to jobs
// the first time.
func (s *Scanner) walkHistory(ctx context.Context, repo *git.Repository, jobs chan<- plumbing.Hash) ([]commitInfo, []change, error) {
	starts, err := startCommits(repo)
	if err != nil {
		return nil, nil, err
	}
	var (
		commits []commitInfo
		changes []change
		queued  = map[plumbing.Hash]bool{}
		seen    = map[plumbing.Hash]bool{}
		stack   = starts
	)
	for len(stack) > 0 {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		h := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[h] {
			continue
		}
		seen[h] = true
		c, err := repo.CommitObject(h)
		if errors.Is(err, plumbing.ErrObjectNotFound) {
			continue // beyond the edge of a shallow clone
		} else if err != nil {
			return nil, nil, fmt.Errorf("reading commit %s: %w", h, err)
		}
		s.stats.commits.Add(1)
		ci := len(commits)
		commits = append(commits, commitInfo{hash: h.String(), when: c.Author.When, author: c.Author.Name})

		var parents []*object.Tree
		for _, p := range c.ParentHashes {
			stack = append(stack, p)
			pc, err := repo.CommitObject(p)
			if errors.Is(err, plumbing.ErrObjectNotFound) {
				continue
			} else if err != nil {
				return nil, nil, fmt.Errorf("reading commit %s: %w", p, err)
			}
			pt, err := repo.TreeObject(pc.TreeHash)
			if err != nil {
				return nil, nil, fmt.Errorf("reading tree of %s: %w", p, err)
			}
			parents = append(parents, pt)
		}
		var base plumbing.Hash
		if len(parents) > 0 {
			base = parents[0].Hash
		}
		err = s.diffTrees(repo, base, c.TreeHash, "", func(path string, from, to plumbing.Hash) {
			ch := change{commit: ci, path: path, to: to}
			if !from.IsZero() {
				ch.from = append(ch.from, from)
			}
			// In a merge, a blob that another parent already had at
			// this path was added on that side, not by the merge.
			for _, pt := range parents[min(1, len(parents)):] {
				if e, err := pt.FindEntry(path); err == nil {
					if e.Hash == to {
						return
					}
					ch.from = append(ch.from, e.Hash)
				}
			}
			changes = append(changes, ch)
			if !queued[to] {
				queued[to] = true
				s.stats.blobs.Add(1)
				jobs <- to
			}
		})
		if err != nil {
			return nil, nil, fmt.Errorf("commit %s: %w", h, err)
		}
	}
	return commits, changes, nil
}

// startCommits returns the commits that references point to, tags peeled.
func startCommits(repo *git.Repository) ([]plumbing.Hash, error) {
	refs, err := repo.References()
	if err != nil {
		return nil, fmt.Errorf("listing references: %w", err)
	}
	var out []plumbing.Hash
	add := func(h plumbing.Hash) {
		for range 10 { // tags of tags, bounded
			obj, err := repo.Object(plumbing.AnyObject, h)
			if err != nil {
				return
			}
			switch o := obj.(type) {
			case *object.Commit:
				out = append(out, o.Hash)
				return
			case *object.Tag:
				h = o.Target
			default:
				return
			}
		}
	}
	err = refs.ForEach(func(r *plumbing.Reference) error {
		if r.Type() == plumbing.HashReference {
			add(r.Hash())
		}
		return nil
	})
	if err != nil && !errors.Is(err, storer.ErrStop) {
		return nil, err
	}
	if head, err := repo.Head(); err == nil {
		add(head.Hash())
	}
	return out, nil
}

// diffTrees calls emit for every file of tree to that is not identical in
// tree from (zero: the empty tree), with the blob from had at that path.
// Identical subtrees are skipped by hash, so a commit costs what it changed.
func (s *Scanner) diffTrees(repo *git.Repository, from, to plumbing.Hash, prefix string, emit func(path string, from, to plumbing.Hash)) error {
	if from == to {
		return nil
	}
	tt, err := repo.TreeObject(to)
	if err != nil {
		return err
	}
	var old map[string]object.TreeEntry
	if !from.IsZero() {
		ft, err := repo.TreeObject(from)
		if err != nil {
			return err
		}
		old = make(map[string]object.TreeEntry, len(ft.Entries))
		for _, e := range ft.Entries {
			old[e.Name] = e
		}
	}
	for _, e := range tt.Entries {
		o, had := old[e.Name]
		if had && o.Hash == e.Hash {
			continue
		}
		path := prefix + e.Name
		switch {
		case e.Mode == filemode.Dir:
			if vendored[e.Name] && !s.opts.IncludeVendored {
				continue
			}
			var fh plumbing.Hash
			if had && o.Mode == filemode.Dir {
				fh = o.Hash
			}
			if err := s.diffTrees(repo, fh, e.Hash, path+"/", emit); err != nil {
				return err
			}
		case isBlobFile(e.Mode):
			var fh plumbing.Hash
			if had && isBlobFile(o.Mode) {
				fh = o.Hash
			}
			emit(path, fh, e.Hash)
		}
	}
	return nil
}

// isBlobFile reports whether an entry of this mode is file content: not a
// directory, a submodule or a symbolic link.
func isBlobFile(m filemode.FileMode) bool {
	return m == filemode.Regular || m == filemode.Executable || m == filemode.Deprecated
}

// scanBlob returns the secrets in blob h.
func (s *Scanner) scanBlob(repo *git.Repository, m *matcher, h plumbing.Hash) ([]match, error) {
	b, err := repo.BlobObject(h)
	if err != nil {
		return nil, fmt.Errorf("reading blob %s: %w", h, err)
	}
	r, err := b.Reader()
	if err != nil {
		return nil, fmt.Errorf("reading blob %s: %w", h, err)
	}
	defer r.Close()
	var out []match
	n, binary, err := m.scan(r, !s.opts.IncludeBinary, func(mt match) { out = append(out, mt) })
	s.stats.bytes.Add(n)
	if binary {
		s.stats.binary.Add(1)
		return nil, nil
	}
	s.stats.files.Add(1)
	if err != nil {
		return nil, fmt.Errorf("reading blob %s: %w", h, err)
	}
	return out, nil
}

// stagedIndex reads the index that the next commit is made from. During
// `git commit -a` or `git commit PATH...` that is not .git/index but a
// temporary one that git names to the hook in GIT_INDEX_FILE.
func stagedIndex(repo *git.Repository) (*index.Index, error) {
	p := os.Getenv("GIT_INDEX_FILE")
	if p == "" {
		return repo.Storer.Index()
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	idx := &index.Index{}
	if err := index.NewDecoder(bufio.NewReader(f)).Decode(idx); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return idx, nil
}

// ScanStaged scans what `git commit` would add in the repository holding
// dir: every index entry whose blob differs from HEAD's. As in the
// history, a secret already in HEAD's version of the file is not reported
// again.
func (s *Scanner) ScanStaged(ctx context.Context, dir string) ([]Finding, error) {
	repo, err := openRepo(dir)
	if err != nil {
		return nil, err
	}
	prefix := displayPrefix(repo, dir)
	idx, err := stagedIndex(repo)
	if err != nil {
		return nil, fmt.Errorf("reading the git index: %w", err)
	}
	var head *object.Tree
	if ref, err := repo.Head(); err == nil {
		c, err := repo.CommitObject(ref.Hash())
		if err != nil {
			return nil, fmt.Errorf("reading HEAD: %w", err)
		}
		if head, err = c.Tree(); err != nil {
			return nil, fmt.Errorf("reading HEAD's tree: %w", err)
		}
	} else if !errors.Is(err, plumbing.ErrReferenceNotFound) {
		return nil, fmt.Errorf("reading HEAD: %w", err)
	} // else: no commit yet, everything staged is new

	m := s.newMatcher()
	var out []Finding
	for _, e := range idx.Entries {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if e.Stage != 0 || e.IntentToAdd || !isBlobFile(e.Mode) {
			continue
		}
		had := map[string]bool{}
		if head != nil {
			if he, err := head.FindEntry(e.Name); err == nil {
				if he.Hash == e.Hash {
					continue
				}
				if isBlobFile(he.Mode) {
					old, err := s.scanBlob(repo, m, he.Hash)
					if err != nil {
						return nil, err
					}
					for _, mt := range old {
						had[mt.secret] = true
					}
				}
			}
		}
		ms, err := s.scanBlob(repo, m, e.Hash)
		if err != nil {
			return nil, err
		}
		for _, mt := range ms {
			if !had[mt.secret] {
				out = append(out, secretFinding(filepath.Join(prefix, filepath.FromSlash(e.Name)), mt))
			}
		}
	}
	sortFindings(out)
	s.stats.findings.Add(int64(len(out)))
	return out, nil
}
