package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/latchkey/latchkey/client"
	"github.com/latchkey/latchkey/internal/scan"
	"github.com/latchkey/latchkey/keyformat"
	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"
)

// errFindings makes `latchkey scan` exit with status 1 once its findings are
// printed; ExitCode prints nothing more for it.
var errFindings = errors.New("latchkey scan: secrets found")

func (st *state) newScanCmd() *cobra.Command {
	var (
		format                                   string
		gitOnly, history, noGit, staged          bool
		installHook, force                       bool
		inclBinary, inclVendored, inclGit, quiet bool
		noProgress                               bool
		verifyKeys, report                       bool
		workers                                  int
		prefixes                                 []string
		prefixFile                               string
	)
	cmd := &cobra.Command{
		Use:   "scan [PATH...]",
		Short: "Find leaked latchkey secrets in files, git history and staged changes",
		Long: `Find latchkey secret access keys (lksk_..., checksum verified, so look-alikes
are not reported) and the access key IDs next to them. Secrets are also found
base64-encoded (as in a Kubernetes Secret) and inside HTTP Basic credentials
(base64 of ID:SECRET).

Each PATH is a file, a directory (walked; vendor/, node_modules/ and .git/
are skipped, and so are binary files, unless included with the flags below)
or "-" for standard input; the default is ".". A directory that is the top
of a git work tree is scanned as files and also through its whole history:
every commit of every branch, tag and remote-tracking branch, each secret
reported at the commit that added it. --git scans only the history, --no-git
only the files.

Credentials files (latchkey_secret_access_key = ...) and .env files that
hold a secret inside a git work tree without being ignored are reported too.

Secrets are never printed whole: only their first characters (lksk_AbCd...)
and, in JSON and SARIF, their SHA-256 digest.

Exit status: 0 when nothing is found, 1 when something is found (or a file
could not be read), 2 when the command line is wrong.

--verify asks the latchkey server (the profile's endpoint and admin key)
whether each secret found is a live key, by its SHA-256 digest: the secrets
themselves never leave the machine. --report also files every live one as a
leak, which flags it exposed and deactivates it at once (unless the server
runs with --leak-action flag); rotate the application to a new key next.

--format json prints {"findings": [...]}, each finding with snake_case
fields as in the management API: rule, file, line, column, commit,
commit_time, author, secret (masked), sha256, access_key_id, encoding,
status (with --verify: active, inactive, canary or unknown; after
--report, the status the report left) and message. Only --verify tells a
canary key from any other: offline it is a well-formed key like the rest,
and a viewer's key is told unknown.

ACCOUNT KEY PREFIXES
Accounts may give their keys a prefix of their own (acme_live_ instead of
lksk_; see update-account). Their secrets are found when the prefix is
known: --prefix PREFIX (repeatable), --prefix-file FILE (one prefix a line;
# starts a comment), and, with --verify or --report, every prefix the
server lists for the profile's accounts (GET /v1/key-prefixes). The
checksum of a prefixed secret covers its prefix, so look-alikes are not
reported for these either. 'latchkey scan rules' prints gitleaks or
TruffleHog rules for the same prefixes.

--staged scans what 'git commit' would add in the repository at PATH, and
--install-hook installs a git pre-commit hook that runs it and refuses the
commit when it finds a secret.

EXAMPLES
  latchkey scan
  latchkey scan --format sarif . > latchkey.sarif
  latchkey scan --git ~/src/billing
  kubectl logs deploy/api | latchkey scan -
  latchkey scan --verify ~/src/billing
  latchkey scan --prefix acme_live_ --prefix acme_test_ .
  latchkey scan --prefix-file .latchkey-prefixes --staged
  latchkey scan --report .
  latchkey scan --staged
  latchkey scan --install-hook`,
		RunE: func(cmd *cobra.Command, args []string) error {
			gitOnly = gitOnly || history
			switch format {
			case "text", "json", "sarif":
			default:
				return UsageErrorf("--format %q: want text, json or sarif", format)
			}
			modes := 0
			for _, b := range []bool{gitOnly, noGit, staged, installHook} {
				if b {
					modes++
				}
			}
			if modes > 1 {
				return UsageErrorf("--git, --no-git, --staged and --install-hook exclude one another")
			}
			if (verifyKeys || report) && (staged || installHook) {
				return UsageErrorf("--verify and --report go with a scan, not with --staged or --install-hook")
			}
			if force && !installHook {
				return UsageErrorf("--force applies only to --install-hook")
			}
			if workers < 0 {
				return UsageErrorf("--workers %d: want 0 (one per CPU) or more", workers)
			}
			if len(args) == 0 {
				args = []string{"."}
			}
			if (staged || installHook) && len(args) > 1 {
				return UsageErrorf("--staged and --install-hook take at most one repository PATH, got %d", len(args))
			}
			for _, a := range args {
				if a == "-" && (gitOnly || staged || installHook) {
					return UsageErrorf(`"-" (standard input) cannot be used with --git, --staged or --install-hook`)
				}
			}

			stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
			if installHook {
				exe, err := os.Executable()
				if err != nil {
					return fmt.Errorf("finding the latchkey binary for the hook: %w", err)
				}
				path, err := scan.InstallHook(args[0], exe, force)
				if err != nil {
					return err
				}
				fmt.Fprintf(stdout, "installed the latchkey pre-commit hook at %s\n", path)
				return nil
			}

			ps, err := loadPrefixes(prefixes, prefixFile)
			if err != nil {
				return err
			}
			var cl *client.Client
			if verifyKeys || report {
				// The server's prefixes are learnt before the scan, so
				// that its keys are found whatever their prefix.
				if cl, err = st.client(cmd); err != nil {
					return err
				}
				sp, err := cl.KeyPrefixes(cmd.Context())
				if err != nil {
					return fmt.Errorf("asking the server for its key prefixes: %w", err)
				}
				ps = append(ps, sp...)
			}
			opts := scan.Options{
				IncludeBinary: inclBinary, IncludeVendored: inclVendored,
				IncludeGitDir: inclGit, Workers: workers, Prefixes: ps,
			}
			switch {
			case gitOnly:
				opts.History = scan.HistoryOnly
			case noGit:
				opts.History = scan.HistoryNever
			}
			s := scan.New(opts)
			warn := func(msg string) { fmt.Fprintln(stderr, "latchkey: "+msg) }
			stop := func() {}
			if f, ok := stderr.(*os.File); ok && !noProgress && !quiet && isatty.IsTerminal(f.Fd()) {
				stop = scan.StartProgress(f, s.Stats)
			}
			start := time.Now()
			var findings []scan.Finding
			if staged {
				findings, err = s.ScanStaged(cmd.Context(), args[0])
			} else {
				findings, err = s.Scan(cmd.Context(), args, cmd.InOrStdin(), warn)
			}
			stop()
			if err != nil && !errors.Is(err, scan.ErrUnreadable) {
				return err
			}
			if (verifyKeys || report) && len(scan.Digests(findings)) > 0 {
				if cerr := scan.Annotate(cmd.Context(), checker{cl}, findings); cerr != nil {
					return fmt.Errorf("checking the secrets found with the server: %w", cerr)
				}
				if report {
					if cerr := reportLive(cmd, cl, findings, stderr); cerr != nil {
						return cerr
					}
				}
			}
			switch format {
			case "json":
				err = errors.Join(err, scan.WriteJSON(stdout, findings))
			case "sarif":
				root, rerr := scan.SARIFRoot(args)
				if rerr != nil {
					return rerr
				}
				err = errors.Join(err, scan.WriteSARIF(stdout, findings, Version, root))
			default:
				err = errors.Join(err, scan.WriteText(stdout, findings))
				if !quiet {
					fmt.Fprintln(stderr, scan.Summary(s.Stats(), time.Since(start)))
				}
			}
			if err != nil {
				return err
			}
			if len(findings) > 0 {
				return errFindings
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&format, "format", "text", "output format: text, json or sarif (SARIF 2.1.0)")
	f.BoolVar(&gitOnly, "git", false, "scan only the git history of the repository holding each PATH")
	f.BoolVar(&history, "history", false, "same as --git")
	f.BoolVar(&noGit, "no-git", false, "scan files only, never git history")
	f.BoolVar(&staged, "staged", false, "scan the changes staged for the next commit (what the pre-commit hook runs)")
	f.BoolVar(&installHook, "install-hook", false, "install a git pre-commit hook that runs 'latchkey scan --staged'")
	f.BoolVar(&force, "force", false, "with --install-hook: replace a different existing hook (kept as pre-commit.bak)")
	f.BoolVar(&inclBinary, "include-binary", false, "also scan files with a NUL byte in their first 8 KiB")
	f.BoolVar(&inclVendored, "include-vendored", false, "also walk vendor/ and node_modules/")
	f.BoolVar(&inclGit, "include-git-dir", false, "also walk .git/ directories as plain files")
	f.BoolVar(&noProgress, "no-progress", false, "draw no progress line, even on a terminal")
	f.BoolVar(&verifyKeys, "verify", false, "ask the server whether each secret found is a live key (by digest; the secret never leaves)")
	f.BoolVar(&report, "report", false, "report each live secret found as a leak: the server flags it exposed and deactivates it (implies --verify)")
	f.BoolVarP(&quiet, "quiet", "q", false, "print findings only: no progress, no summary")
	f.IntVar(&workers, "workers", 0, "files scanned at once (0: one per CPU)")
	f.StringArrayVar(&prefixes, "prefix", nil, "an account's key prefix whose secrets to find too, such as acme_live_ (repeatable)")
	f.StringVar(&prefixFile, "prefix-file", "", "file of account key prefixes to find too, one a line")
	cmd.AddCommand(st.newScanRulesCmd())
	return cmd
}

// loadPrefixes returns the prefixes of --prefix and --prefix-file, each
// checked; an error names the flag.
func loadPrefixes(flags []string, file string) ([]string, error) {
	for _, p := range flags {
		if err := scan.ValidatePrefixes([]string{p}); err != nil {
			return nil, UsageErrorf("--prefix %v", err)
		}
	}
	ps := slices.Clone(flags)
	if file == "" {
		return ps, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, UsageErrorf("--prefix-file: %v", err)
	}
	for i, line := range strings.Split(string(b), "\n") {
		line, _, _ = strings.Cut(line, "#")
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		if err := scan.ValidatePrefixes([]string{line}); err != nil {
			return nil, UsageErrorf("--prefix-file %s line %d: %v", file, i+1, err)
		}
		ps = append(ps, line)
	}
	return ps, nil
}

func (st *state) newScanRulesCmd() *cobra.Command {
	var (
		format, prefixFile string
		prefixes           []string
		fromServer         bool
	)
	cmd := &cobra.Command{
		Use:   "rules [--format gitleaks|trufflehog] [--prefix PREFIX]... [--from-server]",
		Short: "Print gitleaks or TruffleHog rules for latchkey secrets and account key prefixes",
		Long: `Print rules that teach another secret scanner latchkey's secrets: one for
lksk_ and one for each account key prefix given with --prefix or
--prefix-file, or listed by the server with --from-server (the profile's
endpoint and admin key; GET /v1/key-prefixes).

--format gitleaks (the default) prints a .gitleaks.toml; --format trufflehog
prints TruffleHog v3 custom detectors. The rules match the shape only:
neither tool computes the checksum, so they can report a look-alike that
latchkey scan would not. To scan a directory named "rules", write ./rules.

EXAMPLES
  latchkey scan rules > .gitleaks.toml
  latchkey scan rules --prefix acme_live_ --prefix acme_test_ > .gitleaks.toml
  latchkey scan rules --from-server --format trufflehog > latchkey-trufflehog.yaml`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !slices.Contains(scan.RuleFormats, format) {
				return UsageErrorf("--format %q: want %s", format, strings.Join(scan.RuleFormats, " or "))
			}
			ps, err := loadPrefixes(prefixes, prefixFile)
			if err != nil {
				return err
			}
			if fromServer {
				cl, err := st.client(cmd)
				if err != nil {
					return err
				}
				sp, err := cl.KeyPrefixes(cmd.Context())
				if err != nil {
					return fmt.Errorf("asking the server for its key prefixes: %w", err)
				}
				ps = append(ps, sp...)
			}
			return scan.WriteRules(cmd.OutOrStdout(), format, ps)
		},
	}
	f := cmd.Flags()
	f.StringVar(&format, "format", "gitleaks", "rule format: gitleaks or trufflehog")
	f.StringArrayVar(&prefixes, "prefix", nil, "an account's key prefix, such as acme_live_ (repeatable)")
	f.StringVar(&prefixFile, "prefix-file", "", "file of account key prefixes, one a line")
	f.BoolVar(&fromServer, "from-server", false, "add the key prefixes the server lists for the profile's accounts")
	return cmd
}

// checker asks the server about digests (scan.Checker).
type checker struct{ cl *client.Client }

func (c checker) Check(ctx context.Context, digests []keyformat.Digest) (map[keyformat.Digest]scan.KeyStatus, error) {
	out := map[keyformat.Digest]scan.KeyStatus{}
	for start := 0; start < len(digests); start += 1000 {
		batch := digests[start:min(start+1000, len(digests))]
		st, err := c.cl.CheckLeaks(ctx, batch)
		if err != nil {
			return nil, err
		}
		for i, s := range st {
			switch s {
			case "Active":
				out[batch[i]] = scan.StatusActive
			case "Inactive":
				out[batch[i]] = scan.StatusInactive
			case "Canary":
				out[batch[i]] = scan.StatusCanary
			}
		}
	}
	return out, nil
}

// reportLive files every Active finding as a leak, says what happened, and
// marks the findings of the keys it deactivated Inactive, so that the
// report shows where the keys stand now.
func reportLive(cmd *cobra.Command, cl *client.Client, findings []scan.Finding, stderr io.Writer) error {
	var leaks []client.LeakFinding
	seen := map[keyformat.Digest]bool{}
	for _, f := range findings {
		if f.Rule != scan.RuleSecret || f.Status != scan.StatusActive || seen[f.Digest] {
			continue
		}
		seen[f.Digest] = true
		where := f.File
		if f.Line > 0 {
			where = fmt.Sprintf("%s:%d", f.File, f.Line)
		}
		if f.Commit != "" {
			where += " in commit " + f.Commit
		}
		leaks = append(leaks, client.LeakFinding{Digest: f.Digest, Where: "latchkey scan: " + where})
	}
	if len(leaks) == 0 {
		fmt.Fprintln(stderr, "latchkey: no live key among the secrets found; nothing to report")
		return nil
	}
	res, err := cl.ReportLeaks(cmd.Context(), leaks)
	if err != nil {
		return fmt.Errorf("reporting the live keys found: %w", err)
	}
	deactivated := map[keyformat.Digest]bool{}
	for i, r := range res {
		switch r.Status {
		case "deactivated":
			deactivated[leaks[i].Digest] = true
			fmt.Fprintf(stderr, "latchkey: reported %s: access key %s is now Inactive; rotate its application to a new key\n", leaks[i].Where, r.AccessKeyID)
		case "flagged":
			fmt.Fprintf(stderr, "latchkey: reported %s: access key %s is flagged exposed but still Active; deactivate and rotate it\n", leaks[i].Where, r.AccessKeyID)
		default:
			fmt.Fprintf(stderr, "latchkey: reported %s: %s\n", leaks[i].Where, r.Status)
		}
	}
	for i := range findings {
		if findings[i].Rule == scan.RuleSecret && deactivated[findings[i].Digest] {
			findings[i].Status = scan.StatusInactive
		}
	}
	return nil
}
