// Package scan finds leaked latchkey credentials: secret access keys (with
// their checksum verified, so look-alikes are not reported), as they are or
// base64-encoded (Kubernetes Secrets, HTTP Basic credentials), and the
// access key IDs next to them, in files, in every commit of a git
// repository, in staged changes and on standard input. It also flags credentials and .env
// files that sit in a git work tree without being ignored.
//
// Findings never hold a whole secret: only its masked form (keyformat.Mask)
// and its SHA-256 digest (keyformat.Sum), which a Checker or Reporter sends
// to the server.
package scan

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/go-git/go-git/v5"
	"github.com/latchkey/latchkey/keyformat"
)

// History says when a directory's git history is scanned.
type History int

const (
	// HistoryAuto scans the files of every PATH, and also the whole
	// history when PATH is the top-level directory of a repository.
	HistoryAuto History = iota
	// HistoryOnly scans the history of the repository holding each PATH,
	// not its files.
	HistoryOnly
	// HistoryNever scans files only.
	HistoryNever
)

// Options control a Scanner. The zero value is the default.
type Options struct {
	History History
	// IncludeBinary scans files with a NUL byte in their first 8 KiB.
	IncludeBinary bool
	// IncludeVendored walks into vendor/ and node_modules/ directories.
	IncludeVendored bool
	// IncludeGitDir walks into .git directories as plain files.
	IncludeGitDir bool
	// Workers is the number of files or blobs scanned at once;
	// 0 means GOMAXPROCS.
	Workers int
	// Prefixes are the accounts' key prefixes ("acme_live_") whose
	// secrets are looked for besides "lksk_" ones; each should pass
	// keyformat.ValidatePrefix (ValidatePrefixes).
	Prefixes []string
}

// ValidatePrefixes returns an error naming the first prefix that is not a
// key prefix (keyformat.ValidatePrefix); "lksk_" is allowed.
func ValidatePrefixes(ps []string) error {
	for _, p := range ps {
		if p == keyformat.SecretPrefix {
			continue
		}
		if err := keyformat.ValidatePrefix(p); err != nil {
			return fmt.Errorf("%q: %w", p, err)
		}
	}
	return nil
}

// Scanner scans paths, readers and repositories. Its counters may be read
// with Stats while it runs.
type Scanner struct {
	opts    Options
	needles []needle
	stats   counters
	ign     *ignoreCache
	open    func(string) (io.ReadCloser, error) // os.Open; tests make reads fail
}

// New returns a Scanner.
func New(opts Options) *Scanner {
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	return &Scanner{opts: opts, needles: needlesFor(opts.Prefixes), ign: newIgnoreCache(), open: func(p string) (io.ReadCloser, error) { return os.Open(p) }}
}

// newMatcher returns a matcher for s's prefixes.
func (s *Scanner) newMatcher() *matcher { return newMatcher().withNeedles(s.needles) }

type counters struct {
	files, bytes, binary, unreadable atomic.Int64
	commits, blobs, blobsDone        atomic.Int64
	findings                         atomic.Int64
}

// Stats is a snapshot of a Scanner's progress.
type Stats struct {
	Files      int64 // files and blobs read
	Bytes      int64 // bytes read
	Binary     int64 // files skipped as binary
	Unreadable int64 // files that could not be read
	Commits    int64 // commits walked
	Blobs      int64 // distinct blobs queued from history
	BlobsDone  int64 // of which scanned
	Findings   int64
}

// Stats returns the counters so far.
func (s *Scanner) Stats() Stats {
	c := &s.stats
	return Stats{
		Files: c.files.Load(), Bytes: c.bytes.Load(), Binary: c.binary.Load(),
		Unreadable: c.unreadable.Load(), Commits: c.commits.Load(),
		Blobs: c.blobs.Load(), BlobsDone: c.blobsDone.Load(), Findings: c.findings.Load(),
	}
}

// ErrUnreadable is wrapped by the error Scan returns when some files could
// not be read: the scan is then incomplete and must not pass as clean.
var ErrUnreadable = errors.New("some files could not be read")

// Scan scans each target: "-" is standard input (read from stdin), a file is
// scanned, a directory is walked (and its history scanned according to
// Options.History). Findings are sorted by file and line. Files that cannot
// be read are reported to warn and make Scan return an error wrapping
// ErrUnreadable along with the findings.
func (s *Scanner) Scan(ctx context.Context, targets []string, stdin io.Reader, warn func(string)) ([]Finding, error) {
	if warn == nil {
		warn = func(string) {}
	}
	var out []Finding
	for _, t := range targets {
		var fs []Finding
		var err error
		switch {
		case t == "-":
			fs, err = s.ScanReader("-", stdin)
		case s.opts.History == HistoryOnly:
			fs, err = s.ScanHistory(ctx, t)
		default:
			fs, err = s.scanPath(ctx, t, warn)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, fs...)
	}
	sortFindings(out)
	if n := s.stats.unreadable.Load(); n > 0 {
		return out, fmt.Errorf("%w (%d)", ErrUnreadable, n)
	}
	return out, nil
}

// ScanReader scans one stream. Binary content is scanned too: the caller
// chose this input.
func (s *Scanner) ScanReader(name string, r io.Reader) ([]Finding, error) {
	var out []Finding
	n, _, err := s.newMatcher().scan(r, false, func(m match) {
		out = append(out, secretFinding(name, m))
	})
	s.stats.files.Add(1)
	s.stats.bytes.Add(n)
	s.stats.findings.Add(int64(len(out)))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	return out, nil
}

func secretFinding(file string, m match) Finding {
	return Finding{
		Rule: RuleSecret, File: file, Line: m.line, Column: m.col, ColumnUTF16: m.col16, Len: m.size,
		Masked: keyformat.Mask(m.secret), Digest: keyformat.Sum(m.secret),
		AccessKeyID: m.keyID, Encoding: m.encoding,
	}
}

func (s *Scanner) scanPath(ctx context.Context, root string, warn func(string)) ([]Finding, error) {
	st, err := os.Stat(root)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return s.scanFiles(ctx, func(yield func(string)) error { yield(root); return nil }, warn)
	}
	withHistory := s.opts.History == HistoryAuto && isRepoRoot(root)
	walkRoot := root
	if lst, err := os.Lstat(root); err == nil && lst.Mode()&fs.ModeSymlink != 0 {
		// WalkDir does not follow a symbolic link, even the root's;
		// with a trailing separator the root resolves to the directory.
		walkRoot = root + string(filepath.Separator)
	}
	files, err := s.scanFiles(ctx, func(yield func(string)) error { return s.walk(ctx, walkRoot, yield, warn) }, warn)
	if err != nil || !withHistory {
		return files, err
	}
	hist, err := s.ScanHistory(ctx, root)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		warn(fmt.Sprintf("%s has a .git that is not a repository: scanned its files only", root))
		return files, nil
	} else if err != nil {
		return nil, err
	}
	kept := dedupe(files, hist)
	// What dedupe drops was counted as found: the summary and the progress
	// line count what is reported.
	s.stats.findings.Add(int64(len(kept) - len(files)))
	return append(kept, hist...), nil
}

// dedupe drops the file findings that the history already reports (the
// same secret at the same path), since the history names the commit that
// added it. Lines may have moved since; the commit's line is kept.
func dedupe(files, hist []Finding) []Finding {
	type key struct {
		file string
		d    keyformat.Digest
	}
	seen := map[key]bool{}
	for _, f := range hist {
		seen[key{f.File, f.Digest}] = true
	}
	out := files[:0]
	for _, f := range files {
		if f.Rule == RuleSecret && seen[key{f.File, f.Digest}] {
			continue
		}
		out = append(out, f)
	}
	return out
}

// isRepoRoot reports whether dir is the top of a git work tree (.git is a
// directory, or a file as in linked worktrees and submodules).
func isRepoRoot(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, ".git"))
	return err == nil
}

var vendored = map[string]bool{"vendor": true, "node_modules": true}

// walk calls yield with every regular file under root, skipping vendored
// trees and .git unless the options include them. Symbolic links are not
// followed. A directory that cannot be read is counted as unreadable.
func (s *Scanner) walk(ctx context.Context, root string, yield func(string), warn func(string)) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == root {
				return err
			}
			s.stats.unreadable.Add(1)
			warn(fmt.Sprintf("cannot read %s: %v", path, err))
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if d.IsDir() {
			if path == root {
				return nil
			}
			name := d.Name()
			if name == ".git" && !s.opts.IncludeGitDir || vendored[name] && !s.opts.IncludeVendored {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() {
			yield(path)
		}
		return nil
	})
}

// scanFiles scans the files that list yields on a pool of workers.
func (s *Scanner) scanFiles(ctx context.Context, list func(yield func(string)) error, warn func(string)) ([]Finding, error) {
	paths := make(chan string, 256)
	var (
		mu  sync.Mutex
		out []Finding
		wg  sync.WaitGroup
	)
	for range s.opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := s.newMatcher()
			for p := range paths {
				fs, err := s.scanFile(m, p)
				if err != nil {
					s.stats.unreadable.Add(1)
					warn(fmt.Sprintf("cannot read %s: %v", p, err))
					continue
				}
				if len(fs) > 0 {
					mu.Lock()
					out = append(out, fs...)
					mu.Unlock()
				}
			}
		}()
	}
	err := list(func(p string) { paths <- p })
	close(paths)
	wg.Wait()
	if err == nil {
		err = ctx.Err()
	}
	return out, err
}

func (s *Scanner) scanFile(m *matcher, path string) ([]Finding, error) {
	f, err := s.open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var (
		out       []Finding
		credValue bool
	)
	n, binary, err := m.scan(f, !s.opts.IncludeBinary, func(mt match) {
		out = append(out, secretFinding(path, mt))
		credValue = credValue || mt.credValue
	})
	s.stats.bytes.Add(n)
	if binary {
		s.stats.binary.Add(1)
		return nil, nil
	}
	s.stats.files.Add(1)
	if err != nil {
		return nil, err
	}
	if len(out) > 0 && (credValue || isDotEnv(filepath.Base(path))) && s.ign.trackable(path) {
		out = append(out, Finding{
			Rule: RuleCredentialsFile, File: path, Line: out[0].Line, Column: out[0].Column,
			ColumnUTF16: out[0].ColumnUTF16, Len: out[0].Len,
			Masked: out[0].Masked, Digest: out[0].Digest, AccessKeyID: out[0].AccessKeyID,
		})
	}
	s.stats.findings.Add(int64(len(out)))
	return out, nil
}

// isDotEnv reports whether name is a dotenv file: .env, .env.local,
// production.env and the like.
func isDotEnv(name string) bool {
	return name == ".env" || strings.HasPrefix(name, ".env.") || strings.HasSuffix(name, ".env")
}
