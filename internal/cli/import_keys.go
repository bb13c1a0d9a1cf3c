package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/client"
	"github.com/latchkey/latchkey/internal/hashformat"
	"github.com/spf13/cobra"
)

// importState is what --resume reads back: how many rows of the source
// are known to be done (every batch up to there was answered).
type importState struct {
	Source   string `json:"source"`
	RowsDone int    `json:"rows_done"`
}

type importFlags struct {
	from, file, redisURL, app, groupBy, origin, format, stateFile, report string
	tykPrefix                                                             string
	tykHashed, resume                                                     bool
	batch                                                                 int
}

func (s *state) newImportKeysCmd() *cobra.Command {
	var f importFlags
	cmd := &cobra.Command{
		Use:   "import-keys --from csv|tyk-redis|tyk-export|unkey ...",
		Short: "Import existing keys (raw secrets or their digests) from a file, Tyk or Unkey",
		Long: `Import keys that your clients already hold, so that nobody has to change
keys on migration day. Each key is a raw secret or a digest in one of the
documented hash formats (docs/import.md); latchkey verifies it from then on on
every surface, without asking the store, as fast as its own keys.

Sources (--from):
  csv         a CSV file with a header line naming its columns: id, secret,
              digest, hash_format, salt, external_id, metadata, description,
              status, created_at, last_used_at, expires_at
  tyk-redis   Tyk's Redis, read directly (--redis-url): every apikey-<hash>
              key and its session (org_id, alias, meta_data, expires, ...)
  tyk-export  the same as JSON lines {"key": "apikey-<hash>", "session": {...}}
  unkey       an Unkey export: a JSON array of keys, {"keys": [...]}, or JSON
              lines (id, hash, ownerId/externalId, meta, remaining, ...)

An application owns at most two keys. Without --group-by every key goes to
--application-name, and a batch that would give it more is refused; with
--group-by external_id each external ID gets its own application (named after
it, prefixed with --application-name if given), with --group-by key each key
does.

The import is idempotent: a key already imported is reported "exists" and left
alone. It is resumable: after every batch the number of rows done is written
to --state-file (default: the file's name + .import-state), and --resume skips
them. Each row is reported created, exists, invalid (with the reason) or
refused; --report FILE writes every row's result as JSON lines. A progress bar
is drawn on a terminal, and plain progress lines otherwise. No secret or digest
is ever printed.

EXAMPLES
  latchkey import-keys --from csv --file keys.csv --hash-format sha256-hex --application-name billing
  latchkey import-keys --from csv --file keys.csv --hash-format sha256-hex --group-by key --resume
  latchkey import-keys --from tyk-redis --redis-url redis://tyk-redis:6379/0 --group-by external_id
  latchkey import-keys --from unkey --file unkey-keys.json --group-by external_id --report import.jsonl`,
		Args: noArgs,
		RunE: s.api(func(cmd *cobra.Command, p *printer, cl *client.Client) error {
			return s.importKeys(cmd, p, cl, f)
		}, need{"from", &f.from, "csv"}),
	}
	fl := cmd.Flags()
	fl.StringVar(&f.from, "from", "", "where the keys come from: "+strings.Join(importSources, ", ")+" (required)")
	fl.StringVar(&f.file, "file", "", "the file to read (csv, tyk-export, unkey)")
	fl.StringVar(&f.redisURL, "redis-url", "", "Tyk's Redis, for tyk-redis (redis://host:6379/0)")
	fl.StringVar(&f.app, "application-name", "", "the application that receives the keys; with --group-by, the prefix of the applications' names")
	fl.StringVar(&f.groupBy, "group-by", "", "an application per external_id, or per key")
	fl.StringVar(&f.origin, "origin", "", "recorded on every key as its origin (default: the source, e.g. tyk)")
	fl.StringVar(&f.format, "hash-format", "", "the digest format of a CSV without a hash_format column: "+strings.Join(hashformat.Inputs(), ", "))
	fl.StringVar(&f.tykPrefix, "tyk-key-prefix", "apikey-", "the prefix of Tyk's key names in Redis")
	fl.BoolVar(&f.tykHashed, "tyk-hash-keys", true, "Tyk ran with hash_keys on (the default): Redis holds digests; false: it holds the raw keys")
	fl.StringVar(&f.stateFile, "state-file", "", "where progress is kept for --resume (default: the file + .import-state)")
	fl.BoolVar(&f.resume, "resume", false, "skip the rows the state file says are done")
	fl.StringVar(&f.report, "report", "", "write every row's result to this file as JSON lines")
	fl.IntVar(&f.batch, "batch-size", 5000, fmt.Sprintf("keys per request, 1 to %d", latchkey.MaxImportBatch))
	return cmd
}

func (f *importFlags) check() error {
	if !slices.Contains(importSources, f.from) {
		return UsageErrorf("--from must be %s, not %q", latchkey.Choices(importSources), f.from)
	}
	switch {
	case f.from == fromTykRedis && f.redisURL == "":
		return UsageErrorf("--redis-url is required with --from tyk-redis, e.g. --redis-url redis://127.0.0.1:6379/0")
	case f.from != fromTykRedis && f.file == "":
		return UsageErrorf("--file is required with --from %s, e.g. --file keys.%s", f.from, map[bool]string{true: "csv", false: "json"}[f.from == fromCSV])
	}
	if f.groupBy != "" && !slices.Contains(latchkey.ImportGroupings(), f.groupBy) {
		return UsageErrorf("--group-by must be %s, not %q", latchkey.Choices(latchkey.ImportGroupings()), f.groupBy)
	}
	if f.groupBy == "" && f.app == "" {
		return UsageErrorf("--application-name is required unless --group-by external_id or --group-by key, e.g. --application-name billing")
	}
	if f.format != "" && !slices.Contains(hashformat.Inputs(), f.format) {
		return UsageErrorf("--hash-format must be %s, not %q", latchkey.Choices(hashformat.Inputs()), f.format)
	}
	if f.batch < 1 || f.batch > latchkey.MaxImportBatch {
		return UsageErrorf("--batch-size must be 1 to %d, not %d", latchkey.MaxImportBatch, f.batch)
	}
	if f.origin == "" {
		f.origin = map[string]string{fromCSV: "csv", fromTykRedis: "tyk", fromTykExport: "tyk", fromUnkey: "unkey"}[f.from]
	}
	if err := latchkey.ValidateName("--origin", f.origin); err != nil {
		return UsageErrorf("%s", errMessage(err))
	}
	if f.stateFile == "" {
		if f.file != "" {
			f.stateFile = f.file + ".import-state"
		} else if f.resume {
			return UsageErrorf("--state-file is required with --resume and --from tyk-redis")
		}
	}
	return nil
}

func (s *state) importKeys(cmd *cobra.Command, p *printer, cl *client.Client, f importFlags) error {
	if err := f.check(); err != nil {
		return err
	}
	ctx := cmd.Context()
	var (
		src importSource
		err error
	)
	switch f.from {
	case fromCSV:
		src, err = openCSV(f.file, f.format)
	case fromTykRedis:
		src, err = openTykRedis(ctx, f.redisURL, f.tykPrefix, f.tykHashed)
	case fromTykExport:
		src, err = openTykExport(f.file, f.tykPrefix, f.tykHashed)
	case fromUnkey:
		src, err = openUnkey(f.file)
	}
	if err != nil {
		return err
	}
	defer src.Close()

	sourceName := f.file
	if sourceName == "" {
		sourceName = f.redisURL
		if i := strings.LastIndex(sourceName, "@"); i >= 0 { // no password in the state file
			sourceName = "redis://" + sourceName[i+1:]
		}
	}
	skip := 0
	if f.resume {
		st, err := readImportState(f.stateFile)
		if err != nil {
			return err
		}
		if st.Source != sourceName {
			return UsageErrorf("--resume: %s is the state of %s, not of %s", f.stateFile, st.Source, sourceName)
		}
		skip = st.RowsDone
	}
	var report io.Writer
	if f.report != "" {
		rf, err := os.OpenFile(f.report, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return err
		}
		defer rf.Close()
		report = rf
	}

	prog := newProgress(cmd.ErrOrStderr(), s.env.IsTerminal(cmd.ErrOrStderr()), s.env.Now)
	var (
		total   latchkey.ImportCounts
		notable []latchkey.ImportResult // invalid and refused rows, for the output
		batch   []latchkey.ImportKey
		local   []latchkey.ImportResult
		last    int
	)
	flush := func() error {
		results := local
		if len(batch) > 0 {
			rep, err := sendImport(ctx, cl, latchkey.ImportRequest{Account: s.account, Application: f.app, GroupBy: f.groupBy, Origin: f.origin, Keys: batch})
			if err != nil {
				return err
			}
			results = append(results, rep.Results...)
			total.Applications += rep.Counts.Applications
		}
		slices.SortFunc(results, func(a, b latchkey.ImportResult) int { return a.Row - b.Row })
		for _, r := range results {
			switch r.Outcome {
			case latchkey.ImportCreated:
				total.Created++
			case latchkey.ImportExists:
				total.Exists++
			case latchkey.ImportInvalid:
				total.Invalid++
			case latchkey.ImportRefused:
				total.Refused++
			}
			if r.Outcome == latchkey.ImportInvalid || r.Outcome == latchkey.ImportRefused {
				notable = append(notable, r)
			}
			if report != nil {
				b, _ := json.Marshal(r)
				if _, err := report.Write(append(b, '\n')); err != nil {
					return err
				}
			}
		}
		if f.stateFile != "" && last > 0 {
			if err := writeImportState(f.stateFile, importState{Source: sourceName, RowsDone: last}); err != nil {
				return err
			}
		}
		batch, local = batch[:0], local[:0]
		done, size := src.Progress()
		prog.update(last, done, size, total)
		return nil
	}
	for {
		r, err := src.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if r.key.Row <= skip {
			continue
		}
		last = r.key.Row
		if r.bad == "" {
			r.bad = checkImportRow(&r.key)
		}
		if r.bad != "" {
			local = append(local, latchkey.ImportResult{Row: r.key.Row, Outcome: latchkey.ImportInvalid, Reason: r.bad})
		} else {
			batch = append(batch, r.key)
		}
		if len(batch)+len(local) >= f.batch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	prog.finish()
	return p.Print(importView(total, notable, skip))
}

// sendImport sends one batch, once more when a key of it was created
// meanwhile (ECONFLICT: the second answer reports it "exists").
func sendImport(ctx context.Context, cl *client.Client, req latchkey.ImportRequest) (*latchkey.ImportReport, error) {
	rep, err := cl.ImportKeys(ctx, req)
	if latchkey.ErrorCode(err) == latchkey.ECONFLICT {
		rep, err = cl.ImportKeys(ctx, req)
	}
	return rep, err
}

// checkImportRow finds, before sending, what the server would refuse the
// whole batch for (a type or an enum): such a row is invalid on its own.
func checkImportRow(k *latchkey.ImportKey) string {
	if k.Format != "" && !slices.Contains(hashformat.Inputs(), k.Format) {
		return fmt.Sprintf("hash_format must be %s, not %q", latchkey.Choices(hashformat.Inputs()), k.Format)
	}
	if k.Digest != "" && k.Format == "" {
		return "a digest needs a hash_format (column or --hash-format)"
	}
	if k.Status != "" && !slices.Contains(latchkey.Statuses(), k.Status) {
		return fmt.Sprintf("status must be Active or Inactive, not %q", k.Status)
	}
	if md := bytes.TrimSpace(k.Metadata); len(md) > 0 && (md[0] != '{' || !json.Valid(md)) {
		return "metadata must be a JSON object"
	}
	return ""
}

func readImportState(path string) (importState, error) {
	var st importState
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return st, UsageErrorf("--resume: there is no state file %s (nothing to resume; run without --resume)", path)
	}
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("--resume: %s is not an import state file", path)
	}
	return st, nil
}

// writeImportState replaces the state file atomically: a crash leaves the
// old state or the new one.
func writeImportState(path string, st importState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func importView(n latchkey.ImportCounts, notable []latchkey.ImportResult, skipped int) view {
	type doc struct {
		Counts      latchkey.ImportCounts   `json:"counts"`
		RowsSkipped int                     `json:"rows_skipped,omitempty"`
		Results     []latchkey.ImportResult `json:"results"`
	}
	if notable == nil {
		notable = []latchkey.ImportResult{}
	}
	v := view{JSON: doc{n, skipped, notable}, Headers: []string{"ROW", "OUTCOME", "ACCESS KEY ID", "APPLICATION", "REASON"}}
	v.Rows = append(v.Rows, []cell{c("total"), c(fmt.Sprintf("created %d, exists %d, invalid %d, refused %d; applications created %d",
		n.Created, n.Exists, n.Invalid, n.Refused, n.Applications)), c("-"), c("-"), c("-")})
	for _, r := range notable {
		v.Rows = append(v.Rows, []cell{c(itoa(r.Row)), c(r.Outcome), c(dash(r.AccessKeyID)), c(dash(r.Application)), c(dash(r.Reason))})
	}
	return v
}

// progress draws a bar on a terminal and writes a plain line per batch
// otherwise (logs, CI).
type progress struct {
	w     io.Writer
	tty   bool
	now   func() time.Time
	start time.Time
	drawn bool
}

func newProgress(w io.Writer, tty bool, now func() time.Time) *progress {
	return &progress{w: w, tty: tty, now: now, start: now()}
}

func (p *progress) update(rows int, done, total int64, c latchkey.ImportCounts) {
	secs := p.now().Sub(p.start).Seconds()
	rate := 0.0
	if secs > 0 {
		rate = float64(c.Created+c.Exists+c.Invalid+c.Refused) / secs
	}
	pct := -1
	if total > 0 {
		pct = int(min(done*100/total, 100))
	}
	if !p.tty {
		line := fmt.Sprintf("import: %d rows (created %d, exists %d, invalid %d, refused %d), %.0f rows/s", rows, c.Created, c.Exists, c.Invalid, c.Refused, rate)
		if pct >= 0 {
			line += fmt.Sprintf(", %d%%", pct)
		}
		fmt.Fprintln(p.w, line)
		return
	}
	const width = 30
	bar := strings.Repeat("?", width)
	if pct >= 0 {
		bar = strings.Repeat("#", pct*width/100) + strings.Repeat(".", width-pct*width/100)
	}
	fmt.Fprintf(p.w, "\r[%s] %3d%% %d rows  %.0f/s  created %d exists %d invalid %d refused %d ", bar, max(pct, 0), rows, rate, c.Created, c.Exists, c.Invalid, c.Refused)
	p.drawn = true
}

func (p *progress) finish() {
	if p.tty && p.drawn {
		fmt.Fprintln(p.w)
	}
}
